// A real OpenID provider (oidc-provider, OpenID-certified) for the social sign-in tests.
//
//   node provider.mjs   with, in the environment:
//     OIDC_ISSUER          the issuer it announces (the address the tests reach it at)
//     OIDC_REDIRECT_URIS   comma-separated redirect URIs registered for the test client
//     OIDC_CLIENT_ID, OIDC_CLIENT_SECRET   the test client (client_secret_basic)
//     OIDC_ACCOUNTS        JSON: {"<login>": {"email": "...", "email_verified": true}, ...}
//     OIDC_PORT            where to listen on 127.0.0.1 (0, the default: a free port)
//
// It listens on loopback only and prints one JSON line, {"port": N}, once it accepts
// connections. Its login and consent pages are oidc-provider's development interactions: the
// login form takes an account's login (any password), the consent form one click.
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const issuer = env.OIDC_ISSUER;
if (!issuer) {
  console.error('OIDC_ISSUER is required');
  process.exit(2);
}
const accounts = JSON.parse(env.OIDC_ACCOUNTS || '{}');

const provider = new Provider(issuer, {
  clients: [{
    client_id: env.OIDC_CLIENT_ID || 'authgraph-test',
    client_secret: env.OIDC_CLIENT_SECRET || 'authgraph-test-secret',
    redirect_uris: (env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  // PKCE on every authorization request, as a hardened provider does; S256 only.
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The ID token carries the scope's claims too (as Google's does), not only userinfo.
  conformIdTokenClaims: false,
  cookies: { keys: ['authgraph-test-provider-cookie-key'] },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: account.email,
          email_verified: Boolean(account.email_verified),
          name: account.name || sub,
        };
      },
    };
  },
});
// Quieter test logs: development keys and interactions are expected here.
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = createServer(provider.callback());
server.listen(Number(env.OIDC_PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

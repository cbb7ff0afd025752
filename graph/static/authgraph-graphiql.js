// authgraph's GraphiQL start-up script (replaces Strawberry's inline one; see graph/graphiql.py).
//
// GraphiQL here knows about auth:
// - an operation whose result holds an AuthPayload (signup, login, refreshToken,
//   changePassword) stores its accessToken, and every following operation is sent with
//   "Authorization: Bearer <accessToken>", shown at the top right of the page;
// - logout (scope CURRENT or ALL) forgets it, and so does the "Forget" button;
// - a login that answers MfaRequired keeps its mfaToken (this tab's sessionStorage), and it
//   is filled into a `$mfaToken` variable that verifyMfa declares but Variables leave out;
//   confirmTotpEnrollment's fresh tokens (MfaEnabled.auth) are stored like an AuthPayload;
// - an Authorization header written in the Headers tab wins over the stored token;
// - in cookie mode the readable CSRF cookie is echoed as X-CSRF-Token, so refreshToken and
//   logout work with no arguments; in body mode the last refresh token seen is filled into
//   a `$refreshToken` variable the operation declares but the Variables tab leaves out.
// The token lives in this tab's sessionStorage: a reload keeps it, closing the tab drops it.
(function () {
  "use strict";

  const h = React.createElement;
  const STORAGE_KEY = "authgraph:graphiql:auth";
  const MFA_STORAGE_KEY = "authgraph:graphiql:mfaToken";
  const CSRF_COOKIE = "authgraph_csrf";
  const ENDPOINT = window.location.origin + window.location.pathname;

  // ---- the stored credentials, with listeners for the indicator -------------------------

  let auth = readStoredAuth();
  const listeners = new Set();

  function readStoredAuth() {
    try {
      const value = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "null");
      return value && typeof value.accessToken === "string" ? value : null;
    } catch (error) {
      return null;
    }
  }

  function setAuth(next) {
    auth = next;
    try {
      if (next) {
        window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
      } else {
        window.sessionStorage.removeItem(STORAGE_KEY);
      }
    } catch (error) {
      // Storage may be disabled; the token then lives until the page is reloaded.
    }
    listeners.forEach((listener) => listener(next));
  }

  // The mfaToken of the last login that answered MfaRequired, until verifyMfa succeeds.
  function readMfaToken() {
    try {
      return window.sessionStorage.getItem(MFA_STORAGE_KEY);
    } catch (error) {
      return null;
    }
  }

  let pendingMfaToken = readMfaToken();

  function setMfaToken(next) {
    pendingMfaToken = next;
    try {
      if (next) {
        window.sessionStorage.setItem(MFA_STORAGE_KEY, next);
      } else {
        window.sessionStorage.removeItem(MFA_STORAGE_KEY);
      }
    } catch (error) {
      // Storage may be disabled; the token then lives until the page is reloaded.
    }
  }

  function jwtClaims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(window.atob(part));
    } catch (error) {
      return {};
    }
  }

  function readCookie(name) {
    const prefix = name + "=";
    const found = document.cookie.split("; ").find((entry) => entry.startsWith(prefix));
    return found ? decodeURIComponent(found.slice(prefix.length)) : null;
  }

  function hasHeader(headers, name) {
    return Object.keys(headers).some((key) => key.toLowerCase() === name);
  }

  // ---- reading the operation that was run ----------------------------------------------

  // The operation to run, parsed from the query text itself. GraphiQL passes the operation
  // name it last read from the editor, which can lag behind a tab switch or a fresh paste:
  // when that name is not in the document and the document has one operation, run that one.
  function resolveOperation(query, operationName) {
    let document;
    try {
      document = GraphiQL.GraphQL.parse(query);
    } catch (error) {
      return { operation: null, operationName: operationName };
    }
    const named = GraphiQL.GraphQL.getOperationAST(document, operationName || undefined);
    if (named) return { operation: named, operationName: operationName };
    const sole = GraphiQL.GraphQL.getOperationAST(document, undefined);
    if (sole) return { operation: sole, operationName: sole.name ? sole.name.value : undefined };
    return { operation: null, operationName: operationName };
  }

  function declaresVariable(operation, name) {
    return (operation.variableDefinitions || []).some((d) => d.variable.name.value === name);
  }

  // The scope each top-level `logout` field asked for, by response key.
  function logoutScopes(operation, variables) {
    const scopes = {};
    for (const selection of operation.selectionSet.selections) {
      if (selection.kind !== "Field" || selection.name.value !== "logout") continue;
      const argument = (selection.arguments || []).find((a) => a.name.value === "scope");
      let scope = "CURRENT";
      if (argument && argument.value.kind === "EnumValue") {
        scope = argument.value.value;
      } else if (argument && argument.value.kind === "Variable") {
        scope = (variables || {})[argument.value.name.value] || "CURRENT";
      }
      scopes[(selection.alias || selection.name).value] = scope;
    }
    return scopes;
  }

  // ---- the fetcher ---------------------------------------------------------------------

  const baseFetcher = GraphiQL.createFetcher({
    url: ENDPOINT,
    // Plain JSON responses: the wrapper below reads them (no @defer/@stream here).
    enableIncrementalDelivery: false,
  });

  function learnFrom(result, operation, variables, sentOurToken) {
    if (!result || typeof result !== "object") return;
    const data = result.data && typeof result.data === "object" ? result.data : {};
    for (const field of Object.values(data)) {
      if (field && typeof field.mfaToken === "string") {
        // MfaRequired: no token yet; keep the mfaToken for the verifyMfa tab.
        setMfaToken(field.mfaToken);
        return;
      }
      // MfaEnabled carries its AuthPayload under `auth`.
      const nested = field && field.auth && typeof field.auth.accessToken === "string";
      const value = nested ? field.auth : field;
      if (value && typeof value.accessToken === "string") {
        // A session now exists: a kept mfaToken is spent or no longer needed.
        setMfaToken(null);
        const claims = jwtClaims(value.accessToken);
        const sameUser = auth && jwtClaims(auth.accessToken).sub === claims.sub;
        const email = value.user && value.user.email;
        setAuth({
          accessToken: value.accessToken,
          expiresAt: value.expiresAt || (claims.exp ? new Date(claims.exp * 1000).toISOString() : null),
          email: email || (sameUser ? auth.email : null),
          refreshToken: typeof value.refreshToken === "string" ? value.refreshToken : null,
          rejected: false,
        });
        return;
      }
    }
    if (operation && auth) {
      const scopes = logoutScopes(operation, variables);
      if (Object.keys(scopes).some((key) => data[key] && scopes[key] !== "OTHERS")) {
        setAuth(null);
        return;
      }
    }
    const errors = Array.isArray(result.errors) ? result.errors : [];
    const unauthenticated = errors.some((e) => e.extensions && e.extensions.code === "UNAUTHENTICATED");
    if (sentOurToken && unauthenticated && auth) {
      setAuth(Object.assign({}, auth, { rejected: true }));
    }
  }

  async function authFetcher(params, options) {
    const opts = options || {};
    const headers = Object.assign({}, opts.headers);
    const sentOurToken = Boolean(auth) && !hasHeader(headers, "authorization");
    if (sentOurToken) headers.Authorization = "Bearer " + auth.accessToken;
    const csrf = readCookie(CSRF_COOKIE);
    if (csrf && !hasHeader(headers, "x-csrf-token")) headers["X-CSRF-Token"] = csrf;

    const resolved = resolveOperation(params.query, params.operationName);
    const operation = resolved.operation;
    let variables = params.variables;
    if (
      operation &&
      auth &&
      auth.refreshToken &&
      declaresVariable(operation, "refreshToken") &&
      !(variables && "refreshToken" in variables)
    ) {
      variables = Object.assign({}, variables, { refreshToken: auth.refreshToken });
    }
    if (
      operation &&
      pendingMfaToken &&
      declaresVariable(operation, "mfaToken") &&
      !(variables && "mfaToken" in variables)
    ) {
      variables = Object.assign({}, variables, { mfaToken: pendingMfaToken });
    }
    const result = await baseFetcher(
      Object.assign({}, params, { operationName: resolved.operationName, variables: variables }),
      Object.assign({}, opts, { headers: headers }),
    );
    if (params.operationName !== "IntrospectionQuery") {
      learnFrom(result, operation, variables, sentOurToken);
    }
    return result;
  }

  // ---- the indicator, in GraphiQL's logo slot ------------------------------------------

  function shortToken(token) {
    return token.length > 24 ? token.slice(0, 12) + "…" + token.slice(-8) : token;
  }

  function AuthIndicator() {
    const [state, setState] = React.useState(auth);
    React.useEffect(() => {
      listeners.add(setState);
      return () => listeners.delete(setState);
    }, []);
    if (!state) {
      return h(
        "div",
        { className: "authgraph-auth", "data-state": "none" },
        h("span", { className: "authgraph-auth-header" }, "No Authorization header"),
        h("span", { className: "authgraph-auth-detail" }, "run signup or login to set one"),
      );
    }
    const expires = state.expiresAt ? new Date(state.expiresAt).toLocaleTimeString() : "?";
    return h(
      "div",
      {
        className: "authgraph-auth",
        "data-state": state.rejected ? "rejected" : "set",
        title: "Sent with every operation unless the Headers tab sets its own Authorization",
      },
      h(
        "span",
        { className: "authgraph-auth-header" },
        "Authorization: Bearer " + shortToken(state.accessToken),
      ),
      h(
        "span",
        { className: "authgraph-auth-detail" },
        (state.email ? state.email + " · " : "") +
          (state.rejected ? "rejected by the server: refresh or log in" : "expires " + expires),
      ),
      h(
        "button",
        { type: "button", className: "authgraph-auth-forget", onClick: () => setAuth(null) },
        "Forget",
      ),
    );
  }

  // ---- default tabs --------------------------------------------------------------------

  const PAYLOAD = `__typename
    ... on AuthPayload { accessToken expiresAt refreshToken csrfToken user { id email } }
    ... on Error { message }`;

  const SIGNUP = `# authgraph's GraphiQL knows about auth. Running signup, login or refreshToken
# stores the access token they return and sends it as "Authorization: Bearer …"
# on every following operation (shown at the top right). logout forgets it.
# An Authorization header in the Headers tab wins over the stored token.
mutation Signup {
  signup(input: {email: "dev@example.com", password: "a long passphrase"}) {
    ${PAYLOAD}
    ... on ValidationError { field }
  }
}
`;

  const LOGIN = `# With MFA on, login answers MfaRequired: GraphiQL keeps the mfaToken for VerifyMfa.
mutation Login {
  login(input: {email: "dev@example.com", password: "a long passphrase"}) {
    ${PAYLOAD}
    ... on MfaRequired { mfaToken expiresAt methods }
  }
}
`;

  const VERIFY_MFA = `# The second step of a login that answered MfaRequired. Leave $mfaToken out of
# Variables: GraphiQL fills in the one it kept. Put the code from your authenticator app
# (or method: RECOVERY_CODE with a recovery code).
mutation VerifyMfa($mfaToken: String!) {
  verifyMfa(input: {mfaToken: $mfaToken, method: TOTP, code: "123456"}) {
    ${PAYLOAD}
  }
}
`;

  const VIEWER = `# Sent with the stored access token: no header to paste.
query Viewer {
  viewer { id email createdAt }
}
`;

  const SESSIONS = `# End one with: mutation { revokeSession(id: "…") { __typename } }
query Sessions {
  viewer {
    sessions { id current createdAt lastUsedAt expiresAt userAgent ipAddress }
  }
}
`;

  const REFRESH = `# Cookie mode: leave $refreshToken out; the cookie and the CSRF header go along.
# Body mode: the last refresh token GraphiQL saw is used when Variables leave it out.
mutation Refresh($refreshToken: String) {
  refreshToken(refreshToken: $refreshToken) {
    ${PAYLOAD}
  }
}
`;

  const LOGOUT = `# CURRENT or ALL also forgets the stored access token; OTHERS keeps it.
mutation Logout {
  logout(scope: CURRENT) {
    __typename
    ... on LogoutPayload { revokedSessions }
  }
}
`;

  const DEFAULT_TABS = [SIGNUP, LOGIN, VERIFY_MFA, VIEWER, SESSIONS, REFRESH, LOGOUT].map((query) => ({
    query: query,
  }));

  function AuthgraphGraphiQL() {
    const explorer = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);
    return h(
      GraphiQL,
      {
        fetcher: authFetcher,
        defaultTabs: DEFAULT_TABS,
        // Matching the first tab keeps a reload from adding an empty tab to the stored ones.
        query: SIGNUP,
        plugins: [explorer],
        defaultEditorToolsVisibility: true,
        inputValueDeprecation: true,
        isHeadersEditorEnabled: true,
        // Headers are not written to localStorage: the stored token is the one to trust.
        shouldPersistHeaders: false,
      },
      h(GraphiQL.Logo, null, h(AuthIndicator)),
    );
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(h(AuthgraphGraphiQL));
})();

// A small authgraph client for a browser app on another origin, in cookie mode
// (REFRESH_TOKEN_TRANSPORT=cookie on the server).
//
// - The access token lives in memory only: an injected script cannot lift it from storage.
// - The refresh token is the server's HttpOnly cookie; every call uses credentials: "include".
// - The CSRF token is kept in localStorage: it proves nothing without the HttpOnly cookie,
//   and a reload or a second tab needs it to refresh.
// - The access token is refreshed a little before it expires, and when a request is answered
//   UNAUTHENTICATED (then the request is retried once).
// - Tabs coordinate: a refresh runs under a Web Lock, and a tab that got new tokens shares
//   them on a BroadcastChannel, so two tabs do not both spend the refresh token.
// - Each tab subscribes to viewerSessionEvents (graphql-transport-ws): when the session ends
//   anywhere (a logout in another tab or on another device, a revocation, a password change)
//   the server says SESSION_REVOKED and closes the socket (4403), and every tab shows the
//   login screen at once; an ending is also shared on the BroadcastChannel.

import { TRUSTED_DOCUMENTS } from "./config.js";
import {
  COMPLETE_OAUTH,
  FINISH_PASSKEY_LOGIN,
  LOGIN,
  LOGOUT,
  LOGOUT_EVERYWHERE,
  OAUTH_PROVIDERS,
  REFRESH,
  REQUEST_SIGN_IN_CODE,
  SIGN_IN_WITH_CODE,
  SIGNUP,
  START_OAUTH,
  START_PASSKEY_LOGIN,
  VERIFY_MFA,
} from "./operations.js";

const CSRF_KEY = "authgraph.csrfToken";
const CHANNEL = "authgraph-auth";
const REFRESH_LOCK = "authgraph-refresh";
const REFRESH_LEAD_MS = 30_000;
const MIN_REFRESH_DELAY_MS = 1_000;
const RETRY_AFTER_FAILURE_MS = 5_000;
const SESSION_EVENTS = "subscription { viewerSessionEvents { kind sessionId } }";
const REVOKED = 4403;



/** A request's body: the document's text, or with TRUSTED_DOCUMENTS its documentId (the
 * SHA-256 the manifest, built by build-manifest.mjs from operations.js, lists it under). */
async function requestBody(query, variables) {
  if (!TRUSTED_DOCUMENTS) return { query, variables };
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(query));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return { documentId: `sha256:${hex}`, variables };
}

/** The session is over (logged out elsewhere, revoked, expired): show the login screen. */
export class SessionEnded extends Error {}

/** The API could not be reached, or the browser refused the answer (CORS). */
export class ApiUnreachable extends Error {}

/** signup or login answered with an expected failure (EmailTaken, InvalidCredentials...). */
export class AuthFailure extends Error {
  constructor(typename, message) {
    super(message);
    this.typename = typename;
  }
}

function errorCodes(body) {
  return (body.errors || []).map((error) => error.extensions && error.extensions.code);
}

function claimsOf(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

/**
 * Events: "change" (signed in or out, or a new token; detail.reason says why a session ended,
 * detail.shared is true for tokens another tab shared) and "error" (a background refresh
 * failed; detail is the error).
 */
export class AuthClient extends EventTarget {
  #accessToken = null;
  #receivedAt = 0;
  #user = null;
  #expiresAt = null;
  #timer = null;
  #refreshing = null;
  #channel = null;
  #socket = null;

  constructor(apiUrl) {
    super();
    this.apiUrl = apiUrl;
    this.refreshCount = 0;
    if ("BroadcastChannel" in window) {
      this.#channel = new BroadcastChannel(CHANNEL);
      this.#channel.onmessage = (event) => {
        if (event.data && event.data.type === "tokens") this.#adopt(event.data.payload, false);
        if (event.data && event.data.type === "ended" && this.#accessToken) {
          this.#end(event.data.reason, false);
        }
      };
    }
    document.addEventListener("visibilitychange", () => {
      // Timers are throttled in hidden tabs: catch up when the tab is shown again.
      if (document.visibilityState === "visible" && this.#accessToken && this.#dueInMs() <= 0) {
        this.#refreshInBackground();
      }
    });
  }

  get signedIn() {
    return this.#accessToken !== null;
  }

  get user() {
    return this.#user;
  }

  get expiresAt() {
    return this.#expiresAt;
  }

  /** After a reload: the refresh cookie logs the user back in. Resolves to signed-in or not. */
  async resume() {
    if (!localStorage.getItem(CSRF_KEY)) return false;
    return this.refresh(null);
  }

  async signup(email, password) {
    return this.#authenticate("signup", "SignupInput", email, password);
  }

  /**
   * Log in. Resolves to null when signed in, or, for an account with MFA, to the
   * MfaRequired answer ({mfaToken, expiresAt, methods}): finish with verifyMfa.
   */
  async login(email, password) {
    return this.#authenticate("login", "LoginInput", email, password);
  }

  /** The second step of a login: method "TOTP", "RECOVERY_CODE" or "PASSKEY" (code: the
   * credential JSON of a ceremony started with startPasskeyLogin(email)). */
  async verifyMfa(mfaToken, method, code) {
    const body = await this.#post(VERIFY_MFA, { input: { mfaToken, method, code } }, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    const result = body.data.verifyMfa;
    if (result.__typename !== "AuthPayload") throw new AuthFailure(result.__typename, result.message);
    this.#adopt(result, true);
  }

  /**
   * Options for a passkey login ({ceremonyId, publicKeyJson}): discoverable without an email,
   * for that account's passkeys with one (a second step's ceremony).
   */
  async startPasskeyLogin(email = null) {
    const input = email ? { email } : null;
    const body = await this.#post(START_PASSKEY_LOGIN, { input }, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    const result = body.data.startPasskeyLogin;
    if (result.__typename !== "PasskeyOptions") throw new AuthFailure(result.__typename, result.message);
    return result;
  }

  /** Finish a passkey login with the browser's credential JSON. Resolves to null when signed in. */
  async finishPasskeyLogin(ceremonyId, credential) {
    return this.#signIn("finishPasskeyLogin", FINISH_PASSKEY_LOGIN, { input: { ceremonyId, credential } });
  }

  /** Mail a one-time sign-in code; resolves to the server's message (the same for any address). */
  async requestSignInCode(email) {
    const body = await this.#post(REQUEST_SIGN_IN_CODE, { email }, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    const result = body.data.requestSignInCode;
    if (result.__typename !== "SignInCodeSent") throw new AuthFailure(result.__typename, result.message);
    return result.message;
  }

  /** Sign in with a mailed code. Resolves to null when signed in, or to MfaRequired. */
  async signInWithCode(email, code) {
    return this.#signIn("signInWithCode", SIGN_IN_WITH_CODE, { input: { email, code } });
  }

  /** The sign-in providers the API offers, as [{id, name}]: a button each. */
  async oauthProviders() {
    const body = await this.#post(OAUTH_PROVIDERS, {}, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    return body.data.oauthProviders;
  }

  /**
   * Begin a provider's sign-in: resolves to the URL to send the browser to. The API also sets
   * an HttpOnly cookie binding the attempt to this browser (sent back by completeOAuth).
   */
  async startOAuth(provider, redirectUri) {
    const body = await this.#post(START_OAUTH, { input: { provider, redirectUri } }, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    const result = body.data.startOAuthSignIn;
    if (result.__typename !== "OAuthRedirect") throw new AuthFailure(result.__typename, result.message);
    return result.authorizationUrl;
  }

  /**
   * Finish it with the code and state the provider returned: resolves to null when signed in,
   * or to the MfaRequired answer (finish with verifyMfa), as login does.
   */
  async completeOAuth(provider, code, state, redirectUri) {
    const input = { provider, code, state, redirectUri };
    const body = await this.#post(COMPLETE_OAUTH, { input }, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    const result = body.data.completeOAuthSignIn;
    if (result.__typename === "MfaRequired") return result;
    if (result.__typename !== "AuthPayload") throw new AuthFailure(result.__typename, result.message);
    this.#adopt(result, true);
    return null;
  }

  /** Tokens a mutation handed out for this session (MfaEnabled.auth, after enabling MFA). */
  adoptTokens(payload) {
    this.#adopt(payload, true);
  }

  /**
   * Run an operation as the signed-in user. On UNAUTHENTICATED it refreshes and retries once;
   * throws SessionEnded when that cannot work.
   */
  async query(query, variables = {}) {
    const sent = this.#accessToken;
    let body = await this.#post(query, variables, { bearer: true });
    if (errorCodes(body).includes("UNAUTHENTICATED")) {
      if (!(await this.refresh(sent))) throw new SessionEnded("Your session has ended.");
      body = await this.#post(query, variables, { bearer: true });
      if (errorCodes(body).includes("UNAUTHENTICATED")) {
        this.#end("Your session has ended.");
        throw new SessionEnded("Your session has ended.");
      }
    }
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    return body.data;
  }

  /**
   * Get new tokens with the refresh cookie, unless the token `stale` was already replaced
   * (by this tab or, through the channel, by another). Resolves to signed-in or not.
   */
  async refresh(stale) {
    if (this.#accessToken && this.#accessToken !== stale) return true;
    if (!this.#refreshing) {
      const run = () => this.#refreshNow(stale);
      const locked = navigator.locks ? navigator.locks.request(REFRESH_LOCK, run) : run();
      this.#refreshing = locked.finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  // everywhere: end every session of the account (its other devices' UIs end too, by their
  // viewerSessionEvents subscription), not only this one.
  async logout({ everywhere = false } = {}) {
    try {
      await this.query(everywhere ? LOGOUT_EVERYWHERE : LOGOUT);
    } catch (error) {
      if (!(error instanceof SessionEnded)) throw error;
    }
    this.#end(everywhere ? "You have logged out everywhere." : "You have logged out.");
  }

  // ---- internals ----------------------------------------------------------------------

  async #refreshNow(stale) {
    // While this tab waited for the lock, another may have refreshed and shared its tokens.
    if (this.#accessToken && this.#accessToken !== stale) return true;
    if (!localStorage.getItem(CSRF_KEY)) {
      this.#end("Your session has ended.");
      return false;
    }
    const body = await this.#post(REFRESH, {}, { csrf: true });
    const result = body.data && body.data.refreshToken;
    if (result && result.__typename === "AuthPayload") {
      this.refreshCount += 1;
      this.#adopt(result, true);
      return true;
    }
    // InvalidRefreshToken, or FORBIDDEN once logout cleared the cookies: the session is over.
    this.#end("Your session has ended.");
    return false;
  }

  async #signIn(field, query, variables) {
    const body = await this.#post(query, variables, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    const result = body.data[field];
    if (result.__typename === "MfaRequired") return result;
    if (result.__typename !== "AuthPayload") throw new AuthFailure(result.__typename, result.message);
    this.#adopt(result, true);
    return null;
  }

  async #authenticate(field, inputType, email, password) {
    const query = field === "login" ? LOGIN : SIGNUP;
    const body = await this.#post(query, { input: { email, password } }, {});
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    const result = body.data[field];
    // The password was right; no session until the second step (verifyMfa).
    if (result.__typename === "MfaRequired") return result;
    if (result.__typename !== "AuthPayload") throw new AuthFailure(result.__typename, result.message);
    this.#adopt(result, true);
    return null;
  }

  async #post(query, variables, { bearer = false, csrf = false }) {
    const headers = { "Content-Type": "application/json" };
    if (bearer && this.#accessToken) headers.Authorization = `Bearer ${this.#accessToken}`;
    const csrfToken = csrf && localStorage.getItem(CSRF_KEY);
    if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
    let response;
    try {
      response = await fetch(this.apiUrl, {
        method: "POST",
        headers,
        body: JSON.stringify(await requestBody(query, variables)),
        credentials: "include",
      });
    } catch (error) {
      throw new ApiUnreachable(
        `Cannot reach the API at ${this.apiUrl}: the network failed, or it refused this origin (CORS).`,
      );
    }
    const body = await response.json().catch(() => null);
    if (!body) throw new Error(`The API answered ${response.status} without a GraphQL body.`);
    return body;
  }

  #adopt(payload, share) {
    this.#accessToken = payload.accessToken;
    this.#receivedAt = Date.now();
    this.#expiresAt = new Date(payload.expiresAt);
    this.#user = payload.user;
    if (payload.csrfToken) localStorage.setItem(CSRF_KEY, payload.csrfToken);
    if (share && this.#channel) this.#channel.postMessage({ type: "tokens", payload });
    this.#schedule();
    this.#subscribe();
    this.dispatchEvent(new CustomEvent("change", { detail: { reason: null, shared: !share } }));
  }

  // One socket per tab, authenticated with the current access token (reopened with each new
  // one: the server ends a connection when its token expires).
  #subscribe() {
    if (!("WebSocket" in window)) return;
    this.#closeSocket();
    const socket = new WebSocket(this.apiUrl.replace(/^http/, "ws"), "graphql-transport-ws");
    this.#socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({
        type: "connection_init",
        payload: { Authorization: `Bearer ${this.#accessToken}` },
      }));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        socket.send(JSON.stringify({ id: "session", type: "subscribe", payload: { query: SESSION_EVENTS } }));
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (message.type === "next") {
        const kind = message.payload.data && message.payload.data.viewerSessionEvents.kind;
        if (kind === "SESSION_REVOKED") this.#end("Your session was ended elsewhere.");
      }
    };
    socket.onclose = (event) => {
      if (this.#socket !== socket) return; // replaced or closed on purpose
      this.#socket = null;
      // 4403 without SESSION_REVOKED: the token expired; a refresh tells whether the session lives.
      if (event.code === REVOKED && this.#accessToken) this.#refreshInBackground();
    };
  }

  #closeSocket() {
    const socket = this.#socket;
    this.#socket = null;
    if (socket) socket.close(1000);
  }

  #end(reason, share = true) {
    if (share && this.#channel && this.#accessToken) {
      this.#channel.postMessage({ type: "ended", reason });
    }
    this.#closeSocket();
    this.#accessToken = null;
    this.#user = null;
    this.#expiresAt = null;
    clearTimeout(this.#timer);
    localStorage.removeItem(CSRF_KEY);
    this.dispatchEvent(new CustomEvent("change", { detail: { reason, shared: false } }));
  }

  // Milliseconds until the token should be refreshed. Measured from when it arrived, with
  // its own lifetime (exp - iat), so a wrong clock in the browser does not matter.
  #dueInMs() {
    const claims = claimsOf(this.#accessToken);
    const lifetime = Math.max(0, (claims.exp - claims.iat) * 1000);
    const lead = Math.min(REFRESH_LEAD_MS, lifetime / 4);
    return this.#receivedAt + lifetime - lead - Date.now();
  }

  #schedule() {
    clearTimeout(this.#timer);
    const delay = Math.max(MIN_REFRESH_DELAY_MS, this.#dueInMs());
    this.#timer = setTimeout(() => this.#refreshInBackground(), delay);
  }

  #refreshInBackground() {
    this.refresh(this.#accessToken).catch((error) => {
      this.dispatchEvent(new CustomEvent("error", { detail: error }));
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#refreshInBackground(), RETRY_AFTER_FAILURE_MS);
    });
  }
}

// The example SPA's screens, on top of auth.js. DOM is built with textContent only:
// session data such as user agents comes from other clients and is never parsed as HTML.
import { API_URL } from "./config.js";
import { ApiUnreachable, AuthClient, AuthFailure, SessionEnded } from "./auth.js";
import { conditionalMediationAvailable, createPasskey, getPasskey, passkeysSupported } from "./passkeys.js";
import {
  CONFIRM_ENROLLMENT,
  FINISH_PASSKEY_REGISTRATION,
  REAUTHENTICATE,
  REGENERATE,
  REMOVE_PASSKEY,
  RENAME_PASSKEY,
  REVOKE,
  SIGN_IN_METHODS,
  START_ENROLLMENT,
  START_PASSKEY_REGISTRATION,
  VIEWER,
} from "./operations.js";


const auth = new AuthClient(API_URL);
const $ = (id) => document.getElementById(id);

function show(section) {
  for (const id of ["loading", "signed-out", "code-step", "mfa-step", "signed-in"]) {
    $(id).hidden = id !== section;
  }
  if (section !== "signed-out") stopConditionalPasskeyLogin();
}

// What the server offers (Query.signInMethods), read once at start.
let methods = { password: true, passkeys: false, emailCodes: false, mfa: [] };
// The email of the login in progress (a passkey second step is bound to it).
let pendingEmail = null;
// The pending conditional (autofill) passkey request, started when the page opens signed
// out and aborted by any other action.
let conditional = null;

// The MfaRequired answer of the login in progress, and the action a step-up prompt retries.
let pendingLogin = null;
let pendingFactorId = null;
let retryAfterStepUp = null;
// How the open step-up prompt confirms: "password", "code" (MFA), "sign-in-code" (an
// emailed code signs in again) or null (only the buttons: a passkey, or emailing a code).
let stepUpMode = null;
// The signed-in account's address and this browser's session (loadAccount sets them).
let viewerEmail = null;
let currentSessionId = null;

function say(message, kind = "info") {
  const status = $("status");
  status.hidden = !message;
  status.textContent = message || "";
  status.dataset.kind = kind;
}

function when(iso) {
  return new Date(iso).toLocaleString();
}

function renderToken() {
  $("token-expiry").textContent = auth.expiresAt ? auth.expiresAt.toLocaleTimeString() : "";
  $("refresh-count").textContent = String(auth.refreshCount);
}

function sessionRow(session) {
  const row = document.createElement("tr");
  row.dataset.sessionId = session.id;
  const cells = [
    session.userAgent || "unknown",
    session.ipAddress || "",
    when(session.createdAt),
    when(session.lastUsedAt),
    `aal${session.aal}`,
  ];
  cells.forEach((text, index) => {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (index === 0) cell.className = "device";
    row.append(cell);
  });
  const action = document.createElement("td");
  if (session.current) {
    action.textContent = "this browser";
    action.className = "current";
  } else {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Revoke";
    button.className = "revoke";
    button.addEventListener("click", () => run(() => revoke(session.id)));
    action.append(button);
  }
  row.append(action);
  return row;
}

async function loadAccount() {
  const { viewer } = await auth.query(VIEWER);
  if (!viewer) {
    show("signed-out");
    return;
  }
  $("viewer-email").textContent = viewer.email;
  viewerEmail = viewer.email;
  currentSessionId = (viewer.sessions.find((session) => session.current) || {}).id || null;
  $("viewer-id").textContent = viewer.id;
  $("mfa-status").textContent = viewer.mfaEnabled
    ? `on, ${viewer.recoveryCodesLeft} recovery codes left`
    : "off";
  $("mfa-enroll").hidden = viewer.mfaEnabled;
  $("mfa-regenerate").hidden = !viewer.mfaEnabled;
  $("sessions").replaceChildren(...viewer.sessions.map(sessionRow));
  $("passkeys").replaceChildren(...viewer.passkeys.map(passkeyRow));
  $("passkeys-empty").hidden = viewer.passkeys.length > 0;
  $("passkey-add").hidden = !methods.passkeys || !passkeysSupported();
  renderToken();
  show("signed-in");
}

function passkeyRow(passkey) {
  const item = document.createElement("li");
  item.dataset.passkeyId = passkey.id;
  const name = document.createElement("input");
  name.value = passkey.name;
  name.className = "passkey-name";
  name.setAttribute("aria-label", "Passkey name");
  const details = document.createElement("span");
  details.className = "passkey-details";
  details.textContent = ` added ${when(passkey.createdAt)}` +
    (passkey.lastUsedAt ? `, last used ${when(passkey.lastUsedAt)}` : ", never used") +
    (passkey.backedUp ? ", synced" : "");
  const rename = document.createElement("button");
  rename.type = "button";
  rename.textContent = "Rename";
  rename.className = "passkey-rename";
  rename.addEventListener("click", () => run(() => renamePasskey(passkey.id, name.value)));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove";
  remove.className = "passkey-remove";
  remove.addEventListener("click", () => run(() => removePasskey(passkey.id)));
  item.append(name, details, rename, remove);
  return item;
}

async function addPasskey() {
  const { startPasskeyRegistration: options } = await auth.query(START_PASSKEY_REGISTRATION, { input: null });
  if (options.__typename === "ReauthenticationRequired") return askStepUp(options, addPasskey);
  if (options.__typename !== "PasskeyOptions") return say(options.message, "error");
  const credential = await createPasskey(options.publicKeyJson);
  const { finishPasskeyRegistration: result } = await auth.query(FINISH_PASSKEY_REGISTRATION, {
    input: { ceremonyId: options.ceremonyId, credential },
  });
  if (result.__typename !== "PasskeyAdded") return say(result.message, "error");
  say(`Passkey added: ${result.passkey.name}.`);
  await loadAccount();
}

async function renamePasskey(id, name) {
  const { renamePasskey: result } = await auth.query(RENAME_PASSKEY, { input: { id, name } });
  if (result.__typename !== "PasskeyRenamed") return say(result.message, "error");
  say("Passkey renamed.");
  await loadAccount();
}

async function removePasskey(id) {
  const { removePasskey: result } = await auth.query(REMOVE_PASSKEY, { id });
  if (result.__typename === "ReauthenticationRequired") return askStepUp(result, () => removePasskey(id));
  if (result.__typename !== "PasskeyRemoved") return say(result.message, "error");
  say("Passkey removed.");
  await loadAccount();
}

// ---- passwordless sign-in ----------------------------------------------------------------

function startSecondStep(challenge, email) {
  pendingLogin = challenge;
  pendingEmail = email;
  $("mfa-recovery").parentElement.hidden = !challenge.methods.includes("RECOVERY_CODE");
  $("mfa-passkey").hidden = !challenge.methods.includes("PASSKEY") || !passkeysSupported();
  show("mfa-step");
  $("mfa-code").focus();
}

async function afterSignIn(challenge, email) {
  if (challenge) return startSecondStep(challenge, email);
  await loadAccount();
}

async function signInWithPasskey() {
  stopConditionalPasskeyLogin();
  const options = await auth.startPasskeyLogin();
  const credential = await getPasskey(options.publicKeyJson);
  await afterSignIn(await auth.finishPasskeyLogin(options.ceremonyId, credential), null);
}

async function startConditionalPasskeyLogin() {
  if (conditional || !methods.passkeys || !(await conditionalMediationAvailable())) return;
  const controller = new AbortController();
  conditional = controller;
  try {
    const options = await auth.startPasskeyLogin();
    if (controller.signal.aborted) return;
    const credential = await getPasskey(options.publicKeyJson, { conditional: true, signal: controller.signal });
    conditional = null;
    await run(async () => afterSignIn(await auth.finishPasskeyLogin(options.ceremonyId, credential), null));
  } catch (error) {
    // Aborted (another action took over) or dismissed: the other buttons still work.
  } finally {
    if (conditional === controller) conditional = null;
  }
}

function stopConditionalPasskeyLogin() {
  if (conditional) conditional.abort();
  conditional = null;
}

async function requestCode() {
  const email = $("email").value;
  if (!email) {
    say("Enter your email address first.", "error");
    return;
  }
  const message = await auth.requestSignInCode(email);
  pendingEmail = email;
  $("code-sent").textContent = message;
  $("sign-in-code").value = "";
  show("code-step");
  $("sign-in-code").focus();
}

async function verifyWithPasskey() {
  const options = await auth.startPasskeyLogin(pendingEmail);
  const credential = await getPasskey(options.publicKeyJson);
  await auth.verifyMfa(pendingLogin.mfaToken, "PASSKEY", credential);
  pendingLogin = null;
  await loadAccount();
}

async function revoke(id) {
  const { revokeSession } = await auth.query(REVOKE, { id });
  if (revokeSession.__typename !== "RevokeSessionPayload") say(revokeSession.message, "error");
  await loadAccount();
}

// ---- second factor ---------------------------------------------------------------------

function showRecoveryCodes(codes) {
  $("recovery-list").replaceChildren(
    ...codes.map((code) => {
      const item = document.createElement("li");
      item.textContent = code;
      return item;
    }),
  );
  $("recovery-codes").hidden = false;
}

// ReauthenticationRequired: ask for what the account can give, then retry `action`. With
// MFA a code (or a passkey); without, the password or a passkey; an account with neither
// (no password, no passkey) signs in again with an emailed code, which is a new, recent
// sign-in.
function askStepUp(refusal, action) {
  retryAfterStepUp = action;
  const withMfa = refusal.methods.length > 0;
  const passkey = refusal.passkey && passkeysSupported();
  const signInAgain = !withMfa && !refusal.password && methods.emailCodes;
  stepUpMode = withMfa ? "code" : refusal.password ? "password" : null;
  $("step-up-reason").textContent = withMfa || refusal.password || passkey || signInAgain
    ? refusal.message
    : "Sign out and sign in again to confirm it is you, then try again.";
  $("step-up-password-label").hidden = stepUpMode !== "password";
  $("step-up-code-label").hidden = stepUpMode !== "code";
  $("step-up-recovery-label").hidden = !refusal.methods.includes("RECOVERY_CODE");
  $("step-up-sign-in-code-label").hidden = true;
  $("step-up-submit").hidden = stepUpMode === null;
  $("step-up-passkey").hidden = !passkey;
  $("step-up-email-code").hidden = !signInAgain;
  $("step-up-password").value = "";
  $("step-up-code").value = "";
  $("step-up-sign-in-code").value = "";
  $("step-up").hidden = false;
}

async function afterStepUp() {
  $("step-up").hidden = true;
  stepUpMode = null;
  say("");
  const action = retryAfterStepUp;
  retryAfterStepUp = null;
  if (action) await action();
}

async function reauthenticate(input) {
  const { reauthenticate: result } = await auth.query(REAUTHENTICATE, { input });
  if (result.__typename !== "Reauthenticated") return say(result.message, "error");
  // A new authentication: fresh tokens for this session (the refresh cookie was replaced).
  auth.adoptTokens(result.auth);
  await afterStepUp();
}

async function stepUp() {
  if (stepUpMode === "sign-in-code") return signInAgainWithCode();
  const input = stepUpMode === "code"
    ? { method: $("step-up-recovery").checked ? "RECOVERY_CODE" : "TOTP", code: $("step-up-code").value }
    : { password: $("step-up-password").value };
  await reauthenticate(input);
}

async function stepUpWithPasskey() {
  const options = await auth.startPasskeyLogin(viewerEmail);
  const credential = await getPasskey(options.publicKeyJson);
  await reauthenticate({ method: "PASSKEY", code: credential });
}

async function requestStepUpCode() {
  say(await auth.requestSignInCode(viewerEmail));
  stepUpMode = "sign-in-code";
  $("step-up-sign-in-code-label").hidden = false;
  $("step-up-submit").hidden = false;
  $("step-up-sign-in-code").focus();
}

// A new session replaces this one (the refresh cookie is the new session's); the old one is
// revoked so the list shows one session for this browser.
async function signInAgainWithCode() {
  const previous = currentSessionId;
  const challenge = await auth.signInWithCode(viewerEmail, $("step-up-sign-in-code").value);
  if (challenge) return say("This account has two-factor authentication: sign out and sign in again.", "error");
  if (previous) await auth.query(REVOKE, { id: previous });
  await afterStepUp();
  await loadAccount();
}

async function startEnrollment() {
  const { startTotpEnrollment: result } = await auth.query(START_ENROLLMENT);
  if (result.__typename === "ReauthenticationRequired") return askStepUp(result, startEnrollment);
  if (result.__typename !== "TotpEnrollment") return say(result.message, "error");
  pendingFactorId = result.factorId;
  // An <img> never runs what the SVG holds; the DOM gets no markup from the API.
  $("totp-qr").src = `data:image/svg+xml,${encodeURIComponent(result.qrCodeSvg)}`;
  $("totp-secret").textContent = result.secret;
  $("enrollment").hidden = false;
}

async function confirmEnrollment(code) {
  const { confirmTotpEnrollment: result } = await auth.query(CONFIRM_ENROLLMENT, {
    input: { factorId: pendingFactorId, code },
  });
  if (result.__typename !== "MfaEnabled") return say(result.message, "error");
  // This session is now aal2, with new tokens; the other sessions below aal2 have ended.
  auth.adoptTokens(result.auth);
  $("enrollment").hidden = true;
  $("enroll-code").value = "";
  showRecoveryCodes(result.recoveryCodes);
  say("Two-factor authentication is on.");
  await loadAccount();
}

async function regenerateCodes() {
  const { regenerateRecoveryCodes: result } = await auth.query(REGENERATE);
  if (result.__typename === "ReauthenticationRequired") return askStepUp(result, regenerateCodes);
  showRecoveryCodes(result.codes);
  await loadAccount();
}

// Run an action and turn its failure into a message; a session that ended shows the login form.
async function run(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionEnded) {
      show("signed-out");
      say(error.message, "error");
    } else if (error instanceof AuthFailure || error instanceof ApiUnreachable) {
      say(error.message, "error");
    } else {
      say(`Something went wrong: ${error.message}`, "error");
    }
  }
}

auth.addEventListener("change", (event) => {
  renderToken();
  if (auth.signedIn && event.detail.shared && $("signed-in").hidden) {
    // Another tab signed in: this one joins its session.
    run(loadAccount);
  } else if (!auth.signedIn) {
    show("signed-out");
    if (event.detail.reason) say(event.detail.reason, event.detail.reason.includes("logged out") ? "info" : "error");
  }
});
auth.addEventListener("error", (event) => say(`Could not refresh the access token: ${event.detail.message}`, "error"));

$("credentials").addEventListener("submit", (event) => {
  event.preventDefault();
  const mode = event.submitter ? event.submitter.value : "login";
  const email = $("email").value;
  const password = $("password").value;
  run(async () => {
    say("");
    stopConditionalPasskeyLogin();
    const challenge = await (mode === "signup" ? auth.signup(email, password) : auth.login(email, password));
    $("password").value = "";
    await afterSignIn(challenge, email);
  });
});
$("passkey-login").addEventListener("click", () => run(signInWithPasskey));
$("code-request").addEventListener("click", () => run(requestCode));
$("code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    say("");
    const challenge = await auth.signInWithCode(pendingEmail, $("sign-in-code").value);
    $("sign-in-code").value = "";
    await afterSignIn(challenge, pendingEmail);
  });
});
$("code-cancel").addEventListener("click", () => show("signed-out"));
$("mfa-passkey").addEventListener("click", () => run(verifyWithPasskey));
$("passkey-add").addEventListener("click", () => run(addPasskey));
$("mfa-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    say("");
    const method = $("mfa-recovery").checked ? "RECOVERY_CODE" : "TOTP";
    await auth.verifyMfa(pendingLogin.mfaToken, method, $("mfa-code").value);
    pendingLogin = null;
    $("mfa-code").value = "";
    $("mfa-recovery").checked = false;
    await loadAccount();
  });
});
$("mfa-cancel").addEventListener("click", () => {
  pendingLogin = null;
  show("signed-out");
});
$("mfa-enroll").addEventListener("click", () => run(startEnrollment));
$("enroll-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(() => confirmEnrollment($("enroll-code").value));
});
$("recovery-done").addEventListener("click", () => {
  $("recovery-codes").hidden = true;
});
$("mfa-regenerate").addEventListener("click", () => run(regenerateCodes));
$("step-up-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(stepUp);
});
$("step-up-passkey").addEventListener("click", () => run(stepUpWithPasskey));
$("step-up-email-code").addEventListener("click", () => run(requestStepUpCode));
$("step-up-cancel").addEventListener("click", () => {
  retryAfterStepUp = null;
  stepUpMode = null;
  $("step-up").hidden = true;
});
$("reload").addEventListener("click", () => run(async () => {
  say("");
  await loadAccount();
}));
$("logout").addEventListener("click", () => run(() => auth.logout()));
$("logout-everywhere").addEventListener("click", () => run(() => auth.logout({ everywhere: true })));

// ---- social sign-in ----------------------------------------------------------------------

// The provider returns to this very page (listed in the API's OAUTH_REDIRECT_URIS, exactly).
const REDIRECT_URI = `${location.origin}${location.pathname}`;
const OAUTH_PROVIDER_KEY = "authgraph-example-oauth-provider";

function showMfaStep(challenge) {
  pendingLogin = challenge;
  $("mfa-recovery").parentElement.hidden = !challenge.methods.includes("RECOVERY_CODE");
  show("mfa-step");
  $("mfa-code").focus();
}

async function renderOAuthButtons() {
  const providers = await auth.oauthProviders();
  $("oauth-buttons").replaceChildren(
    ...providers.map((provider) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "oauth";
      button.dataset.provider = provider.id;
      button.textContent = `Sign in with ${provider.name}`;
      button.addEventListener("click", () => run(async () => {
        const url = await auth.startOAuth(provider.id, REDIRECT_URI);
        sessionStorage.setItem(OAUTH_PROVIDER_KEY, provider.id);
        location.assign(url);
      }));
      return button;
    }),
  );
}

// Back from the provider with ?code=...&state=...: finish the sign-in, then clean the URL.
async function completeOAuthReturn() {
  const params = new URLSearchParams(location.search);
  const provider = sessionStorage.getItem(OAUTH_PROVIDER_KEY);
  if (!provider || !(params.has("code") || params.has("error"))) return false;
  sessionStorage.removeItem(OAUTH_PROVIDER_KEY);
  history.replaceState(null, "", REDIRECT_URI);
  if (params.has("error")) {
    show("signed-out");
    say(`The provider did not sign you in (${params.get("error")}).`, "error");
    return true;
  }
  const challenge = await auth.completeOAuth(provider, params.get("code"), params.get("state"), REDIRECT_URI);
  if (challenge) showMfaStep(challenge);
  else await loadAccount();
  return true;
}

$("api-url").textContent = API_URL;
run(async () => {
  const { signInMethods } = await auth.query(SIGN_IN_METHODS);
  methods = signInMethods;
  $("passkey-login").hidden = !methods.passkeys || !passkeysSupported();
  $("code-request").hidden = !methods.emailCodes;
  await renderOAuthButtons();
  if (await completeOAuthReturn()) return;
  if (await auth.resume()) {
    await loadAccount();
  } else {
    show("signed-out");
    // Passkeys in the email field's autofill, for a page opened signed out (conditional UI).
    startConditionalPasskeyLogin();
  }
}).finally(() => {
  if (!$("loading").hidden) show("signed-out");
});

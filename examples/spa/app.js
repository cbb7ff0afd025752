// The example SPA's screens, on top of auth.js. DOM is built with textContent only:
// session data such as user agents comes from other clients and is never parsed as HTML.
import { API_URL } from "./config.js";
import { ApiUnreachable, AuthClient, AuthFailure, SessionEnded } from "./auth.js";
import {
  CONFIRM_ENROLLMENT,
  REAUTHENTICATE,
  REGENERATE,
  REVOKE,
  START_ENROLLMENT,
  VIEWER,
} from "./operations.js";


const auth = new AuthClient(API_URL);
const $ = (id) => document.getElementById(id);

function show(section) {
  for (const id of ["loading", "signed-out", "mfa-step", "signed-in"]) $(id).hidden = id !== section;
}

// The MfaRequired answer of the login in progress, and the action a step-up prompt retries.
let pendingLogin = null;
let pendingFactorId = null;
let retryAfterStepUp = null;

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
  $("viewer-id").textContent = viewer.id;
  $("mfa-status").textContent = viewer.mfaEnabled
    ? `on, ${viewer.recoveryCodesLeft} recovery codes left`
    : "off";
  $("mfa-enroll").hidden = viewer.mfaEnabled;
  $("mfa-regenerate").hidden = !viewer.mfaEnabled;
  $("sessions").replaceChildren(...viewer.sessions.map(sessionRow));
  renderToken();
  show("signed-in");
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

// ReauthenticationRequired: ask for the password (no MFA) or a code, then retry `action`.
function askStepUp(refusal, action) {
  retryAfterStepUp = action;
  const withMfa = refusal.methods.length > 0;
  $("step-up-reason").textContent = refusal.message;
  $("step-up-password-label").hidden = withMfa;
  $("step-up-code-label").hidden = !withMfa;
  $("step-up-recovery-label").hidden = !refusal.methods.includes("RECOVERY_CODE");
  $("step-up-password").value = "";
  $("step-up-code").value = "";
  $("step-up").hidden = false;
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

async function stepUp() {
  const withMfa = $("step-up-password-label").hidden;
  const input = withMfa
    ? { method: $("step-up-recovery").checked ? "RECOVERY_CODE" : "TOTP", code: $("step-up-code").value }
    : { password: $("step-up-password").value };
  const { reauthenticate: result } = await auth.query(REAUTHENTICATE, { input });
  if (result.__typename !== "Reauthenticated") return say(result.message, "error");
  // A new authentication: fresh tokens for this session (the refresh cookie was replaced).
  auth.adoptTokens(result.auth);
  $("step-up").hidden = true;
  say("");
  const action = retryAfterStepUp;
  retryAfterStepUp = null;
  if (action) await action();
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
    const challenge = await (mode === "signup" ? auth.signup(email, password) : auth.login(email, password));
    $("password").value = "";
    if (challenge) {
      pendingLogin = challenge;
      $("mfa-recovery").parentElement.hidden = !challenge.methods.includes("RECOVERY_CODE");
      show("mfa-step");
      $("mfa-code").focus();
      return;
    }
    await loadAccount();
  });
});
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
$("step-up-cancel").addEventListener("click", () => {
  retryAfterStepUp = null;
  $("step-up").hidden = true;
});
$("reload").addEventListener("click", () => run(async () => {
  say("");
  await loadAccount();
}));
$("logout").addEventListener("click", () => run(() => auth.logout()));

$("api-url").textContent = API_URL;
run(async () => {
  if (await auth.resume()) {
    await loadAccount();
  } else {
    show("signed-out");
  }
}).finally(() => {
  if (!$("loading").hidden) show("signed-out");
});

// The example SPA's screens, on top of auth.js. DOM is built with textContent only:
// session data such as user agents comes from other clients and is never parsed as HTML.
import { API_URL } from "./config.js";
import { ApiUnreachable, AuthClient, AuthFailure, SessionEnded } from "./auth.js";

const VIEWER = `query Account {
  viewer {
    id email
    sessions { id current createdAt lastUsedAt userAgent ipAddress }
  }
}`;
const REVOKE = `mutation Revoke($id: ID!) {
  revokeSession(id: $id) { __typename ... on Error { message } }
}`;

const auth = new AuthClient(API_URL);
const $ = (id) => document.getElementById(id);

function show(section) {
  for (const id of ["loading", "signed-out", "signed-in"]) $(id).hidden = id !== section;
}

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
  const cells = [session.userAgent || "unknown", session.ipAddress || "", when(session.createdAt), when(session.lastUsedAt)];
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
  $("sessions").replaceChildren(...viewer.sessions.map(sessionRow));
  renderToken();
  show("signed-in");
}

async function revoke(id) {
  const { revokeSession } = await auth.query(REVOKE, { id });
  if (revokeSession.__typename !== "RevokeSessionPayload") say(revokeSession.message, "error");
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
    await (mode === "signup" ? auth.signup(email, password) : auth.login(email, password));
    $("password").value = "";
    await loadAccount();
  });
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

// The browser side of passkeys: WebAuthn calls with the JSON that authgraph speaks.
//
// The server sends options as JSON for PublicKeyCredential.parse{Creation,Request}OptionsFromJSON
// and takes back the JSON of PublicKeyCredential.toJSON() (WebAuthn Level 3; Chromium 129+,
// Firefox 119+, Safari 18+).

export function passkeysSupported() {
  return (
    typeof window.PublicKeyCredential === "function" &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function"
  );
}

/** Whether the browser can offer passkeys in the email field's autofill (conditional UI). */
export async function conditionalMediationAvailable() {
  if (!passkeysSupported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") {
    return false;
  }
  return PublicKeyCredential.isConditionalMediationAvailable().catch(() => false);
}

/** navigator.credentials.create with the server's options; the credential's JSON text. */
export async function createPasskey(publicKeyJson) {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(publicKeyJson));
  const credential = await navigator.credentials.create({ publicKey });
  return JSON.stringify(credential.toJSON());
}

/**
 * navigator.credentials.get with the server's options; the credential's JSON text.
 * `conditional`: wait for the user to pick a passkey from the email field's autofill.
 */
export async function getPasskey(publicKeyJson, { conditional = false, signal } = {}) {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(publicKeyJson));
  const request = { publicKey, signal };
  if (conditional) request.mediation = "conditional";
  const credential = await navigator.credentials.get(request);
  return JSON.stringify(credential.toJSON());
}

// Every GraphQL document the example SPA sends, in one place: `build-manifest.mjs` writes
// them to trusted-documents.json (sha256 hex -> text), the manifest an authgraph server loads
// with TRUSTED_DOCUMENTS (and, in production, TRUSTED_DOCUMENTS_ONLY=true). The SPA then
// sends `documentId: "sha256:<hex>"` instead of the text (config.js TRUSTED_DOCUMENTS).
// Change a document here, then run `node examples/spa/build-manifest.mjs`.

const PAYLOAD = `
  __typename
  ... on AuthPayload { accessToken expiresAt csrfToken user { id email } }
  ... on Error { message }
`;
export const REFRESH = `mutation Refresh { refreshToken { ${PAYLOAD} } }`;
export const VERIFY_MFA = `mutation VerifyMfa($input: VerifyMfaInput!) { verifyMfa(input: $input) { ${PAYLOAD} } }`;
export const LOGOUT = `mutation Logout { logout(scope: CURRENT) { __typename } }`;
// Every session of the account: every device, and so every tab, ends at once.
export const LOGOUT_EVERYWHERE = `mutation LogoutEverywhere { logout(scope: ALL) { __typename } }`;
const AUTHENTICATE = (field, inputType, extra) => `mutation Authenticate($input: ${inputType}!) {
      ${field}(input: $input) { ${PAYLOAD} ${extra} }
    }`;
export const LOGIN = AUTHENTICATE("login", "LoginInput", "... on MfaRequired { mfaToken expiresAt methods }");
export const SIGNUP = AUTHENTICATE("signup", "SignupInput", "");

export const VIEWER = `query Account {
  viewer {
    id email mfaEnabled recoveryCodesLeft hasPassword
    passkeys { id name createdAt lastUsedAt backedUp }
    sessions { id current createdAt lastUsedAt userAgent ipAddress aal }
  }
}`;
const STEP_UP_FIELDS = "... on ReauthenticationRequired { message maxAgeSeconds methods password passkey }";
export const START_ENROLLMENT = `mutation StartEnrollment { startTotpEnrollment {
  __typename ... on TotpEnrollment { factorId secret qrCodeSvg } ${STEP_UP_FIELDS} ... on Error { message }
} }`;
export const CONFIRM_ENROLLMENT = `mutation ConfirmEnrollment($input: ConfirmTotpEnrollmentInput!) {
  confirmTotpEnrollment(input: $input) {
    __typename
    ... on MfaEnabled { recoveryCodes auth { accessToken expiresAt csrfToken user { id email } } }
    ... on Error { message }
  }
}`;
export const REGENERATE = `mutation Regenerate { regenerateRecoveryCodes {
  __typename ... on RecoveryCodes { codes } ${STEP_UP_FIELDS}
} }`;
export const REAUTHENTICATE = `mutation Reauthenticate($input: ReauthenticateInput!) {
  reauthenticate(input: $input) {
    __typename
    ... on Reauthenticated { until auth { accessToken expiresAt csrfToken user { id email } } }
    ... on Error { message }
  }
}`;
export const REVOKE = `mutation Revoke($id: ID!) {
  revokeSession(id: $id) { __typename ... on Error { message } }
}`;
export const SIGN_IN_METHODS = `query SignInMethods { signInMethods { password passkeys emailCodes mfa } }`;

export const START_PASSKEY_REGISTRATION = `mutation StartPasskeyRegistration($input: StartPasskeyRegistrationInput) {
  startPasskeyRegistration(input: $input) {
    __typename ... on PasskeyOptions { ceremonyId publicKeyJson } ${STEP_UP_FIELDS} ... on Error { message }
  }
}`;

export const FINISH_PASSKEY_REGISTRATION = `mutation FinishPasskeyRegistration($input: FinishPasskeyRegistrationInput!) {
  finishPasskeyRegistration(input: $input) {
    __typename ... on PasskeyAdded { passkey { id name } } ... on Error { message }
  }
}`;

export const RENAME_PASSKEY = `mutation RenamePasskey($input: RenamePasskeyInput!) {
  renamePasskey(input: $input) { __typename ... on Error { message } }
}`;

export const REMOVE_PASSKEY = `mutation RemovePasskey($id: ID!) {
  removePasskey(id: $id) { __typename ${STEP_UP_FIELDS} ... on Error { message } }
}`;
const MFA_REQUIRED = "... on MfaRequired { mfaToken expiresAt methods }";
const OPTIONS = `__typename ... on PasskeyOptions { ceremonyId publicKeyJson } ... on Error { message }`;
export const START_PASSKEY_LOGIN = `mutation StartPasskeyLogin($input: StartPasskeyLoginInput) {
  startPasskeyLogin(input: $input) { ${OPTIONS} }
}`;
export const FINISH_PASSKEY_LOGIN = `mutation FinishPasskeyLogin($input: FinishPasskeyLoginInput!) {
  finishPasskeyLogin(input: $input) { ${PAYLOAD} ${MFA_REQUIRED} }
}`;
export const REQUEST_SIGN_IN_CODE = `mutation RequestSignInCode($email: String!) {
  requestSignInCode(email: $email) { __typename ... on SignInCodeSent { message } ... on Error { message } }
}`;
export const SIGN_IN_WITH_CODE = `mutation SignInWithCode($input: SignInWithCodeInput!) {
  signInWithCode(input: $input) { ${PAYLOAD} ${MFA_REQUIRED} }
}`;
export const OAUTH_PROVIDERS = `query Providers { oauthProviders { id name } }`;
export const START_OAUTH = `mutation StartOAuth($input: StartOAuthInput!) {
  startOAuthSignIn(input: $input) {
    __typename ... on OAuthRedirect { authorizationUrl } ... on Error { message }
  }
}`;
export const COMPLETE_OAUTH = `mutation CompleteOAuth($input: CompleteOAuthInput!) {
  completeOAuthSignIn(input: $input) {
    ${PAYLOAD}
    ... on MfaRequired { mfaToken expiresAt methods }
    ... on AccountLinkRequired { email }
  }
}`;

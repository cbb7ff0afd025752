"""Access rules are declared once per field, checked before it runs, and shown in the schema."""

from __future__ import annotations

from fastapi.testclient import TestClient
from graphql import build_schema as parse_sdl

from graph.schema import build_schema
from tests.factories import DELETE_ACCOUNT, RESEND_VERIFICATION, error_codes, gql, signup

AUTHENTICATED = {
    "revokeSession",
    "changePassword",
    "resendVerificationEmail",
    "requestEmailChange",
    "updateProfile",
    "deleteAccount",
    "startTotpEnrollment",
    "confirmTotpEnrollment",
    "regenerateRecoveryCodes",
    "removeMfaFactor",
    "reauthenticate",
    "startPasskeyRegistration",
    "finishPasskeyRegistration",
    "renamePasskey",
    "removePasskey",
    "linkIdentity",
    "unlinkIdentity",
}
# Step-up: a recent authentication at the user's highest level; the password mutations ask
# it of users with MFA only (they take the password anyway).
STEP_UP = {
    "startTotpEnrollment",
    "regenerateRecoveryCodes",
    "removeMfaFactor",
    "startPasskeyRegistration",
    "removePasskey",
    "linkIdentity",
    "unlinkIdentity",
}
PASSWORD_STEP_UP = {"changePassword", "requestEmailChange", "deleteAccount"}
# Administration: the role rule (FORBIDDEN for anyone else), and step-up for every change.
ADMIN_MUTATIONS = {
    "adminDisableUser",
    "adminEnableUser",
    "adminRevokeSessions",
    "adminDeleteUser",
    "adminSetRoles",
}


def test_schema_marks_fields_needing_viewer_authenticated() -> None:
    schema = parse_sdl(build_schema().as_str())
    assert schema.mutation_type is not None
    marked = {
        name
        for name, field in schema.mutation_type.fields.items()
        if field.ast_node is not None
        and any(d.name.value == "authenticated" for d in field.ast_node.directives or ())
    }
    assert marked == AUTHENTICATED


def _directives(name: str) -> dict[str, dict[str, str]]:
    """Each mutation's directives named ``name``, with their arguments as printed."""
    schema = parse_sdl(build_schema().as_str())
    assert schema.mutation_type is not None
    found = {}
    for field_name, field in schema.mutation_type.fields.items():
        for directive in (field.ast_node.directives if field.ast_node else None) or ():
            if directive.name.value == name:
                found[field_name] = {
                    a.name.value: str(getattr(a.value, "value", "")) for a in directive.arguments
                }
    return found


def test_schema_shows_every_step_up_policy() -> None:
    assert _directives("requiresAal") == {
        name: {"level": "2"} for name in STEP_UP | PASSWORD_STEP_UP
    }
    recent = _directives("requiresRecentAuth")
    assert recent == {
        **{
            name: {"maxAgeSeconds": "300", "mfaUsersOnly": "False"}
            for name in STEP_UP | ADMIN_MUTATIONS
        },
        **{name: {"maxAgeSeconds": "300", "mfaUsersOnly": "True"} for name in PASSWORD_STEP_UP},
    }


def test_schema_marks_every_admin_field_with_the_role_rule() -> None:
    schema = parse_sdl(build_schema().as_str())
    assert _directives("requiresRole") == {name: {"role": "ADMIN"} for name in ADMIN_MUTATIONS}
    marked = {
        f"{type_name}.{name}"
        for type_name in ("Query", "AdminQuery")
        for name, field in schema.get_type(type_name).fields.items()  # type: ignore[union-attr]
        if field.ast_node is not None
        and any(d.name.value == "requiresRole" for d in field.ast_node.directives or ())
    }
    assert marked == {"Query.admin", "AdminQuery.users", "AdminQuery.user"}


def test_authenticated_field_without_token_is_refused_before_running(client: TestClient) -> None:
    body = gql(client, DELETE_ACCOUNT, {"password": "whatever it is"})
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]
    body = gql(client, RESEND_VERIFICATION, token="not-a-token")
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"] == "The access token is invalid or expired."


def test_authenticated_field_with_token_runs(client: TestClient) -> None:
    token = signup(client)["accessToken"]
    body = gql(client, RESEND_VERIFICATION, token=token)
    assert body["data"]["resendVerificationEmail"]["__typename"] == "VerificationEmailSent"

"""Email address validation and the canonical form accounts are keyed by."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from auth.errors import ValidationFailed

MAX_EMAIL_LENGTH = 254


def canonical_email(raw: str, *, field: str = "email") -> str:
    """Trim, validate (syntax only, never DNS) and lower-case an address.

    Lower-casing the whole address makes ``Alice@X.com`` and ``alice@x.com`` one account.
    """
    candidate = raw.strip()
    if not candidate:
        raise ValidationFailed(field, "Email is required.")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise ValidationFailed(field, f"Email must be at most {MAX_EMAIL_LENGTH} characters.")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(field, f"Email is not valid: {exc}") from None
    return result.normalized.lower()

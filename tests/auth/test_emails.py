from __future__ import annotations

import pytest

from auth.emails import canonical_email
from auth.errors import ValidationFailed


def test_canonical_email_trims_and_lowercases() -> None:
    assert canonical_email("  Alice@X.COM ") == "alice@x.com"


@pytest.mark.parametrize("raw", ["", "   ", "no-at-sign", "a@", "@b.com", "a@b", "a b@c.com"])
def test_canonical_email_refuses_invalid(raw: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        canonical_email(raw)
    assert caught.value.field == "email"


def test_canonical_email_refuses_overlong() -> None:
    with pytest.raises(ValidationFailed):
        canonical_email("a" * 250 + "@example.com")

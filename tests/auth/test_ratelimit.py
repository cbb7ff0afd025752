"""The rate limiter on its own, in memory: hits, refusals, checks and clearing."""

from __future__ import annotations

import pytest

from auth.config import Source
from auth.errors import ConfigurationError
from auth.ratelimit import RateLimiter
from auth.settings import AuthSettings

# A real secret, so that building settings never writes a development secret file.
ENV = {
    "JWT_SECRET": "k3y-abcdefghijklmnopqrstuvwxyz0123456789",
    "KEY_ENCRYPTION_KEY": "kek-abcdefghijklmnopqrstuvwxyz0123456789",
}


def test_hit_refuses_past_the_limit_with_seconds_to_wait() -> None:
    limiter = RateLimiter("memory://")
    assert [limiter.hit("3/minute", "login", "a@example.com") for _ in range(3)] == [None] * 3
    retry = limiter.hit("3/minute", "login", "a@example.com")
    assert retry is not None
    assert 1 <= retry <= 60


def test_hit_counts_each_key_apart() -> None:
    limiter = RateLimiter("memory://")
    assert limiter.hit("1/minute", "login", "a@example.com") is None
    assert limiter.hit("1/minute", "login", "b@example.com") is None
    assert limiter.hit("1/minute", "signup-ip", "a@example.com") is None
    assert limiter.hit("1/minute", "login", "a@example.com") is not None


def test_check_does_not_consume() -> None:
    limiter = RateLimiter("memory://")
    for _ in range(5):
        assert limiter.check("1/minute", "login", "x") is None
    assert limiter.hit("1/minute", "login", "x") is None
    assert limiter.check("1/minute", "login", "x") is not None


def test_clear_forgets_hits() -> None:
    limiter = RateLimiter("memory://")
    limiter.hit("1/minute", "login", "x")
    limiter.clear("1/minute", "login", "x")
    assert limiter.hit("1/minute", "login", "x") is None


def test_hit_all_stops_at_first_refusal_without_spending_the_rest() -> None:
    limiter = RateLimiter("memory://")
    limiter.hit("1/minute", "ip", "1.2.3.4")
    assert limiter.hit_all(("1/minute", "ip", "1.2.3.4"), ("1/minute", "acct", "a")) is not None
    # The account limit was never touched by the refused call.
    assert limiter.hit("1/minute", "acct", "a") is None


def test_several_limits_in_one_string_must_all_allow() -> None:
    limiter = RateLimiter("memory://")
    assert limiter.hit("5/minute;1/second", "k", "x") is None
    assert limiter.hit("5/minute;1/second", "k", "x") is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOGIN_RATE_LIMIT", "ten per fortnight"),
        ("LOGIN_IP_RATE_LIMIT", "0/minute"),
        ("SIGNUP_RATE_LIMIT", "x"),
        ("REFRESH_RATE_LIMIT", "5/eon"),
        ("EMAIL_RATE_LIMIT", "/hour"),
        ("EMAIL_IP_RATE_LIMIT", "3"),
        ("RATE_LIMIT_STORAGE", "postgres://localhost"),
    ],
)
def test_bad_rate_limit_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        AuthSettings.load(Source({**ENV, name: value}, production=False))


def test_rate_limit_defaults() -> None:
    settings = AuthSettings.load(Source(ENV, production=False))
    assert settings.rate_limit_storage == "memory://"
    assert settings.login_rate_limit == "10/15minutes"
    assert settings.login_ip_rate_limit == "100/15minutes"
    assert settings.signup_rate_limit == "20/hour"

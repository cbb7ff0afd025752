"""The use cases against the in-memory ports (tests/memory.py): no database, no framework.

Fast, and proof that auth/ports.py is a real seam: the same AuthService and AccountService
run here unchanged. The database-backed behaviour is tested again in tests/db and tests/graph.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pyotp
import pytest

from auth import errors
from auth import ways_in as ways
from auth.config import Secret
from auth.lifecycle import AccountService
from auth.mfa import MfaService
from auth.ports import ClientInfo, UnitOfWork
from auth.service import AuthResult, AuthService, MfaChallenge, Viewer
from auth.settings import AuthSettings
from auth.toolkit import AuthToolkit
from auth.ways_in import keeps_another_way_in, require_another_way_in, ways_in
from tests.factories import Clock
from tests.memory import MemoryUnitOfWork

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tremendous purple giraffe"
CLIENT = ClientInfo(user_agent="pytest", ip_address="192.0.2.1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uow() -> MemoryUnitOfWork:
    return MemoryUnitOfWork()


@pytest.fixture
def toolkit(clock: Clock) -> AuthToolkit:
    settings = AuthSettings(
        jwt_secret=Secret("memory-0123456789-abcdefghijklmnop"), bcrypt_rounds=4
    )
    return AuthToolkit(settings, clock)


@pytest.fixture
def service(toolkit: AuthToolkit, uow: MemoryUnitOfWork) -> AuthService:
    seam: UnitOfWork = uow  # type-checked: the in-memory unit of work is a UnitOfWork
    return AuthService(toolkit, seam)


@pytest.fixture
def accounts(toolkit: AuthToolkit, uow: MemoryUnitOfWork) -> AccountService:
    return AccountService(toolkit, uow)


def _viewer(service: AuthService, access_token: str) -> Viewer:
    return service.authenticate(access_token)


def test_signup_then_login_opens_two_sessions(service: AuthService, uow: MemoryUnitOfWork) -> None:
    signed_up = service.signup("Ada@Example.com", PASSWORD, CLIENT)
    logged_in = service.login("ada@example.com", PASSWORD, CLIENT)
    assert isinstance(logged_in, AuthResult)
    assert signed_up.user.email == logged_in.user.email == "ada@example.com"
    assert signed_up.session.id != logged_in.session.id
    assert len(service.list_sessions(signed_up.user.id)) == 2
    # The verification mail was queued in the signup's own transaction.
    assert [m.mail.recipient for m in uow.tables.outbox.values()] == ["ada@example.com"]


def test_signup_with_taken_email_raises_email_taken(service: AuthService) -> None:
    service.signup("taken@example.com", PASSWORD, CLIENT)
    with pytest.raises(errors.EmailTaken):
        service.signup("taken@example.com", PASSWORD, CLIENT)


def test_login_with_wrong_password_raises_invalid_credentials(service: AuthService) -> None:
    service.signup("wrong@example.com", PASSWORD, CLIENT)
    with pytest.raises(errors.InvalidCredentials):
        service.login("wrong@example.com", "not the password at all", CLIENT)
    with pytest.raises(errors.InvalidCredentials):
        service.login("nobody@example.com", PASSWORD, CLIENT)


def test_result_carries_csrf_token_of_its_session(service: AuthService) -> None:
    result = service.signup("csrf@example.com", PASSWORD, CLIENT)
    assert service.toolkit.csrf_matches(result.session.id, result.csrf_token)
    assert not service.toolkit.csrf_matches(result.session.id, "forged")


def test_refresh_reuse_after_grace_revokes_session(service: AuthService, clock: Clock) -> None:
    first = service.signup("reuse@example.com", PASSWORD, CLIENT)
    rotated = service.refresh(first.refresh_token, CLIENT)
    assert rotated.session.id == first.session.id
    clock.now += timedelta(seconds=service.settings.refresh_reuse_grace_seconds + 1)
    with pytest.raises(errors.InvalidRefreshToken):
        service.refresh(first.refresh_token, CLIENT)
    with pytest.raises(errors.InvalidRefreshToken):
        service.refresh(rotated.refresh_token, CLIENT)  # the whole session ended
    with pytest.raises(errors.InvalidAccessToken):
        service.authenticate(rotated.access.token)


def test_change_password_ends_other_sessions(service: AuthService) -> None:
    first = service.signup("change@example.com", PASSWORD, CLIENT)
    other = service.login("change@example.com", PASSWORD, CLIENT)
    assert isinstance(other, AuthResult)
    viewer = _viewer(service, first.access.token)
    service.change_password(viewer, PASSWORD, NEW_PASSWORD, CLIENT)
    with pytest.raises(errors.InvalidAccessToken):
        service.authenticate(other.access.token)
    assert service.authenticate(first.access.token).session.id == first.session.id
    service.login("change@example.com", NEW_PASSWORD, CLIENT)


def test_change_password_with_wrong_current_password_raises(service: AuthService) -> None:
    first = service.signup("current@example.com", PASSWORD, CLIENT)
    with pytest.raises(errors.InvalidCredentials, match="current password"):
        service.change_password(
            _viewer(service, first.access.token), "guess guess guess", NEW_PASSWORD, CLIENT
        )


def test_login_past_account_limit_raises_rate_limited(service: AuthService) -> None:
    service.signup("limited@example.com", PASSWORD, CLIENT)
    allowed = int(service.settings.login_rate_limit.split("/")[0])
    for _ in range(allowed):
        with pytest.raises(errors.InvalidCredentials):
            service.login("limited@example.com", "wrong password here", CLIENT)
    with pytest.raises(errors.RateLimited):
        service.login("limited@example.com", PASSWORD, CLIENT)


def test_verify_email_with_token_from_mail_marks_verified(
    service: AuthService, accounts: AccountService, uow: MemoryUnitOfWork
) -> None:
    result = service.signup("verify@example.com", PASSWORD, CLIENT)
    (mail,) = uow.tables.outbox.values()
    match = re.search(r"token=([A-Za-z0-9_\-]+)", mail.mail.text)
    assert match is not None
    assert accounts.verify_email(match.group(1)) == "verify@example.com"
    user = uow.users.get(result.user.id)
    assert user is not None
    assert user.email_verified
    with pytest.raises(errors.InvalidEmailToken):
        accounts.verify_email(match.group(1))  # spent


def test_rollback_undoes_uncommitted_writes(uow: MemoryUnitOfWork, clock: Clock) -> None:
    uow.users.add(email="kept@example.com", password_hash="x", now=clock.now)
    uow.commit()
    uow.users.add(email="dropped@example.com", password_hash="x", now=clock.now)
    uow.rollback()
    assert uow.users.get_by_email("kept@example.com") is not None
    assert uow.users.get_by_email("dropped@example.com") is None


def test_delete_account_with_password_removes_sessions(
    service: AuthService, accounts: AccountService, uow: MemoryUnitOfWork
) -> None:
    result = service.signup("delete@example.com", PASSWORD, CLIENT)
    assert accounts.delete_account(_viewer(service, result.access.token), PASSWORD) == (
        result.user.id
    )
    assert uow.tables.sessions == {}
    with pytest.raises(errors.InvalidAccessToken):
        service.authenticate(result.access.token)


def test_mfa_enrollment_login_and_replay_in_memory(
    service: AuthService, toolkit: AuthToolkit, uow: MemoryUnitOfWork, clock: Clock
) -> None:
    mfa = MfaService(toolkit, uow)
    first = service.signup("mfa@example.com", PASSWORD, CLIENT)
    other = service.login("mfa@example.com", PASSWORD, CLIENT)
    assert isinstance(other, AuthResult)
    viewer = _viewer(service, first.access.token)
    enrollment = mfa.start_totp_enrollment(viewer)
    totp = pyotp.TOTP(enrollment.secret)
    enabled = mfa.confirm_totp_enrollment(viewer, enrollment.factor_id, totp.at(clock.now), CLIENT)
    assert len(enabled.recovery_codes) == 10
    assert enabled.auth.session.aal == 2
    # The other session was aal1: enabling MFA ended it.
    with pytest.raises(errors.InvalidAccessToken):
        service.authenticate(other.access.token)

    challenge = service.login("mfa@example.com", PASSWORD, CLIENT)
    assert isinstance(challenge, MfaChallenge)
    with pytest.raises(errors.InvalidMfaCode):  # the enrollment's code, replayed
        mfa.verify(challenge.token, "totp", totp.at(clock.now), CLIENT)
    clock.now += timedelta(seconds=30)
    result = mfa.verify(challenge.token, "totp", totp.at(clock.now), CLIENT)
    assert (result.session.aal, result.session.amr) == (2, "pwd otp")
    with pytest.raises(errors.InvalidMfaToken):
        mfa.verify(challenge.token, "recovery_code", enabled.recovery_codes[0], CLIENT)
    with pytest.raises(errors.SecondFactorRequired):
        service.login("mfa@example.com", PASSWORD, CLIENT, second_step=False)


def test_ways_in_count_the_password_and_refuse_losing_the_last(
    toolkit: AuthToolkit, uow: MemoryUnitOfWork, clock: Clock
) -> None:
    with_password = uow.users.add(email="pw@example.com", password_hash="x", now=clock.now)
    without = uow.users.add(email="none@example.com", password_hash=None, now=clock.now)
    # Sign-in codes on (the default): any account's mailbox is a way in.
    assert ways_in(toolkit, uow, with_password) == {ways.PASSWORD: 1, ways.EMAIL_CODE: 1}
    assert ways_in(toolkit, uow, without) == {ways.EMAIL_CODE: 1}
    assert keeps_another_way_in(toolkit, uow, with_password, losing=ways.PASSWORD)
    codes_off = AuthToolkit(replace(toolkit.settings, sign_in_codes_enabled=False), clock)
    assert ways_in(codes_off, uow, with_password) == {ways.PASSWORD: 1}
    assert ways_in(codes_off, uow, without) == {}
    assert not keeps_another_way_in(codes_off, uow, with_password, losing=ways.PASSWORD)
    with pytest.raises(errors.LastSignInMethod):
        require_another_way_in(codes_off, uow, with_password, losing=ways.PASSWORD)


def test_login_without_password_raises_invalid_credentials(
    service: AuthService, uow: MemoryUnitOfWork, clock: Clock
) -> None:
    uow.users.add(email="none@example.com", password_hash=None, now=clock.now)
    uow.commit()
    with pytest.raises(errors.InvalidCredentials) as raised:
        service.login("none@example.com", PASSWORD, CLIENT)
    assert type(raised.value) is errors.InvalidCredentials


OLD_MFA_KEY = "mfa-old-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW_MFA_KEY = "mfa-new-0123456789-abcdefghijklmnopqrstuvwxyz"


def _mfa_toolkit(clock: Clock, key: str, *previous: str) -> AuthToolkit:
    settings = AuthSettings(
        jwt_secret=Secret("memory-0123456789-abcdefghijklmnop"),
        bcrypt_rounds=4,
        mfa_encryption_key=Secret(key),
        mfa_encryption_previous_keys=tuple(Secret(k) for k in previous),
    )
    return AuthToolkit(settings, clock)


def test_mfa_reencrypt_reseals_under_the_current_key_and_keeps_a_concurrent_rewrite(
    uow: MemoryUnitOfWork, clock: Clock
) -> None:
    old = _mfa_toolkit(clock, OLD_MFA_KEY)
    secrets_by_user = {}
    for email in ("first@example.com", "second@example.com"):
        auth = AuthService(old, uow)
        viewer = _viewer(auth, auth.signup(email, PASSWORD, CLIENT).access.token)
        enrollment = MfaService(old, uow).start_totp_enrollment(viewer)
        code = pyotp.TOTP(enrollment.secret).at(clock.now)
        MfaService(old, uow).confirm_totp_enrollment(viewer, enrollment.factor_id, code, CLIENT)
        secrets_by_user[viewer.user.id] = enrollment.secret
    stored = {f.id: f.secret_sealed for f in uow.tables.mfa_factors.values()}

    wrong = MfaService(_mfa_toolkit(clock, NEW_MFA_KEY, "wrong-" + OLD_MFA_KEY), uow)
    with pytest.raises(errors.ConfigurationError, match="MFA_ENCRYPTION_PREVIOUS_KEYS"):
        wrong.reencrypt_secrets()
    assert {f.id: f.secret_sealed for f in uow.tables.mfa_factors.values()} == stored

    rotating = _mfa_toolkit(clock, NEW_MFA_KEY, OLD_MFA_KEY)
    reencrypting = MfaService(rotating, uow)
    first_id = next(iter(stored))
    plain_replace = reencrypting.mfa.replace_secret
    theirs: list[str] = []

    def racing(factor_id: str, *, old: str, new: str) -> bool:
        # Another run reseals the first factor just before this run's compare-and-set.
        if factor_id == first_id and not theirs:
            row = uow.tables.mfa_factors[factor_id]
            secret = rotating.secret_box.open(old, user_id=row.user_id)
            assert secret is not None
            theirs.append(rotating.secret_box.seal(secret, user_id=row.user_id))
            assert plain_replace(factor_id, old=old, new=theirs[0])
            uow.commit()
        return plain_replace(factor_id, old=old, new=new)

    reencrypting.mfa.replace_secret = racing  # type: ignore[method-assign]
    done = reencrypting.reencrypt_secrets()
    assert (done.rewritten, done.current) == (1, 1)
    assert uow.tables.mfa_factors[first_id].secret_sealed == theirs[0]
    again = MfaService(rotating, uow).reencrypt_secrets()
    assert (again.rewritten, again.current) == (0, 2)
    # The previous key removed: every secret still opens, under the new key alone.
    box = _mfa_toolkit(clock, NEW_MFA_KEY).secret_box
    for factor in uow.tables.mfa_factors.values():
        assert (
            box.open(factor.secret_sealed, user_id=factor.user_id)
            == (secrets_by_user[factor.user_id])
        )

"""Registration modes, allowed domains, invitations, administration and the audit log, with no app: a session on a
fresh SQLite database and a frozen clock."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

import administration
import audit
import registration
import vault
from accounts import Passwords, Taken
from registration import AllowedDomains, Refusal, RegistrationMode, RegistrationPolicy
from schema import ApiToken, AuditEvent, Base, Invitation, Secret, User, UserSession
from tests.helpers import FrozenClock

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CLI = audit.COMMAND_LINE
CHEAP = vault.KdfCost(19456, 2, 1)
POLICY = vault.Policy(max_failed_attempts=5, max_lifetime=timedelta(days=30), retention=timedelta(days=30))


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'org.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(User(id=1, username="admin", email="admin@example.org", password_hash="x", is_admin=True))
        session.add(User(id=2, username="bob", email="bob@example.org", password_hash="x"))
        session.commit()
        yield session
    engine.dispose()


@pytest.fixture
def clock():
    return FrozenClock(T0)


def policy(mode: str, domains: str = "", users_may_invite: bool = False) -> RegistrationPolicy:
    return RegistrationPolicy(RegistrationMode(mode), AllowedDomains.parse(domains), users_may_invite)


# --- allowed domains --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "email", "admitted"),
    [
        ("example.org", "a@example.org", True),
        ("example.org", "a@EXAMPLE.org", True),  # compared as uniqueness compares
        ("example.org", "a@team.example.org", False),  # exact: no subdomains unless asked for
        ("example.org", "a@badexample.org", False),
        ("example.org", "a@example.org.evil.test", False),
        (".example.org", "a@team.example.org", True),
        (".example.org", "a@a.b.example.org", True),
        (".example.org", "a@example.org", True),  # the parent itself is admitted too (documented)
        ("*.example.org", "a@team.example.org", True),
        ("*.example.org", "a@badexample.org", False),
        ("example.org, corp.test", "a@corp.test", True),
        ("example.org", "a@example.org@evil.test", False),  # the domain is what follows the last @
        ("strasse.example", "a@straße.example", False),  # xn--strae-oqa.example: another domain, though it folds alike
        ("example.org", "a@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.org", True),  # full-width: IDNA maps it to example.org
    ],
)
def test_allowed_domains_are_exact_unless_a_leading_dot_asks_for_subdomains(written, email, admitted):
    assert AllowedDomains.parse(written).admit(email) is admitted


@pytest.mark.parametrize("written", ["example", "exa mple.org", "-bad.org", "*example.org", "..example.org", "@example.org"])
def test_a_domain_list_with_anything_but_domain_names_is_refused(written):
    with pytest.raises(registration.DomainListError):
        AllowedDomains.parse(written)


def test_the_allowed_domains_are_described_in_words():
    assert AllowedDomains.parse("b.org, a.org").described() == "a.org or b.org"
    assert AllowedDomains.parse(".corp.test").described() == "corp.test or any of its subdomains"


# --- what the sign-up page refuses --------------------------------------------------------------------------------------


def test_each_mode_refuses_what_it_should(session, clock):
    invitation, _token = registration.invite(session, session.get(User, 1), None, timedelta(days=1), clock())
    session.commit()
    now = clock()
    assert registration.page_refusal(policy("open"), None, False, now) is None
    assert registration.page_refusal(policy("closed"), invitation, True, now) == Refusal.CLOSED
    assert registration.page_refusal(policy("invite"), None, False, now) == Refusal.INVITATION_NEEDED
    assert registration.page_refusal(policy("invite"), invitation, True, now) is None
    assert registration.page_refusal(policy("invite"), None, True, now) == Refusal.INVITATION_DEAD
    domains = policy("domains", "example.org")
    assert registration.page_refusal(domains, None, False, now) is None
    assert registration.address_refusal(domains, None, "a@example.org") is None
    assert registration.address_refusal(domains, None, "a@other.test") == Refusal.DOMAIN
    assert registration.address_refusal(domains, invitation, "a@other.test") is None  # an invitation lets them in
    clock.advance(days=1)  # the second it expires
    assert registration.page_refusal(policy("invite"), invitation, True, clock()) == Refusal.INVITATION_DEAD


def test_an_invitation_bound_to_an_address_takes_only_that_address(session, clock):
    invitation, _token = registration.invite(session, session.get(User, 1), "Carol@Example.org", timedelta(days=1), clock())
    assert registration.address_refusal(policy("invite"), invitation, "carol@example.org") is None
    assert registration.address_refusal(policy("invite"), invitation, "mallory@example.org") == Refusal.OTHER_ADDRESS


def test_an_invitation_is_stored_as_a_digest_and_works_once(session, clock):
    invitation, token = registration.invite(session, session.get(User, 1), None, timedelta(days=7), clock())
    session.commit()
    assert token not in repr(session.execute(select(Invitation.__table__)).all())
    assert registration.find_invitation(session, token).id == invitation.id
    first = User(username="carol", email="carol@example.org", password_hash="x")
    session.add(first)
    assert registration.use_invitation(session, invitation, first, clock())
    session.commit()
    second = User(username="dave", email="dave@example.org", password_hash="x")
    session.add(second)
    assert not registration.use_invitation(session, invitation, second, clock())
    session.rollback()
    assert session.scalar(select(Invitation.used_by_id)) == first.id


def test_an_expired_invitation_cannot_be_used(session, clock):
    invitation, _token = registration.invite(session, session.get(User, 1), None, timedelta(days=1), clock())
    session.commit()
    clock.advance(days=1)
    user = User(username="carol", email="carol@example.org", password_hash="x")
    session.add(user)
    assert not registration.use_invitation(session, invitation, user, clock())


def test_who_may_invite(session):
    admin, bob = session.get(User, 1), session.get(User, 2)
    assert registration.may_invite(policy("invite"), admin) and not registration.may_invite(policy("invite"), bob)
    assert registration.may_invite(policy("invite", users_may_invite=True), bob)
    assert not registration.may_invite(policy("closed", users_may_invite=True), admin)


def test_under_domains_only_a_confirmed_address_may_invite(session, clock):
    # An unconfirmed address at an allowed domain proves nothing, and an invitation skips the domain rule.
    admin, bob = session.get(User, 1), session.get(User, 2)
    domains = policy("domains", "example.org", users_may_invite=True)
    assert not registration.may_invite(domains, bob) and registration.may_invite(domains, admin)
    bob.email_verified_at = clock()
    assert registration.may_invite(domains, bob)


# --- administration and its audit records ------------------------------------------------------------------------------


def audit_actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def give_access(session, user_id: int) -> None:
    session.add(UserSession(user_id=user_id, token_hash="s" * 64, expires_at=T0 + timedelta(hours=1)))
    session.add(ApiToken(user_id=user_id, name="ci", token_hash="t" * 64))
    session.commit()


def test_disabling_ends_sessions_and_tokens_and_is_audited_with_the_network(session, clock):
    give_access(session, 2)
    bob = session.get(User, 2)
    epoch = bob.device_epoch
    assert administration.disable(session, bob, audit.Actor("admin", "203.0.113.0/24"), clock())
    assert bob.disabled and bob.device_epoch == epoch + 1
    assert session.scalar(select(func.count(UserSession.id))) == 0
    assert session.scalar(select(func.count(ApiToken.id))) == 0
    event = session.scalars(select(AuditEvent)).one()
    assert (event.action, event.actor, event.target, event.network, event.at) == (
        "user.disabled", "admin", "bob", "203.0.113.0/24", T0,
    )  # fmt: skip
    assert not administration.disable(session, bob, CLI, clock())  # already: nothing more written
    assert audit_actions(session) == ["user.disabled"]


def test_a_change_failing_halfway_leaves_neither_the_change_nor_its_audit_record(session, clock, monkeypatch):
    give_access(session, 2)

    def fail(*_args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(administration, "_end_access", fail)  # after disabled_at is flushed, before the commit
    with pytest.raises(RuntimeError):
        administration.disable(session, session.get(User, 2), CLI, clock())
    session.expire_all()
    assert session.get(User, 2).disabled_at is None
    assert session.scalar(select(func.count(UserSession.id))) == 1
    assert audit_actions(session) == []


def test_an_audit_record_that_cannot_be_written_leaves_no_change(session, clock, monkeypatch):
    def fail(*_args, **_kwargs):
        raise RuntimeError("no room for the record")

    monkeypatch.setattr(audit, "record", fail)
    with pytest.raises(RuntimeError):
        administration.set_admin(session, session.get(User, 2), CLI, clock())
    session.expire_all()
    assert not session.get(User, 2).is_admin


def test_a_disabled_owners_secret_cannot_be_opened_and_nothing_is_spent_until_enabled(session, clock):
    keys = vault.KeyRing.parse("k1:" + "A" * 43 + "=", CHEAP, max_derivations=1, wait_seconds=0)
    created = vault.create(session, keys, 2, "Wi-Fi", "CANARY", "open-sesame-42", timedelta(hours=1), 1, 10, clock())
    share_id = created.share_id
    administration.disable(session, session.get(User, 2), CLI, clock())
    assert vault.openable(session, keys, share_id, clock()) is False
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, "open-sesame-42", clock), vault.Gone)
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, "wrong", clock), vault.Gone)
    session.expire_all()
    secret = session.scalars(select(Secret)).one()
    assert (secret.status, secret.view_count, secret.failed_attempts, secret.tries_in_flight) == ("active", 0, 0, 0)
    administration.enable(session, session.get(User, 2), CLI, clock())
    assert vault.openable(session, keys, share_id, clock()) is True
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, "open-sesame-42", clock), vault.Unlocked)


def test_deleting_a_user_erases_their_secrets_in_the_audited_transaction(session, clock):
    keys = vault.KeyRing.parse("k1:" + "A" * 43 + "=", CHEAP, max_derivations=1, wait_seconds=0)
    vault.create(session, keys, 2, "Wi-Fi", "CANARY", "open-sesame-42", timedelta(hours=1), None, 10, clock())
    assert administration.delete_user(session, session.get(User, 2), CLI, clock()) == 1
    assert session.get(User, 2) is None and session.scalar(select(func.count(Secret.id))) == 0
    assert audit_actions(session) == ["user.deleted"]


def test_resetting_two_factor_erases_the_key_and_ends_access(session, clock):
    bob = session.get(User, 2)
    bob.two_factor_since, bob.totp_key_sealed, bob.totp_key_id = T0, b"sealed", "k1"
    give_access(session, 2)
    assert administration.reset_two_factor(session, bob, CLI, clock())
    assert not bob.two_factor_on and bob.totp_key_sealed is None
    assert session.scalar(select(func.count(UserSession.id))) == 0
    assert not administration.reset_two_factor(session, bob, CLI, clock())
    assert audit_actions(session) == ["user.two_factor_reset"]


def test_creating_a_taken_name_writes_nothing(session, clock):
    passwords = Passwords(19456, 2, 1)
    made = administration.create_user(session, passwords, "BOB", "new@example.org", "x" * 12, False, CLI, clock())
    assert made == Taken(("username",))
    assert audit_actions(session) == []


def test_the_audit_log_keeps_events_for_the_retention_and_filters(session, clock):
    audit.record(session, CLI, "user.promoted", "bob", clock())
    clock.advance(days=10)
    audit.record(session, audit.Actor("admin"), "user.disabled", "carol", clock())
    session.commit()
    assert [event.target for event in audit.events(session, name="admin")] == ["carol"]
    assert [event.target for event in audit.events(session, action="user.promoted")] == ["bob"]
    assert audit.purge(session, timedelta(days=10), clock()) == 0  # exactly 10 days old: kept
    clock.advance(seconds=1)
    assert audit.purge(session, timedelta(days=10), clock()) == 1
    with pytest.raises(ValueError):
        audit.record(session, CLI, "secret.read", "bob", clock())


def test_users_pages_by_keyset_and_search_by_the_start_of_a_name_or_address(session, clock):
    for number in range(120):
        session.add(User(username=f"user{number:03}", email=f"u{number:03}@corp.test", password_hash="x"))
    session.commit()
    first = administration.users_page(session, clock())
    assert len(first) == administration.USERS_PAGE_SIZE and first[0].username == "user119"
    second = administration.users_page(session, clock(), after_id=first[-1].id)
    assert second[0].id == first[-1].id - 1
    assert [row.username for row in administration.users_page(session, clock(), "USER00")] == [
        f"user00{n}" for n in range(9, -1, -1)
    ]
    assert [row.username for row in administration.users_page(session, clock(), "u007@")] == ["user007"]
    assert administration.users_page(session, clock(), "ser") == []  # the start only

"""accounts.py's rules one by one, with no app: each test names the behaviour a route relies on (who may do what,
how long a session or link lives, what a code or token opens), so changing the rule fails it. SQLite and a frozen
clock; the PostgreSQL-specific cases live in test_accounts_core.py."""

import base64
import os
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from itsdangerous import URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import accounts
import vault
from schema import AccountToken, ApiToken, RecoveryCode, TokenPurpose, User, UserSession, token_digest
from tests import helpers

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PASSWORD = "violet-harbor-trumpet-42"
CHEAP = vault.KdfCost(19456, 2, 1)
LIMITS = accounts.SessionLimits(
    lifetime=timedelta(hours=12),
    idle=timedelta(hours=1),
    remembered_lifetime=timedelta(days=14),
    remembered_idle=timedelta(days=3),
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0"
)


def ring(*key_ids: str) -> vault.KeyRing:
    return vault.KeyRing({key_id: os.urandom(32) for key_id in key_ids}, CHEAP)


@pytest.fixture(scope="module")
def passwords():
    return accounts.Passwords(memory_kib=19456, time_cost=2, parallelism=1)


engine, session = helpers.engine, helpers.session  # a new SQLite file with every table, and its two accounts


@pytest.fixture
def alice(session):
    return session.get(User, 1)


@pytest.fixture
def bob(session):
    return session.get(User, 2)


def fresh(engine, model, **filters):
    """Read rows as a new request would, past anything the test's session holds in memory."""
    with Session(engine) as other:
        return other.scalars(select(model).filter_by(**filters)).all()


# --- passwords -----------------------------------------------------------------------------------------------------


def test_a_password_opens_only_its_own_account(session, passwords, alice):
    alice.password_hash = passwords.hash(PASSWORD)
    assert passwords.check(alice, PASSWORD) is True
    assert passwords.check(alice, PASSWORD + "x") is False
    assert passwords.check(None, PASSWORD) is False
    alice.password_hash = "not an argon2 hash"
    assert passwords.check(alice, PASSWORD) is False


class SpyHasher:
    def __init__(self, hasher):
        self.hasher, self.verified = hasher, []

    def verify(self, stored, password):
        self.verified.append(stored)
        return self.hasher.verify(stored, password)


def test_an_unknown_account_costs_a_real_verification():
    passwords = accounts.Passwords(memory_kib=19456, time_cost=2, parallelism=1)
    passwords.hasher = spy = SpyHasher(passwords.hasher)
    assert passwords.check(None, PASSWORD) is False
    assert spy.verified == [passwords.dummy_hash]
    assert passwords.dummy_hash.startswith("$argon2id$")


def test_a_hash_made_with_other_costs_asks_for_a_rehash(passwords, alice):
    alice.password_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert passwords.needs_rehash(alice) is True
    alice.password_hash = passwords.hash(PASSWORD)
    assert passwords.needs_rehash(alice) is False


def test_password_feedback_refuses_the_guessable_and_takes_the_strong():
    assert accounts.password_feedback(PASSWORD, []) is None
    feedback = accounts.password_feedback("password1", [])
    assert feedback and isinstance(feedback, str)


def test_password_feedback_counts_the_users_own_name_as_guessable():
    password = "wintergreen-carousel"
    assert accounts.password_feedback(password, ["", None]) is None
    assert accounts.password_feedback(password, ["wintergreen-carousel"]) is not None


def test_password_feedback_reads_only_the_first_72_characters(monkeypatch):
    seen = []
    monkeypatch.setattr(accounts, "zxcvbn", lambda text, user_inputs: seen.append(text) or {"score": 4})
    accounts.password_feedback("a" * 200, [])
    assert seen == ["a" * 72]


def test_password_feedback_always_gives_a_reason(monkeypatch):
    silent = {"score": 0, "feedback": {"warning": "", "suggestions": []}}
    monkeypatch.setattr(accounts, "zxcvbn", lambda text, user_inputs: silent)
    assert accounts.password_feedback("x", []) == "This password is too easy to guess."
    spoken = {"score": 2, "feedback": {"warning": "Too common.", "suggestions": ["", "Add a word."]}}
    monkeypatch.setattr(accounts, "zxcvbn", lambda text, user_inputs: spoken)
    assert accounts.password_feedback("x", []) == "Too common. Add a word."
    monkeypatch.setattr(accounts, "zxcvbn", lambda text, user_inputs: {"score": 3})
    assert accounts.password_feedback("x", []) is None


# --- users -----------------------------------------------------------------------------------------------------------


def test_sign_in_finds_an_account_by_either_spelling(session):
    assert accounts.find_user_for_login(session, "ALICE").id == 1
    assert accounts.find_user_for_login(session, "Alice@Example.org").id == 1
    assert accounts.find_user_for_login(session, "alice@example.com") is None
    assert accounts.find_user_for_login(session, "bob@example.org").id == 2


def test_taken_fields_names_each_field_that_belongs_to_an_account(session):
    assert accounts.taken_fields(session, "Alice", "carol@example.org") == ("username",)
    assert accounts.taken_fields(session, "carol", "BOB@example.org") == ("email",)
    assert accounts.taken_fields(session, "alice", "alice@example.org") == ("username", "email")
    assert accounts.taken_fields(session, email="alice@example.org") == ("email",)
    assert accounts.taken_fields(session, "carol", "carol@example.org") == ()


def test_register_stores_an_account_that_signs_in(engine, session, passwords):
    user = accounts.register(session, passwords, "carol", "carol@example.org", PASSWORD)
    assert isinstance(user, User)
    stored = fresh(engine, User, username="carol")[0]
    assert stored.email == "carol@example.org"
    assert passwords.check(stored, PASSWORD)


def test_register_with_a_refused_claim_writes_nothing(engine, session, passwords):
    claimed = []
    outcome = accounts.register(
        session, passwords, "carol", "carol@example.org", PASSWORD, claim=lambda user: claimed.append(user) or False
    )
    assert outcome == accounts.NotClaimed()
    assert [user.username for user in claimed] == ["carol"]
    assert fresh(engine, User, username="carol") == []


def test_register_with_a_claim_that_holds_stores_the_account(engine, session, passwords):
    outcome = accounts.register(session, passwords, "carol", "carol@example.org", PASSWORD, claim=lambda user: True)
    assert isinstance(outcome, User)
    assert len(fresh(engine, User, username="carol")) == 1


def test_register_whose_claim_meets_a_taken_name_says_which(session, passwords):
    def claim_that_flushes(user):
        session.flush()
        return True

    outcome = accounts.register(session, passwords, "alice", "carol@example.org", PASSWORD, claim=claim_that_flushes)
    assert outcome == accounts.Taken(("username",))


def test_set_password_replaces_the_hash_and_kills_reset_links_only(engine, session, passwords, alice):
    accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "new@example.org")
    accounts.issue_link(session, session.get(User, 2), TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    session.commit()
    accounts.set_password(session, passwords, alice, "new-" + PASSWORD)
    stored = fresh(engine, User, id=1)[0]
    assert passwords.check(stored, "new-" + PASSWORD) and not passwords.check(stored, PASSWORD)
    assert [link.purpose for link in fresh(engine, AccountToken, user_id=1)] == [TokenPurpose.VERIFY_EMAIL]
    assert len(fresh(engine, AccountToken, user_id=2)) == 1


# --- sessions --------------------------------------------------------------------------------------------------------


def test_session_limits_of_a_remembered_and_a_plain_session():
    assert LIMITS.of(True) == (timedelta(days=14), timedelta(days=3))
    assert LIMITS.of(False) == (timedelta(hours=12), timedelta(hours=1))


@pytest.mark.parametrize(("remember", "lifetime"), [(False, timedelta(hours=12)), (True, timedelta(days=14))])
def test_open_session_stores_only_the_digest_and_the_limits(engine, session, alice, remember, lifetime):
    token = accounts.open_session(session, alice, remember, LIMITS, "Chrome on Android", "203.0.113.0/24", T0)
    row = fresh(engine, UserSession, user_id=1)[0]
    assert row.token_hash == token_digest(token) != token
    assert (row.remember, row.device, row.ip_prefix) == (remember, "Chrome on Android", "203.0.113.0/24")
    assert (row.created_at, row.last_seen_at, row.expires_at) == (T0, T0, T0 + lifetime)
    assert len(token) >= 43


def test_resolve_session_finds_the_live_session_of_a_token(session, alice):
    token = accounts.open_session(session, alice, False, LIMITS, "d", "n", T0)
    found = accounts.resolve_session(session, token, LIMITS, T0 + timedelta(minutes=59))
    assert isinstance(found, UserSession) and found.user_id == 1
    assert accounts.resolve_session(session, token + "x", LIMITS, T0) is None


@pytest.mark.parametrize(
    ("remember", "idle_for", "live"),
    [
        (False, timedelta(minutes=61), False),  # a plain session's idle limit
        (True, timedelta(minutes=61), True),  # kept signed in: the longer idle limit
        (True, timedelta(days=3, minutes=1), False),
    ],
)
def test_resolve_session_ends_a_session_idle_too_long(engine, session, alice, remember, idle_for, live):
    token = accounts.open_session(session, alice, remember, LIMITS, "d", "n", T0)
    found = accounts.resolve_session(session, token, LIMITS, T0 + idle_for)
    assert isinstance(found, UserSession) is live
    assert (found == accounts.TimedOut()) is not live
    assert len(fresh(engine, UserSession, user_id=1)) == (1 if live else 0)


def test_resolve_session_ends_a_session_past_its_lifetime_even_when_busy(engine, session, alice):
    token = accounts.open_session(session, alice, False, LIMITS, "d", "n", T0)
    row = session.scalars(select(UserSession)).one()
    row.last_seen_at = T0 + timedelta(hours=11, minutes=59)
    session.commit()
    assert accounts.resolve_session(session, token, LIMITS, T0 + timedelta(hours=12)) == accounts.TimedOut()
    assert fresh(engine, UserSession) == []


def test_touch_session_writes_last_seen_at_most_every_30_seconds(engine, session, alice):
    accounts.open_session(session, alice, False, LIMITS, "d", "n", T0)
    row = session.scalars(select(UserSession)).one()
    accounts.touch_session(session, row, T0 + timedelta(seconds=29))
    assert fresh(engine, UserSession)[0].last_seen_at == T0
    accounts.touch_session(session, row, T0 + timedelta(seconds=30))
    assert fresh(engine, UserSession)[0].last_seen_at == T0 + timedelta(seconds=30)


def test_end_sessions_ends_only_the_matching_ones_and_counts_them(engine, session, alice, bob):
    for user in (alice, alice, bob):
        accounts.open_session(session, user, False, LIMITS, "d", "n", T0)
    assert accounts.end_sessions(session, UserSession.user_id == 1) == 2
    assert [row.user_id for row in fresh(engine, UserSession)] == [2]


def test_session_of_finds_only_the_users_own_session(session, alice, bob):
    accounts.open_session(session, bob, False, LIMITS, "d", "n", T0)
    bobs = session.scalars(select(UserSession)).one()
    assert accounts.session_of(session, alice, bobs.id) is None
    assert accounts.session_of(session, bob, bobs.id).id == bobs.id


def test_end_stale_sessions_keeps_exactly_the_live_ones(engine, session, alice):
    now = T0 + timedelta(days=2)
    cases = {  # device: (remember, created, last seen)
        "live": (False, now - timedelta(hours=2), now - timedelta(minutes=30)),
        "idle plain": (False, now - timedelta(hours=2), now - timedelta(minutes=61)),
        "expired": (False, now - timedelta(hours=12), now - timedelta(minutes=1)),
        "remembered idle a day": (True, now - timedelta(days=2), now - timedelta(days=1)),
        "remembered idle too long": (True, now - timedelta(days=5), now - timedelta(days=3, minutes=1)),
    }
    for device, (remember, created, seen) in cases.items():
        accounts.open_session(session, alice, remember, LIMITS, device, "n", created)
        row = session.scalars(select(UserSession).filter_by(device=device)).one()
        row.last_seen_at = seen
    session.commit()
    assert accounts.end_stale_sessions(session, LIMITS, now) == 3
    assert sorted(row.device for row in fresh(engine, UserSession)) == ["live", "remembered idle a day"]


def test_sessions_of_lists_this_one_first_then_the_most_recent(session, alice, bob):
    for device, seen in (("old", 1), ("here", 2), ("new", 3)):
        accounts.open_session(session, alice, False, LIMITS, device, "n", T0 + timedelta(minutes=seen))
    accounts.open_session(session, bob, False, LIMITS, "bob's", "n", T0)
    here = session.scalars(select(UserSession).filter_by(device="here")).one()
    assert [row.device for row in accounts.sessions_of(session, 1, here.id)] == ["here", "new", "old"]


# --- devices, networks, guess keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        (CHROME_ANDROID, "Chrome on Android"),
        (EDGE_WINDOWS, "Edge on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605 Version/17.0 Safari/605.1", "Safari on macOS"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile Safari/604.1", "Safari on iPhone"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Safari/604.1", "Safari on iPad"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
        ("Mozilla/5.0 (X11; CrOS x86_64) Chrome/131.0 Safari/537.36", "Chrome on ChromeOS"),
        ("Mozilla/5.0 (Windows NT 10.0) Chrome/131.0 Safari/537.36 OPR/115.0", "Opera on Windows"),
        ("curl/8.5.0", "Unknown device"),
        ("Firefox/128.0", "Firefox"),
        ("Android", "Android"),
        ("", "Unknown device"),
    ],
)
def test_device_name_is_coarse_and_names_the_most_specific_browser(user_agent, name):
    assert accounts.device_name(user_agent) == name


@pytest.mark.parametrize(
    ("address", "kwargs", "network"),
    [
        ("203.0.113.77", {}, "203.0.113.0/24"),
        ("2001:db8:1:2:3:4:5:6", {}, "2001:db8:1::/48"),
        ("2001:db8:1:2:3:4:5:6", {"v6_prefix": 64}, "2001:db8:1:2::/64"),
        ("203.0.113.77", {"v4_prefix": 32}, "203.0.113.77/32"),
        (None, {}, ""),
        ("not an address", {}, ""),
    ],
)
def test_ip_prefix_keeps_the_network_never_the_address(address, kwargs, network):
    assert accounts.ip_prefix(address, **kwargs) == network


@pytest.mark.parametrize(
    ("address", "key"),
    [("203.0.113.77", "203.0.113.77"), ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"), ("junk", "junk"), (None, "")],
)
def test_client_network_is_an_ipv4_address_or_an_ipv6_slash_64(address, key):
    assert accounts.client_network(address) == key


def test_short_digest_is_keyed_and_short():
    digest = accounts.short_digest("alice", "key one")
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert digest == accounts.short_digest("alice", "key one")
    assert digest != accounts.short_digest("alice", "key two")
    assert digest != accounts.short_digest("alicf", "key one")


def test_login_guess_key_is_one_per_canonical_spelling():
    key = "server secret"
    assert accounts.login_guess_key(" ALICE ", key) == accounts.login_guess_key("alice", key)
    assert accounts.login_guess_key("alice", key) != accounts.login_guess_key("alice@example.org", key)
    assert accounts.login_guess_key("alice", key) != accounts.login_guess_key("alice", "another secret")
    assert accounts.login_guess_key("alice", key) == "login:" + accounts.short_digest("alice", key)


def test_account_and_device_guess_keys():
    assert accounts.account_guess_key(7) == "user:7"
    assert accounts.guess_device_key("nonce", "k") == "device:" + accounts.short_digest("nonce", "k")
    assert accounts.guess_device_key(None, "k") == accounts.guess_device_key("", "k")


# --- the device cookie ------------------------------------------------------------------------------------------------


def test_a_device_cookie_vouches_for_the_accounts_it_was_given(alice, bob):
    cookie = accounts.DeviceCookie("server secret")
    raw = cookie.with_account(None, alice)
    nonce = cookie.nonce_for(raw, alice)
    assert nonce and len(nonce) >= 22
    assert cookie.nonce_for(raw, bob) is None
    assert accounts.DeviceCookie("another secret").nonce_for(raw, alice) is None
    assert cookie.nonce_for(raw[:-2], alice) is None
    assert cookie.nonce_for(None, alice) is None and cookie.nonce_for("", alice) is None


def test_a_device_cookie_keeps_the_nonce_while_trust_holds(alice, bob):
    cookie = accounts.DeviceCookie("server secret")
    raw = cookie.with_account(None, alice)
    again = cookie.with_account(cookie.with_account(raw, bob), alice)
    assert cookie.nonce_for(again, alice) == cookie.nonce_for(raw, alice)
    assert cookie.nonce_for(again, bob) is not None


def test_a_device_cookie_stops_counting_once_the_epoch_moves(alice):
    cookie = accounts.DeviceCookie("server secret")
    raw = cookie.with_account(None, alice)
    old_nonce = cookie.nonce_for(raw, alice)
    alice.device_epoch += 1
    assert cookie.nonce_for(raw, alice) is None
    renewed = cookie.with_account(raw, alice)
    assert cookie.nonce_for(renewed, alice) not in (None, old_nonce)


def test_a_device_cookie_holds_the_five_most_recent_accounts_newest_first():
    cookie = accounts.DeviceCookie("server secret")
    users = [User(id=user_id, device_epoch=0) for user_id in range(1, 8)]
    raw = None
    for user in users:
        raw = cookie.with_account(raw, user)
    entries = URLSafeSerializer("server secret", salt="secureshare device").loads(raw)
    assert [entry[0] for entry in entries] == [7, 6, 5, 4, 3]
    assert all(len(entry) == 3 and entry[2] == 0 for entry in entries)


@pytest.mark.parametrize("payload", [{"1": ["n", 0]}, [[1, "n"]], [[1, "n", 0, 9]], "text", [None, 5]])
def test_a_signed_device_cookie_of_another_shape_vouches_for_nothing(alice, payload):
    raw = URLSafeSerializer("server secret", salt="secureshare device").dumps(payload)
    assert accounts.DeviceCookie("server secret").nonce_for(raw, alice) is None


def test_a_device_cookie_signed_for_another_purpose_vouches_for_nothing(alice):
    raw = URLSafeSerializer("server secret", salt="another purpose").dumps([[1, "n", 0]])
    assert accounts.DeviceCookie("server secret").nonce_for(raw, alice) is None


def test_forget_devices_moves_the_epoch_by_one(engine, session, alice):
    accounts.forget_devices(session, alice)
    assert alice.device_epoch == 1
    assert fresh(engine, User, id=1)[0].device_epoch == 1
    assert fresh(engine, User, id=2)[0].device_epoch == 0


# --- two-factor --------------------------------------------------------------------------------------------------------


def code_at(key: str, when: datetime) -> str:
    return pyotp.TOTP(key).at(when)


def test_provisioning_uri_names_the_issuer_the_account_and_the_key():
    key = accounts.new_totp_key()
    assert len(key) == 32 and base64.b32decode(key)
    uri = accounts.provisioning_uri(key, "alice")
    assert uri.startswith("otpauth://totp/SecureShare:alice?") and f"secret={key}" in uri and "issuer=SecureShare" in uri


def test_turn_on_two_factor_seals_the_key_for_its_user_only(engine, session, alice, bob):
    keys, key = ring("k1"), accounts.new_totp_key()
    assert accounts.open_totp_key(keys, alice) is None
    assert accounts.turn_on_two_factor(session, keys, alice, key, 41, T0) is True
    stored = fresh(engine, User, id=1)[0]
    assert (stored.totp_key_id, stored.totp_last_step, stored.two_factor_since) == ("k1", 41, T0)
    assert key.encode() not in stored.totp_key_sealed
    assert accounts.open_totp_key(keys, stored) == key
    bob.totp_key_id, bob.totp_key_sealed = stored.totp_key_id, stored.totp_key_sealed  # a row copied to bob
    assert accounts.open_totp_key(keys, bob) is None
    assert accounts.open_totp_key(ring("k1"), stored) is None  # another server key


def test_turn_on_two_factor_twice_keeps_the_first_key(session, alice):
    keys, first = ring("k1"), accounts.new_totp_key()
    assert accounts.turn_on_two_factor(session, keys, alice, first, 1, T0)
    assert accounts.turn_on_two_factor(session, keys, alice, accounts.new_totp_key(), 2, T0) is False
    assert accounts.open_totp_key(keys, alice) == first and alice.totp_last_step == 1


def test_a_pending_key_opens_only_in_its_own_browser_session():
    keys, key = ring("k1"), accounts.new_totp_key()
    stored = accounts.seal_pending_key(keys, 7, key)
    assert stored[0] == "k1"
    assert accounts.open_pending_key(keys, 7, stored) == key
    assert accounts.open_pending_key(keys, 7, list(stored)) == key  # as a JSON session gives it back
    assert accounts.open_pending_key(keys, 8, stored) is None


@pytest.mark.parametrize("stored", [None, "k1", ["k1"], ["k1", "not bytes"], ["k1", b"junk", 3], ("gone", b"x" * 40)])
def test_a_pending_key_of_another_shape_opens_nothing(stored):
    assert accounts.open_pending_key(ring("k1"), 7, stored) is None


def test_a_code_matches_its_step_or_one_either_side():
    key = accounts.new_totp_key()
    step = pyotp.TOTP(key).timecode(T0)
    for offset in (-1, 0, 1):
        assert accounts.matching_totp_step(key, code_at(key, T0 + timedelta(seconds=30 * offset)), T0) == step + offset
    for offset in (-2, 2):
        assert accounts.matching_totp_step(key, code_at(key, T0 + timedelta(seconds=30 * offset)), T0) is None
    assert accounts.matching_totp_step(key, "12345", T0) is None
    assert accounts.matching_totp_step(key, code_at(key, T0) + "0", T0) is None


def two_factor_user(session, user, keys):
    key = accounts.new_totp_key()
    accounts.turn_on_two_factor(session, keys, user, key, 0, T0)
    return key


def test_an_authenticator_code_works_once_and_never_an_older_one(engine, session, alice):
    keys = ring("k1")
    key = two_factor_user(session, alice, keys)
    later = T0 + timedelta(seconds=30)
    assert accounts.accept_second_factor(session, keys, alice, code_at(key, later), later) is True
    assert fresh(engine, User, id=1)[0].totp_last_step == pyotp.TOTP(key).timecode(later)
    assert accounts.accept_second_factor(session, keys, alice, code_at(key, later), later) is False
    assert accounts.accept_second_factor(session, keys, alice, code_at(key, T0), later) is False  # the step before
    spaced = code_at(key, later + timedelta(seconds=30))
    assert accounts.accept_second_factor(session, keys, alice, f"{spaced[:3]} {spaced[3:]}", later) is True


def test_a_code_of_another_account_or_without_two_factor_is_refused(session, alice, bob):
    keys = ring("k1")
    key = two_factor_user(session, alice, keys)
    assert accounts.accept_second_factor(session, keys, bob, code_at(key, T0), T0) is False
    wrong = f"{(int(code_at(key, T0)) + 1) % 1_000_000:06d}"
    assert accounts.accept_second_factor(session, keys, alice, wrong, T0) is False


def test_turn_off_two_factor_erases_the_key_and_only_the_users_codes(engine, session, alice, bob):
    keys = ring("k1")
    two_factor_user(session, alice, keys)
    accounts.new_recovery_codes(session, alice)
    accounts.new_recovery_codes(session, bob)
    accounts.turn_off_two_factor(session, alice)
    stored = fresh(engine, User, id=1)[0]
    assert (stored.totp_key_sealed, stored.totp_key_id, stored.totp_last_step, stored.two_factor_since) == (None,) * 4
    assert fresh(engine, RecoveryCode, user_id=1) == []
    assert len(fresh(engine, RecoveryCode, user_id=2)) == 10


def test_rewrap_moves_keys_to_the_newest_server_key_and_counts_the_stuck(engine, session, alice, bob):
    old = ring("k1")
    alice_key, _ = two_factor_user(session, alice, old), two_factor_user(session, bob, ring("gone"))
    newer = vault.KeyRing({"k2": os.urandom(32), "k1": old._keys["k1"]}, CHEAP)
    assert accounts.two_factor_keys_by_key_id(session) == {"k1": 1, "gone": 1}
    assert accounts.rewrap_totp_keys(session, newer) == (1, 1)
    stored = fresh(engine, User, id=1)[0]
    assert stored.totp_key_id == "k2" and accounts.open_totp_key(newer, stored) == alice_key
    assert accounts.rewrap_totp_keys(session, newer) == (0, 1)


# --- recovery codes ----------------------------------------------------------------------------------------------------


def test_recovery_codes_are_ten_grouped_codes_each_good_once(engine, session, alice):
    codes = accounts.new_recovery_codes(session, alice)
    assert len(codes) == len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    assert accounts.recovery_codes_left(session, alice) == 10
    keys = ring("k1")
    assert accounts.accept_second_factor(session, keys, alice, codes[0].upper().replace("-", " "), T0) is True
    assert accounts.accept_second_factor(session, keys, alice, codes[0], T0) is False
    assert accounts.recovery_codes_left(session, alice) == 9
    assert accounts.accept_second_factor(session, keys, session.get(User, 2), codes[1], T0) is False
    assert accounts.recovery_codes_left(session, alice) == 9


def test_new_recovery_codes_replace_the_old_ones_of_that_user_only(session, alice, bob):
    old = accounts.new_recovery_codes(session, alice)
    accounts.new_recovery_codes(session, bob)
    accounts.new_recovery_codes(session, alice)
    assert accounts.accept_second_factor(session, ring("k1"), alice, old[0], T0) is False
    assert accounts.recovery_codes_left(session, alice) == 10
    assert accounts.recovery_codes_left(session, bob) == 10


@pytest.mark.parametrize(("typed", "recovery"), [("123456", False), ("123 456", False), ("abcd-efgh", True), ("12345", True)])
def test_is_recovery_code_tells_codes_apart(typed, recovery):
    assert accounts.is_recovery_code(typed) is recovery


# --- API tokens ------------------------------------------------------------------------------------------------------------


def test_an_api_token_is_shown_once_and_stored_as_a_digest(engine, session, alice):
    token = accounts.issue_api_token(session, alice, "deploy", timedelta(days=30), T0)
    assert token.startswith("ss_") and len(token) > 40
    row = fresh(engine, ApiToken, user_id=1)[0]
    assert (row.name, row.token_hash, row.created_at, row.expires_at) == (
        "deploy",
        token_digest(token),
        T0,
        T0 + timedelta(days=30),
    )
    assert accounts.issue_api_token(session, alice, "forever", None, T0) != token
    assert fresh(engine, ApiToken, name="forever")[0].expires_at is None


def test_resolve_api_token_refuses_unknown_and_expired_tokens(session, alice):
    token = accounts.issue_api_token(session, alice, "t", timedelta(hours=1), T0)
    assert accounts.resolve_api_token(session, token, T0 + timedelta(minutes=59)).user_id == 1
    assert accounts.resolve_api_token(session, token, T0 + timedelta(hours=1)) is None
    assert accounts.resolve_api_token(session, None, T0) is None
    assert accounts.resolve_api_token(session, "", T0) is None
    assert accounts.resolve_api_token(session, token + "x", T0) is None


def test_resolve_api_token_refuses_a_disabled_owners_token(session, alice):
    # Disabling deletes the tokens, but a token made by a request already under way lands after the deletion.
    token = accounts.issue_api_token(session, alice, "t", None, T0)
    alice.disabled_at = T0
    session.commit()
    assert accounts.resolve_api_token(session, token, T0) is None
    alice.disabled_at = None
    session.commit()
    assert accounts.resolve_api_token(session, token, T0).user_id == 1


def test_resolve_api_token_notes_its_use_at_most_once_a_minute(engine, session, alice):
    token = accounts.issue_api_token(session, alice, "t", None, T0)
    accounts.resolve_api_token(session, token, T0)
    assert fresh(engine, ApiToken)[0].last_used_at == T0
    accounts.resolve_api_token(session, token, T0 + timedelta(seconds=59))
    assert fresh(engine, ApiToken)[0].last_used_at == T0
    accounts.resolve_api_token(session, token, T0 + timedelta(seconds=60))
    assert fresh(engine, ApiToken)[0].last_used_at == T0 + timedelta(seconds=60)


def test_api_tokens_are_listed_and_revoked_per_owner(engine, session, alice, bob):
    accounts.issue_api_token(session, alice, "first", None, T0)
    accounts.issue_api_token(session, alice, "second", None, T0)
    accounts.issue_api_token(session, bob, "bob's", None, T0)
    assert [row.name for row in accounts.api_tokens_of(session, alice)] == ["second", "first"]
    bobs = accounts.api_tokens_of(session, bob)[0]
    assert accounts.api_token_of(session, alice, bobs.id) is None
    first = accounts.api_tokens_of(session, alice)[1]
    assert accounts.api_token_of(session, alice, first.id).name == "first"
    accounts.revoke_api_token(session, first)
    assert sorted(row.name for row in fresh(engine, ApiToken)) == ["bob's", "second"]
    assert accounts.revoke_api_tokens(session, alice) == 1
    assert [row.name for row in fresh(engine, ApiToken)] == ["bob's"]


# --- links sent by email ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verification", "verified", "usable", "creates"),
    [
        (accounts.EmailVerification.OFF, False, True, True),
        (accounts.EmailVerification.OPTIONAL, False, False, True),
        (accounts.EmailVerification.REQUIRED, False, False, False),
        (accounts.EmailVerification.REQUIRED, True, True, True),
        (accounts.EmailVerification.OPTIONAL, True, True, True),
    ],
)
def test_what_an_unconfirmed_address_may_do(alice, verification, verified, usable, creates):
    alice.email_verified_at = T0 if verified else None
    assert accounts.email_usable(alice, verification) is usable
    assert accounts.may_create_secrets(alice, verification) is creates


def test_a_link_is_stored_as_a_digest_with_its_time_and_address(engine, session, alice):
    token = accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "new@example.org")
    session.commit()
    row = fresh(engine, AccountToken)[0]
    assert (row.user_id, row.token_hash, row.email) == (1, token_digest(token), "new@example.org")
    assert (row.created_at, row.expires_at) == (T0, T0 + timedelta(days=1))


def test_a_new_verification_link_replaces_the_older_ones_but_reset_links_add_up(engine, session, alice):
    accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "one@example.org")
    accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    accounts.issue_link(session, session.get(User, 2), TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "b@example.org")
    session.commit()
    accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "two@example.org")
    accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    session.commit()
    mine = fresh(engine, AccountToken, user_id=1)
    assert [row.email for row in mine if row.purpose == TokenPurpose.VERIFY_EMAIL] == ["two@example.org"]
    assert sum(row.purpose == TokenPurpose.PASSWORD_RESET for row in mine) == 2
    assert len(fresh(engine, AccountToken, user_id=2)) == 1


def test_recent_links_counts_one_purpose_of_one_user_in_the_last_hour(session, alice, bob):
    for minutes_ago in (61, 59, 1):
        accounts.issue_link(
            session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0 - timedelta(minutes=minutes_ago)
        )
    accounts.issue_link(session, bob, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "x@example.org")
    session.commit()
    assert accounts.recent_links(session, alice, TokenPurpose.PASSWORD_RESET, T0) == 2


def test_find_link_takes_only_a_live_link_of_its_purpose(session, alice):
    token = accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    session.commit()
    assert accounts.find_link(session, token, TokenPurpose.PASSWORD_RESET, T0 + timedelta(minutes=29)).user_id == 1
    assert accounts.find_link(session, token, TokenPurpose.PASSWORD_RESET, T0 + timedelta(minutes=30)) is None
    assert accounts.find_link(session, token, TokenPurpose.VERIFY_EMAIL, T0) is None
    assert accounts.find_link(session, token + "x", TokenPurpose.PASSWORD_RESET, T0) is None


def test_reset_password_ends_everything_the_old_password_opened(engine, session, passwords, alice, bob):
    for user in (alice, bob):
        accounts.open_session(session, user, False, LIMITS, "d", "n", T0)
        accounts.issue_api_token(session, user, "t", None, T0)
        accounts.issue_link(session, user, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    token = accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "a2@example.org")
    session.commit()
    link = accounts.find_link(session, token, TokenPurpose.PASSWORD_RESET, T0)
    assert accounts.reset_password(session, passwords, link, "new-" + PASSWORD) is True
    stored = fresh(engine, User, id=1)[0]
    assert passwords.check(stored, "new-" + PASSWORD) and stored.device_epoch == 1
    assert fresh(engine, UserSession, user_id=1) == [] and fresh(engine, ApiToken, user_id=1) == []
    assert [row.purpose for row in fresh(engine, AccountToken, user_id=1)] == [TokenPurpose.VERIFY_EMAIL]
    assert len(fresh(engine, UserSession, user_id=2)) == len(fresh(engine, ApiToken, user_id=2)) == 1
    assert len(fresh(engine, AccountToken, user_id=2)) == 1
    bob_stored = fresh(engine, User, id=2)[0]
    assert bob_stored.device_epoch == 0 and bob_stored.password_hash == "x"


def test_a_reset_link_used_meanwhile_changes_nothing(engine, session, passwords, alice):
    token = accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    session.commit()
    with Session(engine) as first, Session(engine) as second:  # two requests holding the same link
        links = [accounts.find_link(each, token, TokenPurpose.PASSWORD_RESET, T0) for each in (first, second)]
        assert accounts.reset_password(first, passwords, links[0], "first-" + PASSWORD) is True
        assert accounts.reset_password(second, passwords, links[1], "second-" + PASSWORD) is False
    assert passwords.check(fresh(engine, User, id=1)[0], "first-" + PASSWORD)


def test_confirm_email_switches_to_the_confirmed_address_once(engine, session, alice):
    token = accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "New@Example.org")
    session.commit()
    with Session(engine) as first, Session(engine) as second:  # two requests holding the same link
        links = [accounts.find_link(each, token, TokenPurpose.VERIFY_EMAIL, T0) for each in (first, second)]
        assert accounts.confirm_email(first, links[0], T0 + timedelta(hours=1)).id == 1
        assert accounts.confirm_email(second, links[1], T0) is None
    stored = fresh(engine, User, id=1)[0]
    assert (stored.email, stored.email_key, stored.email_verified_at) == (
        "New@Example.org",
        "new@example.org",
        T0 + timedelta(hours=1),
    )


def test_confirm_email_of_an_address_taken_meanwhile_changes_nothing(engine, session, alice):
    token = accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "BOB@example.org")
    session.commit()
    link = accounts.find_link(session, token, TokenPurpose.VERIFY_EMAIL, T0)
    assert accounts.confirm_email(session, link, T0) == accounts.Taken(("email",))
    stored = fresh(engine, User, id=1)[0]
    assert (stored.email, stored.email_verified_at) == ("alice@example.org", None)


def test_delete_expired_links_keeps_the_live_ones(engine, session, alice):
    accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=31), T0)
    session.commit()
    assert accounts.delete_expired_links(session, T0 + timedelta(minutes=30)) == 1
    assert [row.expires_at for row in fresh(engine, AccountToken)] == [T0 + timedelta(minutes=31)]


def test_pending_email_is_a_live_link_to_another_address(session, alice, bob):
    assert accounts.pending_email(session, alice, T0) is None
    accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "Alice@Example.org")
    session.commit()
    assert accounts.pending_email(session, alice, T0) is None  # confirming the current address is no change
    accounts.issue_link(session, alice, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "new@example.org")
    accounts.issue_link(session, bob, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "bob2@example.org")
    session.commit()
    assert accounts.pending_email(session, alice, T0) == "new@example.org"
    assert accounts.pending_email(session, alice, T0 + timedelta(days=1)) is None


def test_set_notice_defaults_stores_the_choices(engine, session, alice):
    accounts.set_notice_defaults(session, alice, vault.NoticeChoices(opened="every", destroyed=False, unopened=True))
    stored = fresh(engine, User, id=1)[0]
    assert (stored.notify_opened, stored.notify_destroyed, stored.notify_unopened) == ("every", False, True)


# --- what the first mutation run of accounts.py found untested ---------------------------------------------------------


def test_passwords_hash_with_the_costs_they_were_given():
    hashed = accounts.Passwords(memory_kib=19456, time_cost=2, parallelism=2).hash(PASSWORD)
    assert "$m=19456,t=2,p=2$" in hashed


def test_register_whose_claim_fails_on_the_index_for_another_reason_names_both_fields(engine, session, passwords):
    def claim_refused_by_the_database(user):
        raise IntegrityError("INSERT", {}, Exception("a parallel sign-up, since deleted"))

    outcome = accounts.register(session, passwords, "carol", "carol@example.org", PASSWORD, claim=claim_refused_by_the_database)
    assert outcome == accounts.Taken(("username", "email"))
    assert fresh(engine, User, username="carol") == []


def test_a_session_that_times_out_ends_alone(engine, session, alice, bob):
    stale = accounts.open_session(session, alice, False, LIMITS, "stale", "n", T0)
    later = T0 + timedelta(hours=2)
    for user in (alice, bob):
        accounts.open_session(session, user, False, LIMITS, "busy", "n", later)
    assert accounts.resolve_session(session, stale, LIMITS, later) == accounts.TimedOut()
    assert sorted(row.user_id for row in fresh(engine, UserSession)) == [1, 2]


def test_session_of_picks_the_session_asked_for_among_the_users_own(session, alice):
    for device in ("phone", "laptop"):
        accounts.open_session(session, alice, False, LIMITS, device, "n", T0)
    laptop = session.scalars(select(UserSession).filter_by(device="laptop")).one()
    assert accounts.session_of(session, alice, laptop.id).device == "laptop"


@pytest.mark.parametrize(("remember", "idle"), [(False, LIMITS.idle), (True, LIMITS.remembered_idle)])
def test_end_stale_sessions_keeps_a_session_exactly_at_its_idle_limit(engine, session, alice, remember, idle):
    now = T0 + timedelta(days=4)
    accounts.open_session(session, alice, remember, LIMITS, "d", "n", now - timedelta(minutes=1))
    session.scalars(select(UserSession)).one().last_seen_at = now - idle
    session.commit()
    assert accounts.end_stale_sessions(session, LIMITS, now) == 0
    assert len(fresh(engine, UserSession)) == 1


def test_client_network_keys_ipv6_by_its_slash_64_whatever_the_host_bits():
    assert accounts.client_network("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::"


def test_a_half_stored_two_factor_key_opens_nothing(alice):
    alice.totp_key_id, alice.totp_key_sealed = "k1", None
    assert accounts.open_totp_key(ring("k1"), alice) is None


def test_a_key_stored_before_any_code_was_used_takes_its_first_code(session, alice):
    keys, key = ring("k1"), accounts.new_totp_key()
    accounts.turn_on_two_factor(session, keys, alice, key, 0, T0)
    alice.totp_last_step = None  # enrolled before codes were claimed by step
    session.commit()
    assert accounts.accept_second_factor(session, keys, alice, code_at(key, T0), T0) is True


def test_rewrap_counts_every_key_moved_and_every_key_stuck(engine, session, alice, bob):
    old, gone = ring("k1"), ring("gone")
    more = [User(id=user_id, username=f"u{user_id}", email=f"u{user_id}@example.org", password_hash="x") for user_id in (3, 4)]
    session.add_all(more)
    session.commit()
    for user, keys in ((alice, gone), (bob, gone), (more[0], old), (more[1], old)):  # the stuck ones come first
        two_factor_user(session, user, keys)
    newer = vault.KeyRing({"k2": os.urandom(32), "k1": old._keys["k1"]}, CHEAP)
    assert accounts.rewrap_totp_keys(session, newer) == (2, 2)
    assert sorted(row.id for row in fresh(engine, User) if row.totp_key_id == "k2") == [3, 4]


def test_a_recovery_code_is_taken_with_or_without_its_dashes(session, alice):
    codes = accounts.new_recovery_codes(session, alice)
    keys = ring("k1")
    assert accounts.accept_second_factor(session, keys, alice, codes[0], T0) is True
    assert accounts.accept_second_factor(session, keys, alice, codes[1].replace("-", ""), T0) is True
    assert accounts.accept_second_factor(session, keys, alice, f" {codes[2].upper()} ", T0) is True
    assert accounts.recovery_codes_left(session, alice) == 7


def test_recent_links_leaves_out_a_link_exactly_an_hour_old(session, alice):
    accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0 - timedelta(hours=1))
    session.commit()
    assert accounts.recent_links(session, alice, TokenPurpose.PASSWORD_RESET, T0) == 0


def test_pending_email_reads_only_the_users_own_verification_links(session, alice, bob):
    accounts.issue_link(session, bob, TokenPurpose.VERIFY_EMAIL, timedelta(days=1), T0, "bob2@example.org")
    accounts.issue_link(session, alice, TokenPurpose.PASSWORD_RESET, timedelta(minutes=30), T0)
    session.commit()
    assert accounts.pending_email(session, alice, T0) is None

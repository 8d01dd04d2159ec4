"""The vault on its own: no app, no request; a real SQLite file (PostgreSQL for its VACUUM), real keys, a frozen clock."""

import base64
import logging
import os
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

import vault
from schema import AccessEvent, Secret, User
from tests import helpers
from tests.helpers import FrozenClock, own_postgres_schema

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CHEAP = vault.KdfCost(19456, 2, 1)
POLICY = vault.Policy(max_failed_attempts=5, max_lifetime=timedelta(days=30), retention=timedelta(days=30))
PASSWORD = "open-sesame-42"
CONTENT = "db-password: CANARY-vault-1"


def key_setting(*key_ids: str) -> str:
    return ",".join(f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}" for key_id in key_ids)


engine, session = helpers.engine, helpers.session  # a new SQLite file with every table, and its two accounts


@pytest.fixture
def keys():
    return vault.KeyRing.parse(key_setting("k1"), CHEAP, max_derivations=1, wait_seconds=0)


@pytest.fixture
def clock():
    return FrozenClock(T0)


def make(session, keys, clock, lifetime=timedelta(hours=1), max_views=None, owner_id=1) -> str:
    created = vault.create(session, keys, owner_id, "Wi-Fi", CONTENT, PASSWORD, lifetime, max_views, 10, clock())
    assert isinstance(created, vault.Created)
    return created.share_id


def row(session, share_id: str) -> Secret:
    session.expire_all()
    return session.execute(Secret.by_share_id(share_id)).scalar_one()


def counters(session, share_id: str) -> tuple:
    secret = row(session, share_id)
    return secret.status, secret.view_count, secret.failed_attempts, secret.tries_in_flight


def statuses(session) -> dict[int, str]:
    session.expire_all()
    return dict(session.execute(select(Secret.id, Secret.status)).all())


class RaceClock(FrozenClock):
    """A frozen clock that lets someone else act when it is read the n-th time: a request landing mid-operation.

    unlock and edit read it first when they start and again once the derivation (if any) is done, just before writing.
    """

    def __init__(self, start: datetime, reading: int, action):
        super().__init__(start)
        self.readings, self.reading, self.action = 0, reading, action

    def __call__(self) -> datetime:
        self.readings += 1
        if self.readings == self.reading:
            self.action()
        return self.current


def test_importing_the_vault_loads_no_flask():
    code = "import sys, vault; print(sorted(m for m in sys.modules if m.split('.')[0].startswith('flask')))"
    repo = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


BAD_PAIRS = "ENCRYPTION_KEYS must be id:base64 pairs of 32-byte keys."
ONE_KEY = key_setting("k1")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (key_setting("k1", "k1"), "ENCRYPTION_KEYS names the key id 'k1' twice."),
        ("k1:not-base64!", BAD_PAIRS),
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", BAD_PAIRS),
        (f"bad id:{base64.b64encode(os.urandom(32)).decode()}", BAD_PAIRS),
        (ONE_KEY[:12] + "!" + ONE_KEY[12:], BAD_PAIRS),  # a stray character is refused, not skipped
        (" , ", "ENCRYPTION_KEYS is empty."),
    ],
    ids=["duplicate id", "not base64", "16 bytes", "bad id", "stray character", "no key"],  # fixed ids: the keys are random
)
def test_a_duplicate_id_or_a_bad_key_refuses(setting, message):
    with pytest.raises(vault.KeyRingError) as refused:
        vault.KeyRing.parse(setting, CHEAP)
    assert str(refused.value) == message  # the operator reads it when the app refuses to start


def test_several_keys_are_listed_newest_first():
    ring = vault.KeyRing.parse(" " + key_setting("k3", "k2", "k1").replace(",", " , ") + " ", CHEAP)
    assert (ring.ids, ring.newest_id) == (("k3", "k2", "k1"), "k3")


def test_a_ring_without_limits_runs_two_derivations_at_once_and_waits_ten_seconds():
    for ring in (vault.KeyRing.parse(key_setting("k1"), CHEAP), vault.KeyRing({"k1": os.urandom(32)}, CHEAP)):
        assert ring.wait_seconds == 10
        ring.wait_seconds = 0  # so that the third derivation is refused at once instead of after ten seconds
        with ring.derivation_slot(), ring.derivation_slot(), pytest.raises(vault._DerivationBusy), ring.derivation_slot():
            pass


def test_right_password_unlocks_and_counts_a_view(session, keys, clock):
    share_id = make(session, keys, clock)
    outcome = vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    assert isinstance(outcome, vault.Unlocked) and outcome.content == CONTENT
    assert outcome.secret.view_count == 1  # as stored after this view
    assert counters(session, share_id) == ("active", 1, 0, 0)
    assert session.scalars(select(AccessEvent.outcome)).all() == ["unlocked"]


def test_wrong_passwords_count_down_then_destroy(session, keys, clock):
    share_id = make(session, keys, clock)
    for left in (4, 3, 2, 1):
        assert vault.unlock(session, keys, POLICY, share_id, "wrong", clock) == vault.WrongPassword(left)
    assert vault.unlock(session, keys, POLICY, share_id, "wrong", clock) == vault.Destroyed()
    secret = row(session, share_id)
    assert (secret.status, secret.ciphertext, secret.salt, secret.nonce) == ("destroyed", None, None, None)
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock) == vault.Gone()


def test_busy_derivation_spends_nothing(session, keys, clock):
    share_id = make(session, keys, clock)
    with keys.derivation_slot():  # someone else's unlock holds the only slot
        for _ in range(6):
            assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock) == vault.Busy(retry_after=1)
    assert counters(session, share_id) == ("active", 0, 0, 0)
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock), vault.Unlocked)


class BrokenRing(vault.KeyRing):
    def derive(self, *args):
        raise RuntimeError("a bug in the middle of a derivation")


def test_an_error_during_the_derivation_gives_the_try_back(session, keys, clock):
    share_id = make(session, keys, clock)
    broken = BrokenRing(dict.fromkeys(["k1"], b"\0" * 32), CHEAP)
    with pytest.raises(RuntimeError):
        vault.unlock(session, broken, POLICY, share_id, PASSWORD, clock)
    assert counters(session, share_id) == ("active", 0, 0, 0)


def test_a_right_password_in_flight_never_counts_toward_destruction(session, keys, clock):
    share_id = make(session, keys, clock)
    for _ in range(3):
        vault.unlock(session, keys, POLICY, share_id, "wrong", clock)
    assert vault._reserve_try(session, POLICY, row(session, share_id).id, clock())  # a right password, still deriving
    assert vault.unlock(session, keys, POLICY, share_id, "wrong", clock) == vault.WrongPassword(1)
    assert counters(session, share_id) == ("active", 0, 4, 1)
    assert vault.unlock(session, keys, POLICY, share_id, "wrong", clock) == vault.TriesInFlight()


@pytest.mark.parametrize("took", [0, 1, 2])
def test_expiry_is_judged_when_the_derivation_is_done(session, keys, clock, took):
    share_id = make(session, keys, clock, lifetime=timedelta(hours=1))
    clock.advance(minutes=59, seconds=59)
    reads = iter([clock(), clock() + timedelta(seconds=took)])  # the derivation took `took` seconds

    outcome = vault.unlock(session, keys, POLICY, share_id, PASSWORD, lambda: next(reads, T0 + timedelta(hours=2)))
    secret = row(session, share_id)
    if took == 0:  # done in the last second of its life
        assert isinstance(outcome, vault.Unlocked)
        assert (secret.status, secret.view_count, secret.tries_in_flight) == ("active", 1, 0)
    else:  # done at the second it expires, or after
        assert outcome == vault.Gone()
        assert (secret.status, secret.view_count, secret.tries_in_flight, secret.ciphertext) == ("expired", 0, 0, None)


def test_last_view_uses_it_up_and_erases(session, keys, clock):
    share_id = make(session, keys, clock, max_views=1)
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock), vault.Unlocked)
    secret = row(session, share_id)
    assert (secret.status, secret.ciphertext) == ("used_up", None)
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock) == vault.Gone()


def test_a_removed_key_answers_key_retired_and_spends_nothing(session, keys, clock):
    share_id = make(session, keys, clock)
    newer_only = vault.KeyRing.parse(key_setting("k2"), CHEAP)
    assert vault.unlock(session, newer_only, POLICY, share_id, PASSWORD, clock) == vault.KeyRetired()
    assert counters(session, share_id) == ("active", 0, 0, 0)
    secret = row(session, share_id)
    assert vault.key_retired(newer_only, secret) and vault.title_of(newer_only, secret) is None


def test_rotation_rewrap_and_reseal_free_the_old_key(session, keys, clock):
    share_id = make(session, keys, clock)
    old = make(session, keys, clock, max_views=1)
    vault.unlock(session, keys, POLICY, old, PASSWORD, clock)  # ended: only its labels still need k1
    rotated = vault.KeyRing({"k2": os.urandom(32), **keys._keys}, CHEAP)
    assert [(use.key_id, use.live_secrets, use.labels) for use in vault.key_usage(session, rotated, clock())] == [
        ("k2", 0, 0),
        ("k1", 1, 2),
    ]
    assert vault.rewrap(session, rotated) == (2, 0)
    assert vault.title_of(rotated, row(session, old)) == "Wi-Fi"
    assert isinstance(vault.unlock(session, rotated, POLICY, share_id, PASSWORD, clock), vault.Unlocked)
    usage = {use.key_id: (use.live_secrets, use.labels) for use in vault.key_usage(session, rotated, clock())}
    assert usage == {"k2": (1, 2), "k1": (0, 0)}
    only_new = vault.KeyRing({"k2": rotated._keys["k2"]}, CHEAP)
    assert vault.unlock(session, only_new, POLICY, share_id, PASSWORD, clock).content == CONTENT


def test_key_status_says_when_the_last_secret_ends(session, keys, clock):
    make(session, keys, clock, lifetime=timedelta(hours=1))
    make(session, keys, clock, lifetime=timedelta(days=3))
    [use] = vault.key_usage(session, keys, clock())
    assert (use.key_id, use.live_secrets, use.last_ends) == ("k1", 2, T0 + timedelta(days=3))


def test_edit_never_moves_expiry_past_the_longest_lifetime(session, keys, clock):
    share_id = make(session, keys, clock, lifetime=timedelta(days=26))
    clock.advance(days=25)
    changes = vault.Changes(title="t", blur_level=1, max_views=None, lifetime=timedelta(days=7))
    assert vault.edit(session, keys, POLICY, share_id, 1, changes, clock) == vault.ExpiryTooLate(T0 + timedelta(days=30))
    changes = vault.Changes(title="t", blur_level=1, max_views=None, lifetime=timedelta(days=5))
    assert isinstance(vault.edit(session, keys, POLICY, share_id, 1, changes, clock), vault.Saved)
    assert row(session, share_id).expires_at == T0 + timedelta(days=30)


def test_edit_after_the_secret_ended_changes_nothing(session, keys, clock):
    share_id = make(session, keys, clock, max_views=1)
    vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    changes = vault.Changes(title="t", blur_level=3, max_views=None)
    assert vault.edit(session, keys, POLICY, share_id, 1, changes, clock) == vault.Gone()
    assert (row(session, share_id).status, row(session, share_id).blur_level) == ("used_up", 10)


def test_edit_replacing_content_needs_the_password_and_spends_a_try(session, keys, clock):
    share_id = make(session, keys, clock)
    wrong = vault.Changes(title="t", blur_level=1, max_views=None, current_password="nope", content="new")
    assert vault.edit(session, keys, POLICY, share_id, 1, wrong, clock) == vault.WrongPassword(4)
    clock.advance(minutes=1)
    right = vault.Changes(title="New", blur_level=1, max_views=5, current_password=PASSWORD, content="new")
    saved = vault.edit(session, keys, POLICY, share_id, 1, right, clock)
    assert isinstance(saved, vault.Saved) and saved.secret.max_views == 5  # the settings change with the content
    secret = row(session, share_id)
    assert (secret.blur_level, secret.max_views, secret.updated_at) == (1, 5, clock())
    assert vault.title_of(keys, secret) == "New"
    assert counters(session, share_id) == ("active", 0, 1, 0)
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock).content == "new"


def test_delete_erases_then_a_second_delete_removes_the_record(session, keys, clock):
    share_id = make(session, keys, clock)
    assert vault.delete(session, share_id, 1, clock()) == vault.Deleted()
    secret = row(session, share_id)
    assert (secret.status, secret.ciphertext) == ("deleted", None)
    clock.advance(days=10)
    assert vault.delete(session, share_id, 1, clock()) == vault.Removed()
    assert session.scalars(select(Secret)).all() == []
    assert vault.delete(session, share_id, 1, clock()) == vault.Gone()


def test_two_purges_at_once_share_the_work(engine, session, keys, clock):
    for _ in range(30):
        vault.delete(session, make(session, keys, clock), 1, clock())
    for _ in range(5):
        make(session, keys, clock)
    clock.advance(days=31)
    barrier = threading.Barrier(2)
    reports = []

    def run() -> None:
        with Session(engine) as own:
            barrier.wait()
            reports.append(vault.purge(own, vault.Policy(purge_batch=7), clock()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.purged for report in reports) == 30
    assert sum(report.expired for report in reports) == 5
    assert {secret.status for secret in session.scalars(select(Secret))} == {"expired"}


def test_the_purge_gives_back_tries_held_by_a_worker_that_died(session, keys, clock):
    share_id = make(session, keys, clock)
    secret = row(session, share_id)
    viewed = make(session, keys, clock)
    assert isinstance(vault.unlock(session, keys, POLICY, viewed, PASSWORD, clock), vault.Unlocked)  # its hold ended well
    assert vault._reserve_try(session, POLICY, secret.id, clock())  # then the worker is killed mid-derivation
    clock.advance(minutes=5)
    assert vault.purge(session, POLICY, clock()).tries_given_back == 0  # it could still be running
    assert counters(session, share_id) == ("active", 0, 0, 1)
    clock.advance(seconds=1)
    assert vault.purge(session, POLICY, clock()).tries_given_back == 1
    assert counters(session, share_id) == ("active", 0, 0, 0)
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock), vault.Unlocked)


# --- keys and sealing -----------------------------------------------------------------------------------------------


def test_create_stores_what_it_was_given(session, keys, clock):
    created = vault.create(session, keys, 1, "Wi-Fi", CONTENT, PASSWORD, timedelta(hours=1), 3, 7, clock())
    secret = row(session, created.share_id)
    assert (created.secret.id, created.secret.unique_id) == (secret.id, created.share_id)
    assert (secret.owner_id, secret.blur_level, secret.max_views) == (1, 7, 3)
    assert (secret.created_at, secret.updated_at, secret.expires_at) == (T0, T0, T0 + timedelta(hours=1))
    assert (len(secret.salt), len(secret.nonce)) == (16, 12)  # a fresh salt per secret; GCM's standard nonce
    assert CONTENT.encode() not in secret.ciphertext


def test_create_without_a_free_derivation_slot_is_busy_and_stores_nothing(session, keys, clock):
    with keys.derivation_slot():
        outcome = vault.create(session, keys, 1, "Wi-Fi", CONTENT, PASSWORD, timedelta(hours=1), None, 10, clock())
    assert outcome == vault.Busy(retry_after=1)
    assert session.scalars(select(Secret)).all() == []


def test_the_content_key_depends_on_the_server_key(session, keys, clock):
    share_id = make(session, keys, clock)
    impostor = vault.KeyRing({"k1": os.urandom(32)}, CHEAP)  # the same key id, another server key
    assert vault.open_content(keys, row(session, share_id), share_id, PASSWORD) == CONTENT
    assert vault.open_content(impostor, row(session, share_id), share_id, PASSWORD) is None


def test_labels_are_sealed_under_a_key_derived_for_labels_alone(session, keys, clock):
    share_id = make(session, keys, clock)
    secret = row(session, share_id)
    server_key = keys._keys["k1"]
    label_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"secureshare label v1").derive(server_key)
    nonce, sealed = secret.title_sealed[:12], secret.title_sealed[12:]
    aad = vault._label_aad("title", secret.id_digest, "k1")
    assert AESGCM(label_key).decrypt(nonce, sealed, aad) == b"Wi-Fi"  # stored labels stay readable across releases
    with pytest.raises(InvalidTag):
        AESGCM(server_key).decrypt(nonce, sealed, aad)  # never the server key itself
    assert label_key != keys.derive("k1", secret.salt, CHEAP, PASSWORD)  # nor the content key


def test_the_file_key_is_wrapped_under_a_key_derived_for_files_alone(keys):
    files_key = os.urandom(32)
    sealed = vault.seal_content(keys, "A" * 22, CONTENT, PASSWORD, files_key)
    content_key = keys.derive("k1", sealed["salt"], CHEAP, PASSWORD)
    wrap_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"secureshare files v1").derive(content_key)
    nonce, wrapped = sealed["files_key_sealed"][:12], sealed["files_key_sealed"][12:]
    aad = vault._content_aad("A" * 22, "k1", vault.FORMAT_VERSION, CHEAP)
    assert AESGCM(wrap_key).decrypt(nonce, wrapped, aad) == files_key  # wrapped file keys stay readable across releases
    with pytest.raises(InvalidTag):
        AESGCM(content_key).decrypt(nonce, wrapped, aad)  # never the content key itself


@pytest.mark.parametrize("cost", [vault.KdfCost(19455, 2, 1), vault.KdfCost(19456, 1, 1)], ids=["memory", "passes"])
def test_a_row_sealed_below_the_kdf_floor_never_opens(session, keys, clock, cost):
    share_id = make(session, keys, clock)
    secret = row(session, share_id)
    # Sealed again as a weakened build (or someone with write access) would: the right password, a cheaper derivation.
    secret.salt, secret.nonce = os.urandom(16), os.urandom(12)
    secret.kdf_memory_kib, secret.kdf_iterations = cost.memory_kib, cost.iterations
    weak = Argon2id(
        salt=secret.salt, length=32, iterations=cost.iterations, lanes=1, memory_cost=cost.memory_kib, secret=keys._keys["k1"]
    ).derive(PASSWORD.encode())
    aad = vault._content_aad(share_id, "k1", vault.FORMAT_VERSION, cost)
    secret.ciphertext = AESGCM(weak).encrypt(secret.nonce, CONTENT.encode(), aad)
    session.commit()
    assert keys.derive("k1", secret.salt, cost, PASSWORD) is None
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock) == vault.WrongPassword(4)


@pytest.mark.parametrize("erased", ["ciphertext", "salt", "nonce"])
def test_a_partly_erased_row_never_opens(session, keys, clock, erased):
    share_id = make(session, keys, clock)
    secret = row(session, share_id)
    setattr(secret, erased, None)
    assert vault.open_content(keys, secret, share_id, PASSWORD) is None


def test_an_active_secret_needs_its_content_key_and_every_record_its_label_key(session, keys, clock):
    rotated = vault.KeyRing({"k2": os.urandom(32), **keys._keys}, CHEAP, max_derivations=1, wait_seconds=0)
    only_k2 = vault.KeyRing({"k2": rotated._keys["k2"]}, CHEAP, max_derivations=1, wait_seconds=0)
    content_under_k1 = make(session, keys, clock)
    ended = make(session, keys, clock, max_views=1)
    vault.unlock(session, keys, POLICY, ended, PASSWORD, clock)
    assert vault.rewrap(session, rotated) == (2, 0)  # the labels move to k2; the content waits for its next right unlock
    # k1 removed too early: a right password must not count as a wrong one.
    assert vault.unlock(session, only_k2, POLICY, content_under_k1, PASSWORD, clock) == vault.KeyRetired()
    assert counters(session, content_under_k1) == ("active", 0, 0, 0)
    assert not vault.key_retired(only_k2, row(session, ended))  # an ended record needs only its labels

    labels_under_k1 = make(session, keys, clock)
    assert isinstance(vault.unlock(session, rotated, POLICY, labels_under_k1, PASSWORD, clock), vault.Unlocked)
    assert (row(session, labels_under_k1).key_id, row(session, labels_under_k1).label_key_id) == ("k2", "k1")
    assert vault.unlock(session, only_k2, POLICY, labels_under_k1, PASSWORD, clock) == vault.KeyRetired()
    assert counters(session, labels_under_k1) == ("active", 1, 0, 0)


def test_openable_tells_whether_a_password_may_be_tried_now(session, keys, clock):
    share_id = make(session, keys, clock, lifetime=timedelta(hours=1), max_views=1)
    assert vault.openable(session, keys, "A" * 22, clock()) is None
    assert vault.openable(session, keys, share_id, T0 + timedelta(minutes=59, seconds=59)) is True
    assert vault.openable(session, keys, share_id, T0 + timedelta(hours=1)) is False  # expired, not yet erased
    assert vault.openable(session, vault.KeyRing.parse(key_setting("k2"), CHEAP), share_id, clock()) is False
    vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    assert vault.openable(session, keys, share_id, clock()) is False  # used up


# --- views and tries ------------------------------------------------------------------------------------------------


def test_each_try_is_recorded_with_its_time_and_a_coarse_visitor(session, keys, clock):
    share_id = make(session, keys, clock)
    visitor = vault.Visitor(user_agent="M" * 300, ip_prefix="203.0.113.0/24")
    vault.unlock(session, keys, POLICY, share_id, "wrong", clock, visitor)
    clock.advance(minutes=1)
    vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock, visitor)
    events = session.scalars(select(AccessEvent).order_by(AccessEvent.id)).all()
    assert [(event.outcome, event.at, event.user_agent, event.ip_prefix) for event in events] == [
        ("wrong_password", T0, "M" * 200, "203.0.113.0/24"),
        ("unlocked", T0 + timedelta(minutes=1), "M" * 200, "203.0.113.0/24"),
    ]
    assert row(session, share_id).last_viewed_at == T0 + timedelta(minutes=1)


def test_the_last_view_goes_to_one_of_the_right_passwords_in_flight(session, keys, clock):
    share_id = make(session, keys, clock, max_views=1)
    secret_id = row(session, share_id).id
    for _ in range(5):  # five right passwords deriving at once hold every try
        assert vault._reserve_try(session, POLICY, secret_id, clock())
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock) == vault.TriesInFlight()  # one view is left
    assert vault._take_view(session, POLICY, secret_id, vault.Visitor(), clock())  # the first one is done
    # Until its unlock ends the secret, the last view is taken while the secret is still active:
    assert not vault._take_view(session, POLICY, secret_id, vault.Visitor(), clock())
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock) == vault.Gone()
    assert counters(session, share_id) == ("active", 1, 0, 4)


def test_a_view_or_a_give_back_needs_a_held_try(session, keys, clock):
    share_id = make(session, keys, clock)
    secret_id = row(session, share_id).id  # no try held: none taken, or the purge gave it back as stale
    assert not vault._take_view(session, POLICY, secret_id, vault.Visitor(), clock())
    vault._release_try(session, secret_id)
    assert counters(session, share_id) == ("active", 0, 0, 0)


def test_a_bug_while_recording_the_view_gives_the_try_back(session, keys, clock):
    share_id = make(session, keys, clock)
    with pytest.raises(TypeError):
        vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock, vault.Visitor(user_agent=None))
    assert counters(session, share_id) == ("active", 0, 0, 0)


def test_a_right_password_under_the_newest_key_reseals_nothing(session, keys, clock):
    share_id = make(session, keys, clock)
    sealed = row(session, share_id).salt, row(session, share_id).ciphertext
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock), vault.Unlocked)
    assert (row(session, share_id).salt, row(session, share_id).ciphertext) == sealed


def test_a_wrong_password_destroys_only_its_own_secret(session, keys, clock):
    other = make(session, keys, clock)
    share_id = make(session, keys, clock)
    # The other's last wrong try is counted, and its worker has not yet run the statement that destroys it:
    session.execute(update(Secret).where(Secret.id == row(session, other).id).values(failed_attempts=5))
    session.commit()
    assert vault.unlock(session, keys, POLICY, share_id, "wrong", clock) == vault.WrongPassword(4)
    assert counters(session, other) == ("active", 0, 5, 0)


def test_the_last_wrong_try_as_the_purge_expires_the_secret_leaves_no_try(engine, session, keys, clock):
    share_id = make(session, keys, clock, lifetime=timedelta(hours=1))
    for _ in range(4):
        vault.unlock(session, keys, POLICY, share_id, "wrong", clock)

    def purge_at_expiry() -> None:
        with Session(engine) as cron:
            assert vault.purge(cron, POLICY, T0 + timedelta(hours=1)).expired == 1

    race = RaceClock(T0 + timedelta(minutes=59), reading=2, action=purge_at_expiry)  # while the last guess derives
    assert vault.unlock(session, keys, POLICY, share_id, "wrong", race) == vault.WrongPassword(0)
    assert counters(session, share_id) == ("expired", 0, 5, 0)


def test_an_unlock_at_the_second_of_expiry_erases_only_that_secret(session, keys, clock):
    share_id = make(session, keys, clock)
    other = make(session, keys, clock)
    clock.advance(hours=1)
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock) == vault.Gone()
    secret = row(session, share_id)
    assert (secret.status, secret.ciphertext) == ("expired", None)
    assert row(session, other).status == "active"  # the others wait for the purge


# --- edit and delete ------------------------------------------------------------------------------------------------


def test_only_the_owner_may_edit_or_delete(session, keys, clock):
    share_id = make(session, keys, clock)
    changes = vault.Changes(title="Mine now", blur_level=1, max_views=None)
    assert vault.edit(session, keys, POLICY, share_id, 2, changes, clock) == vault.Gone()
    assert vault.delete(session, share_id, 2, clock()) == vault.Gone()
    secret = row(session, share_id)
    assert (secret.status, secret.blur_level, vault.title_of(keys, secret)) == ("active", 10, "Wi-Fi")


@pytest.mark.parametrize(("max_views", "outcome"), [(1, vault.ViewsTaken(1)), (2, None)])
def test_edit_refuses_a_view_limit_already_reached(session, keys, clock, max_views, outcome):
    share_id = make(session, keys, clock, max_views=3)
    vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    changes = vault.Changes(title="t", blur_level=1, max_views=max_views)
    result = vault.edit(session, keys, POLICY, share_id, 1, changes, clock)
    if outcome:
        assert (result, row(session, share_id).max_views) == (outcome, 3)
    else:
        assert isinstance(result, vault.Saved) and row(session, share_id).max_views == max_views


@pytest.mark.parametrize(("max_views", "saved"), [(1, False), (2, True)])
def test_a_view_landing_during_an_edit_counts_against_the_new_limit(engine, session, keys, clock, max_views, saved):
    share_id = make(session, keys, clock, max_views=3)

    def recipient_views() -> None:
        with Session(engine) as recipient:
            assert isinstance(vault.unlock(recipient, keys, POLICY, share_id, PASSWORD, FrozenClock(T0)), vault.Unlocked)

    race = RaceClock(T0, reading=2, action=recipient_views)  # after the edit's checks, before its write
    result = vault.edit(session, keys, POLICY, share_id, 1, vault.Changes(title="t", blur_level=1, max_views=max_views), race)
    assert isinstance(result, vault.Saved) == saved and (saved or result == vault.Gone())
    assert (row(session, share_id).view_count, row(session, share_id).max_views) == (1, max_views if saved else 3)


def test_an_edit_judges_the_views_taken_as_stored_now(engine, session, keys, clock):
    share_id = make(session, keys, clock, max_views=3)
    loaded = row(session, share_id)  # the owner's request holds it, as it was before the view below
    with Session(engine) as recipient:
        vault.unlock(recipient, keys, POLICY, share_id, PASSWORD, clock)
    changes = vault.Changes(title="t", blur_level=1, max_views=1)
    assert vault.edit(session, keys, POLICY, share_id, 1, changes, clock) == vault.ViewsTaken(1)
    assert loaded.view_count == 1


class SlotTakenAfterOneDerivation(vault.KeyRing):
    def derive(self, *args):
        key = super().derive(*args)
        self._slots.acquire()  # someone else's derivation takes the only slot as ours ends
        return key


def test_an_edit_with_no_slot_left_to_seal_the_new_content_is_busy_and_spends_nothing(session, keys, clock):
    share_id = make(session, keys, clock)
    crowded = SlotTakenAfterOneDerivation(keys._keys, CHEAP, max_derivations=1, wait_seconds=0)
    changes = vault.Changes(title="t", blur_level=1, max_views=None, current_password=PASSWORD, content="new")
    assert vault.edit(session, crowded, POLICY, share_id, 1, changes, clock) == vault.Busy(retry_after=1)
    assert counters(session, share_id) == ("active", 0, 0, 0)
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock).content == CONTENT


def test_delete_touches_only_that_secret(session, keys, clock, caplog):
    ended, other_ended, active, other_active = (make(session, keys, clock, max_views=1) for _ in range(4))
    for share_id in (ended, other_ended):
        vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    assert vault.delete(session, active, 1, clock()) == vault.Deleted()
    assert vault.delete(session, ended, 1, clock()) == vault.Removed()
    assert sorted(statuses(session).values()) == ["active", "deleted", "used_up"]
    assert (row(session, other_active).status, row(session, other_ended).status) == ("active", "used_up")
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_ending_a_secret_leaves_its_sealed_bytes_in_no_database_file(session, keys, clock, tmp_path, caplog):
    share_id = make(session, keys, clock, max_views=1)
    secret = row(session, share_id)
    needles = [secret.ciphertext, secret.salt, secret.nonce]

    def on_disk() -> bytes:  # the database, its WAL and its shared memory
        return b"".join(path.read_bytes() for path in sorted(tmp_path.glob("core.db*")))

    assert all(needle in on_disk() for needle in needles)  # the search finds them while they live
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock), vault.Unlocked)
    assert [needle in on_disk() for needle in needles] == [False, False, False]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]  # the checkpoint was not blocked


# --- expiry, accounts, purge ----------------------------------------------------------------------------------------


def test_expiring_one_account_leaves_the_others(session, keys, clock):
    mine = make(session, keys, clock)
    theirs = make(session, keys, clock, owner_id=2)
    clock.advance(minutes=59, seconds=59)
    assert vault.expire_due(session, clock(), owner_id=1) == 0
    clock.advance(seconds=1)  # the second both expire
    assert vault.expire_due(session, clock(), owner_id=1) == 1
    assert (row(session, mine).status, row(session, theirs).status) == ("expired", "active")


def test_deleting_an_account_removes_its_secrets_and_events(session, keys, clock):
    mine = [make(session, keys, clock), make(session, keys, clock, max_views=1)]
    theirs = make(session, keys, clock, owner_id=2)
    vault.unlock(session, keys, POLICY, mine[1], PASSWORD, clock)
    vault.unlock(session, keys, POLICY, theirs, "wrong", clock)
    assert vault.delete_account(session, session.get(User, 1)) == 2
    assert session.get(User, 1) is None
    assert [secret.owner_id for secret in session.scalars(select(Secret))] == [2]
    assert session.scalars(select(AccessEvent.outcome)).all() == ["wrong_password"]


def test_the_purge_removes_only_records_ended_longer_ago_than_the_retention(session, keys, clock):
    policy = replace(POLICY, purge_batch=1)
    live = make(session, keys, clock, lifetime=timedelta(days=60))  # first in every order; its record is older than the cutoff
    clock.advance(seconds=1)
    at_cutoff, older = make(session, keys, clock), make(session, keys, clock)
    vault.delete(session, older, 1, clock())
    clock.advance(seconds=1)
    vault.delete(session, at_cutoff, 1, clock())
    clock.advance(days=30)  # the cutoff is now the second at_cutoff ended
    assert vault.purge(session, policy, clock()).purged == 1
    assert sorted(statuses(session).values()) == ["active", "deleted"]
    clock.advance(seconds=1)
    assert vault.purge(session, policy, clock()).purged == 1
    assert list(statuses(session).values()) == ["active"] and row(session, live).status == "active"


def test_key_usage_lists_each_key_with_what_it_still_protects(session, keys, clock):
    removed = vault.KeyRing.parse(key_setting("k0"), CHEAP, max_derivations=1, wait_seconds=0)
    rotated = vault.KeyRing({"k2": os.urandom(32), **keys._keys}, CHEAP, max_derivations=1, wait_seconds=0)
    ended_under_k0 = make(session, removed, clock, max_views=1)
    vault.unlock(session, removed, POLICY, ended_under_k0, PASSWORD, clock)  # only its labels still name k0
    make(session, keys, clock, lifetime=timedelta(hours=2))
    make(session, keys, clock, lifetime=timedelta(hours=1))  # due at the time asked, not yet expired by the purge
    make(session, rotated, clock, lifetime=timedelta(hours=3))
    usage = vault.key_usage(session, rotated, T0 + timedelta(hours=1))
    assert [(use.key_id, use.configured, use.live_secrets, use.last_ends, use.labels) for use in usage] == [
        ("k2", True, 1, T0 + timedelta(hours=3), 1),
        ("k1", True, 1, T0 + timedelta(hours=2), 2),
        ("k0", False, 0, None, 1),
    ]


def test_rewrap_leaves_behind_the_records_it_cannot_open(session, keys, clock):
    removed = vault.KeyRing.parse(key_setting("k0"), CHEAP, max_derivations=1, wait_seconds=0)
    rotated = vault.KeyRing({"k2": os.urandom(32), **keys._keys}, CHEAP, max_derivations=1, wait_seconds=0)
    for _ in range(2):
        make(session, removed, clock)
    tampered, movable = make(session, keys, clock), make(session, keys, clock)
    row(session, tampered).title_sealed = os.urandom(40)
    session.commit()
    assert vault.rewrap(session, rotated) == (1, 3)
    assert (row(session, movable).label_key_id, row(session, tampered).label_key_id) == ("k2", "k1")


@pytest.fixture
def postgres():
    with own_postgres_schema("vault") as engine_and_schema:
        yield engine_and_schema


def test_the_purge_on_postgresql_vacuums_the_erased_rows(postgres, keys, clock):
    engine, schema = postgres
    with engine.connect() as connection, Session(connection) as session:  # bound to a connection, not the engine
        session.add(User(id=1, username="alice", email="alice@example.org", password_hash="x"))
        session.commit()
        vault.delete(session, make(session, keys, clock), 1, clock())
        clock.advance(days=31)
        assert vault.purge(session, POLICY, clock()).purged == 1
    with engine.connect() as connection:
        counts = connection.execute(
            text("SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE schemaname = :schema"), {"schema": schema}
        )
        assert {name: count for name, count in counts if name in ("secret", "access_event")} == {"secret": 1, "access_event": 1}


# --- what owners hear of, and disabled owners ---------------------------------------------------------------------


class Told(list):
    """An announce that keeps what it is told, and checks it is told inside the event's transaction."""

    def __call__(self, session, notice):
        assert session.in_transaction()
        self.append(notice)


def secret_id(session, share_id):
    return row(session, share_id).id


def test_owners_hear_of_each_view_and_of_destruction_but_not_of_the_last_views_ending(session, keys, clock):
    told = Told()
    policy = replace(POLICY, announce=told)
    opened, guessed = make(session, keys, clock, max_views=2), make(session, keys, clock)
    visitor = vault.Visitor(user_agent="Firefox", ip_prefix="203.0.113.0/24")
    for _ in range(2):
        assert isinstance(vault.unlock(session, keys, policy, opened, PASSWORD, clock, visitor), vault.Unlocked)
    assert told == [vault.Notice(secret_id(session, opened), "opened", T0, visitor)] * 2  # used up: no news
    told.clear()
    for _ in range(4):
        assert isinstance(vault.unlock(session, keys, policy, guessed, "wrong", clock), vault.WrongPassword)
    assert told == []
    assert vault.unlock(session, keys, policy, guessed, "wrong", clock) == vault.Destroyed()
    assert told == [vault.Notice(secret_id(session, guessed), "destroyed", T0)]


def test_owners_hear_of_expiry_however_it_is_found(session, keys, clock):
    told = Told()
    policy = replace(POLICY, announce=told)
    tried, _, _, deleted = (make(session, keys, clock) for _ in range(4))
    vault.delete(session, deleted, 1, clock())
    clock.advance(hours=1)
    assert vault.unlock(session, keys, policy, tried, PASSWORD, clock) == vault.Gone()
    assert told == [vault.Notice(secret_id(session, tried), "expired", clock())]
    assert vault.expire_due(session, clock(), owner_id=2, announce=told) == 0
    assert vault.expire_due(session, clock(), owner_id=1) == 2  # no one listening: ended all the same
    assert len(told) == 1
    more = make(session, keys, clock)
    clock.advance(hours=1)
    assert vault.purge(session, policy, clock()).expired == 1
    assert told[1:] == [vault.Notice(secret_id(session, more), "expired", clock())]
    last = make(session, keys, clock)
    clock.advance(hours=1)
    assert vault.expire_due(session, clock(), announce=told) == 1
    assert told[2:] == [vault.Notice(secret_id(session, last), "expired", clock())]
    assert row(session, deleted).status == "deleted"  # no news: its owner did it


def test_what_to_hear_of_is_stored_with_the_secret_and_edited_with_it(session, keys, clock):
    plain = make(session, keys, clock)
    assert (row(session, plain).notify_opened, row(session, plain).notify_destroyed, row(session, plain).notify_unopened) == (
        "never",
        False,
        False,
    )
    choices = vault.NoticeChoices(opened="every", destroyed=True, unopened=True)
    created = vault.create(session, keys, 1, "t", CONTENT, PASSWORD, timedelta(hours=1), None, 10, clock(), notices=choices)
    secret = row(session, created.share_id)
    assert (secret.notify_opened, secret.notify_destroyed, secret.notify_unopened) == ("every", True, True)
    keep = vault.Changes(title="t", blur_level=3, max_views=None)
    assert isinstance(vault.edit(session, keys, POLICY, created.share_id, 1, keep, clock), vault.Saved)
    assert (row(session, created.share_id).notify_opened, row(session, created.share_id).blur_level) == ("every", 3)
    change = replace(keep, blur_level=5, notices=vault.NoticeChoices(opened="first", destroyed=False, unopened=True))
    assert isinstance(vault.edit(session, keys, POLICY, created.share_id, 1, change, clock), vault.Saved)
    secret = row(session, created.share_id)
    assert (secret.notify_opened, secret.notify_destroyed, secret.notify_unopened) == ("first", False, True)
    assert secret.blur_level == 5  # the other settings of the same edit are kept too


def disable(session, user_id, moment):
    session.get(User, user_id).disabled_at = moment
    session.commit()


def test_a_disabled_owners_secrets_cannot_be_opened_and_nothing_is_spent(session, keys, clock):
    mine, theirs = make(session, keys, clock), make(session, keys, clock, owner_id=2)
    disable(session, 1, T0)
    assert (vault.openable(session, keys, mine, T0), vault.openable(session, keys, theirs, T0)) == (False, True)
    for password in (PASSWORD, "wrong"):
        assert vault.unlock(session, keys, POLICY, mine, password, clock) == vault.Gone()
    assert counters(session, mine) == ("active", 0, 0, 0)
    assert session.scalars(select(AccessEvent)).all() == []
    assert vault.unlock(session, keys, POLICY, theirs, PASSWORD, clock).content == CONTENT
    disable(session, 1, None)
    assert vault.openable(session, keys, mine, T0) is True
    assert vault.unlock(session, keys, POLICY, mine, PASSWORD, clock).content == CONTENT


def test_an_owner_disabled_while_a_password_is_checked_gives_no_view(session, keys, clock):
    share_id = make(session, keys, clock)
    racing = RaceClock(T0, reading=2, action=lambda: disable(session, 1, T0))
    assert vault.unlock(session, keys, POLICY, share_id, PASSWORD, racing) == vault.Gone()
    assert counters(session, share_id) == ("active", 0, 0, 0)


def test_deleting_an_account_adds_what_it_is_given_to_the_same_transaction(session, keys, clock):
    make(session, keys, clock)

    def fail():
        raise RuntimeError("the audit record could not be written")

    with pytest.raises(RuntimeError):
        vault.delete_account(session, session.get(User, 1), also=fail)
    session.rollback()
    assert [secret.owner_id for secret in session.scalars(select(Secret))] == [1]

    def audit():
        session.add(User(id=3, username="carol", email="carol@example.org", password_hash="x"))

    assert vault.delete_account(session, session.get(User, 1), also=audit) == 1
    session.expire_all()
    assert (session.get(User, 1), session.get(User, 3).username) == (None, "carol")


def test_the_policies_count_only_the_owners_secrets_that_can_still_be_opened(session, keys, clock):
    """ACTIVE_SECRETS_PER_USER and FILE_STORAGE_PER_USER: ended, expired and other people's secrets do not count."""
    sizes = {make(session, keys, clock): 100, make(session, keys, clock, lifetime=timedelta(minutes=10)): 20}
    sizes[make(session, keys, clock)] = 3
    sizes[make(session, keys, clock, owner_id=2)] = 4000
    for share_id, size in sizes.items():
        session.execute(update(Secret).where(Secret.id == row(session, share_id).id).values(file_bytes=size))
    session.commit()
    deleted = list(sizes)[2]
    assert isinstance(vault.delete(session, deleted, 1, clock()), vault.Deleted)
    later = clock() + timedelta(minutes=10)
    assert vault.active_count(session, 1, clock()) == 2
    assert vault.active_file_bytes(session, 1, clock()) == 120
    assert (vault.active_count(session, 1, later), vault.active_file_bytes(session, 1, later)) == (1, 100)
    assert vault.active_file_bytes(session, 3, clock()) == 0


# --- the unlocking form shown again, and the recipient's "I have it" ---------------------------------------------------

MARK = "a" * 64  # a keyed hash of the page form's token, as the route computes it


def unlock_with(session, keys, clock, share_id, mark=MARK, password=PASSWORD):
    return vault.unlock(session, keys, POLICY, share_id, password, clock, form_mark=mark)


def test_the_form_that_unlocked_is_shown_again_without_a_view(session, keys, clock):
    share_id = make(session, keys, clock, max_views=2)
    first = unlock_with(session, keys, clock, share_id)
    assert isinstance(first, vault.Unlocked) and not first.replayed
    clock.advance(minutes=4, seconds=59)
    again = unlock_with(session, keys, clock, share_id)
    assert isinstance(again, vault.Unlocked)
    assert (again.replayed, again.content, again.secret.view_count) == (True, CONTENT, 1)
    assert counters(session, share_id) == ("active", 1, 0, 0)  # no view, and the held try given back
    assert session.scalars(select(AccessEvent.outcome)).all() == ["unlocked"]


def test_a_replay_still_checks_the_password(session, keys, clock):
    share_id = make(session, keys, clock, max_views=2)
    unlock_with(session, keys, clock, share_id)
    assert unlock_with(session, keys, clock, share_id, password="wrong") == vault.WrongPassword(4)
    assert counters(session, share_id) == ("active", 1, 1, 0)


def test_the_last_view_is_shown_again_to_its_form_until_the_content_is_gone(session, keys, clock):
    share_id = make(session, keys, clock, max_views=1)
    assert not unlock_with(session, keys, clock, share_id).replayed
    assert row(session, share_id).status == "used_up"
    assert unlock_with(session, keys, clock, share_id) == vault.Gone()  # used up: the content went with the view


def test_another_form_counts_a_view_of_its_own(session, keys, clock):
    share_id = make(session, keys, clock, max_views=3)
    unlock_with(session, keys, clock, share_id)
    other = unlock_with(session, keys, clock, share_id, mark="b" * 64)
    assert isinstance(other, vault.Unlocked) and not other.replayed
    assert counters(session, share_id) == ("active", 2, 0, 0)


def test_after_the_window_the_same_form_counts_anew(session, keys, clock):
    share_id = make(session, keys, clock, max_views=3)
    unlock_with(session, keys, clock, share_id)
    clock.advance(minutes=5)  # exactly the window: no longer the same visit
    again = unlock_with(session, keys, clock, share_id)
    assert isinstance(again, vault.Unlocked) and not again.replayed
    assert counters(session, share_id) == ("active", 2, 0, 0)
    marks = session.scalars(select(AccessEvent.form_mark).order_by(AccessEvent.id)).all()
    assert marks == [None, MARK]  # the old event let its mark go; the new one holds it


def test_a_double_click_counts_once(session, keys, clock, monkeypatch):
    """Both requests of a double click pass the "already unlocked?" check before either is written."""
    share_id = make(session, keys, clock, max_views=3)
    unlock_with(session, keys, clock, share_id)
    monkeypatch.setattr(vault, "_form_unlocked", lambda *args: False)  # the second request looked before the first wrote
    again = unlock_with(session, keys, clock, share_id)
    assert isinstance(again, vault.Unlocked)
    assert (again.replayed, again.content, again.secret.view_count) == (True, CONTENT, 1)
    assert counters(session, share_id) == ("active", 1, 0, 0)
    assert len(session.scalars(select(AccessEvent)).all()) == 1


def test_the_recipient_ends_the_secret_with_the_form_that_unlocked_it(session, keys, clock):
    share_id = make(session, keys, clock, max_views=3)
    someone_elses = make(session, keys, clock, owner_id=2)
    unlock_with(session, keys, clock, share_id)
    clock.advance(minutes=4)
    visitor = vault.Visitor(user_agent="Firefox", ip_prefix="192.0.2.0/24")
    assert vault.end_by_recipient(session, share_id, MARK, clock(), visitor) == vault.EndedByRecipient()
    secret = row(session, share_id)
    assert (secret.status, secret.ciphertext, secret.salt, secret.nonce) == ("destroyed", None, None, None)
    event = session.scalars(select(AccessEvent).order_by(AccessEvent.id.desc())).first()
    assert (event.outcome, event.at, event.user_agent, event.ip_prefix) == (
        "recipient_ended", clock(), "Firefox", "192.0.2.0/24")
    assert unlock_with(session, keys, clock, share_id) == vault.Gone()
    assert counters(session, someone_elses) == ("active", 0, 0, 0)  # that secret alone


@pytest.mark.parametrize("mark", ["b" * 64, None], ids=["another form", "no form"])
def test_only_the_unlocking_form_may_end_the_secret(session, keys, clock, mark):
    share_id = make(session, keys, clock, max_views=3)
    unlock_with(session, keys, clock, share_id, mark=mark)
    assert vault.end_by_recipient(session, share_id, MARK, clock()) == vault.Gone()
    assert counters(session, share_id) == ("active", 1, 0, 0)


def test_the_unlocking_form_of_another_secret_may_not_end_this_one(session, keys, clock):
    mine, other = make(session, keys, clock, max_views=3), make(session, keys, clock, max_views=3)
    unlock_with(session, keys, clock, mine)
    assert vault.end_by_recipient(session, other, MARK, clock()) == vault.Gone()
    assert statuses(session) == {1: "active", 2: "active"}


def test_the_recipient_may_end_it_only_within_the_window(session, keys, clock):
    share_id = make(session, keys, clock, max_views=3)
    unlock_with(session, keys, clock, share_id)
    clock.advance(minutes=5)
    assert vault.end_by_recipient(session, share_id, MARK, clock()) == vault.Gone()
    assert counters(session, share_id) == ("active", 1, 0, 0)


def test_an_ended_secret_cannot_be_ended_by_its_recipient(session, keys, clock):
    share_id = make(session, keys, clock, max_views=3)
    unlock_with(session, keys, clock, share_id)
    assert vault.end_by_recipient(session, "no-such-share-id", MARK, clock()) == vault.Gone()
    clock.advance(hours=2)  # past its expiry, still within nobody's window but its own record's
    assert vault.end_by_recipient(session, share_id, MARK, clock()) == vault.Gone()
    assert session.scalars(select(AccessEvent.outcome)).all() == ["unlocked"]


def test_a_secret_shared_without_an_account_keeps_the_digest_of_its_manage_link(session, keys, clock):
    created = vault.create(
        session, keys, None, "Wi-Fi", CONTENT, PASSWORD, timedelta(hours=1), None, 10, clock(), manage_digest="d" * 64
    )
    secret = row(session, created.share_id)
    assert (secret.owner_id, secret.manage_digest) == (None, "d" * 64)
    assert row(session, make(session, keys, clock)).manage_digest is None


def test_a_secret_without_files_counts_none(session, keys, clock):
    secret = row(session, make(session, keys, clock))
    assert (secret.file_count, secret.file_bytes, secret.files_key_sealed) == (0, 0, None)
    assert vault.active_file_bytes(session, 1, clock()) == 0

"""The vault on its own: no app, no request; a real SQLite file, real keys, a frozen clock."""

import base64
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import vault
from schema import AccessEvent, Base, Secret, User
from tests.helpers import FrozenClock

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CHEAP = vault.KdfCost(19456, 2, 1)
POLICY = vault.Policy(max_failed_attempts=5, max_lifetime=timedelta(days=30), retention=timedelta(days=30))
PASSWORD = "open-sesame-42"
CONTENT = "db-password: CANARY-vault-1"


def key_setting(*key_ids: str) -> str:
    return ",".join(f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}" for key_id in key_ids)


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        session.add(User(id=1, username="alice", email="alice@example.org", password_hash="x"))
        session.commit()
        yield session


@pytest.fixture
def keys():
    return vault.KeyRing.parse(key_setting("k1"), CHEAP, max_derivations=1, wait_seconds=0)


@pytest.fixture
def clock():
    return FrozenClock(T0)


def make(session, keys, clock, lifetime=timedelta(hours=1), max_views=None) -> str:
    created = vault.create(session, keys, 1, "Wi-Fi", CONTENT, PASSWORD, lifetime, max_views, 10, clock())
    assert isinstance(created, vault.Created)
    return created.share_id


def row(session, share_id: str) -> Secret:
    session.expire_all()
    return session.execute(Secret.by_share_id(share_id)).scalar_one()


def counters(session, share_id: str) -> tuple:
    secret = row(session, share_id)
    return secret.status, secret.view_count, secret.failed_attempts, secret.tries_in_flight


def test_importing_the_vault_loads_no_flask():
    code = "import sys, vault; print(sorted(m for m in sys.modules if m.split('.')[0].startswith('flask')))"
    repo = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "setting",
    [
        key_setting("k1", "k1"),
        "k1:not-base64!",
        f"k1:{base64.b64encode(os.urandom(16)).decode()}",
        f"bad id:{base64.b64encode(os.urandom(32)).decode()}",
        " , ",
    ],
)
def test_a_duplicate_id_or_a_bad_key_refuses(setting):
    with pytest.raises(vault.KeyRingError):
        vault.KeyRing.parse(setting, CHEAP)


def test_right_password_unlocks_and_counts_a_view(session, keys, clock):
    share_id = make(session, keys, clock)
    outcome = vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock)
    assert isinstance(outcome, vault.Unlocked) and outcome.content == CONTENT
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


def test_expiry_is_judged_when_the_derivation_is_done(session, keys, clock):
    share_id = make(session, keys, clock, lifetime=timedelta(hours=1))
    clock.advance(minutes=59, seconds=59)
    reads = iter([clock(), clock() + timedelta(seconds=2)])  # the derivation took two seconds

    outcome = vault.unlock(session, keys, POLICY, share_id, PASSWORD, lambda: next(reads, T0 + timedelta(hours=2)))
    assert outcome == vault.Gone()
    secret = row(session, share_id)
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
    right = vault.Changes(title="t", blur_level=1, max_views=None, current_password=PASSWORD, content="new")
    assert isinstance(vault.edit(session, keys, POLICY, share_id, 1, right, clock), vault.Saved)
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
    assert vault._reserve_try(session, POLICY, secret.id, clock())  # then the worker is killed mid-derivation
    clock.advance(minutes=4)
    assert vault.purge(session, POLICY, clock()).tries_given_back == 0  # it could still be running
    assert counters(session, share_id) == ("active", 0, 0, 1)
    clock.advance(minutes=2)
    assert vault.purge(session, POLICY, clock()).tries_given_back == 1
    assert counters(session, share_id) == ("active", 0, 0, 0)
    assert isinstance(vault.unlock(session, keys, POLICY, share_id, PASSWORD, clock), vault.Unlocked)

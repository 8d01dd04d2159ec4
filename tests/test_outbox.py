"""The outbox on its own: no app, no request; a real database (SQLite, and PostgreSQL where it runs), real keys, a
frozen clock. Messages are sealed, delivered once, retried with back-off, and survive a crash before sending."""

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

import outbox
import vault
from schema import Base, OutboxMessage
from tests.helpers import FrozenClock, service_url

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SCHEDULE = outbox.Schedule()
LINK = "https://secrets.example.org/password/reset/CANARY-link-token"
PAYLOAD = {"to": "alice@example.org", "subject": "Reset your password", "body": f"Open {LINK}"}


def test_importing_outbox_and_webhooks_loads_no_flask():
    code = "import sys, outbox, webhooks; print(sorted(m for m in sys.modules if m.split('.')[0].startswith('flask')))"
    repo = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'outbox.db'}" if request.param == "sqlite" else service_url("POSTGRES_URL", "PostgreSQL")
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


@pytest.fixture
def keys():
    return vault.KeyRing.parse("k1:" + base64.b64encode(os.urandom(32)).decode(), vault.KdfCost(19456, 2, 1))


@pytest.fixture
def clock():
    return FrozenClock(T0)


class Recorder:
    """A transport that records what it delivers, or refuses while `down` (a mail server that is unreachable)."""

    def __init__(self):
        self.delivered: list[outbox.Message] = []
        self.down = False
        self.lock = threading.Lock()

    def __call__(self, message: outbox.Message) -> None:
        if self.down:
            raise outbox.NotDelivered("ConnectionRefusedError while sending to example.org")
        with self.lock:
            self.delivered.append(message)


def queue(session, keys, clock, **options) -> int:
    message = outbox.enqueue(session, keys, outbox.EMAIL, "password_reset", PAYLOAD, clock(), **options)
    session.commit()
    return message.id


def run_deliverer(session, keys, clock, transport) -> outbox.DeliveryReport:
    """What `flask mail deliver` does: every due message, in batches."""
    report = outbox.DeliveryReport()
    while ids := outbox.due_ids(session, clock(), 100):
        if not report.add(outbox.deliver(session, keys, SCHEDULE, transport, clock, ids)):
            break
    return report


def test_a_message_is_sealed_and_erased_once_sent(session, keys, clock):
    message_id = queue(session, keys, clock)
    row = session.get(OutboxMessage, message_id)
    assert b"CANARY" not in row.sealed and b"alice" not in row.sealed  # nothing readable in a stolen database
    recorder = Recorder()
    assert run_deliverer(session, keys, clock, recorder).sent == 1
    assert recorder.delivered[0].payload == PAYLOAD
    session.refresh(row)
    assert (row.state, row.sealed, row.finished_at) == ("sent", None, T0)


def test_a_seal_moved_to_another_kind_does_not_open(session, keys, clock):
    message_id = queue(session, keys, clock)
    row = session.get(OutboxMessage, message_id)
    row.kind = "mail_test"
    session.commit()
    recorder = Recorder()
    assert run_deliverer(session, keys, clock, recorder).abandoned == 1
    assert recorder.delivered == []


def test_mail_server_down_for_an_hour_loses_nothing_and_sends_once(session, keys, clock):
    message_id = queue(session, keys, clock)
    recorder = Recorder()
    recorder.down = True
    tries = []
    for _minute in range(61):  # the timer runs the deliverer every minute for an hour
        tries.append(run_deliverer(session, keys, clock, recorder).retrying)
        clock.advance(minutes=1)
    assert sum(tries) == 6  # tried at 0, 1, 3, 7, 15 and 31 minutes: back-off, not every minute
    row = session.get(OutboxMessage, message_id)
    assert (row.state, row.attempts) == ("pending", 6)
    recorder.down = False
    clock.advance(minutes=2)  # the next try is due 63 minutes in
    assert run_deliverer(session, keys, clock, recorder).sent == 1
    clock.advance(hours=2)
    assert run_deliverer(session, keys, clock, recorder).sent == 0
    assert [message.id for message in recorder.delivered] == [message_id]


def test_back_off_doubles_up_to_an_hour():
    waits = [SCHEDULE.wait_after(attempt) for attempt in range(1, 10)]
    assert waits == [timedelta(minutes=minutes) for minutes in (1, 2, 4, 8, 16, 32, 60, 60, 60)]


def test_a_message_is_abandoned_after_give_up(session, keys, clock):
    message_id = queue(session, keys, clock)
    recorder = Recorder()
    recorder.down = True
    for _hour in range(73):
        run_deliverer(session, keys, clock, recorder)
        clock.advance(hours=1)
    row = session.get(OutboxMessage, message_id)
    assert (row.state, row.sealed) == ("failed", None)


def test_a_message_whose_link_died_is_not_sent(session, keys, clock):
    queue(session, keys, clock, deliver_by=T0 + timedelta(minutes=30))
    clock.advance(minutes=30)
    recorder = Recorder()
    assert run_deliverer(session, keys, clock, recorder).abandoned == 1
    assert recorder.delivered == []


def test_a_crash_between_commit_and_send_is_sent_by_the_next_deliverer(session, keys, clock):
    """The request committed its message and died before trying it: the timer's deliverer sends it, once."""
    message_id = queue(session, keys, clock)
    recorder = Recorder()
    assert run_deliverer(session, keys, clock, recorder).sent == 1
    assert [message.id for message in recorder.delivered] == [message_id]


def test_a_deliverer_that_died_holding_a_message_gives_it_up_after_its_lease(session, keys, clock):
    message_id = queue(session, keys, clock)
    assert outbox._claim(session, message_id, clock(), SCHEDULE) is not None  # claimed, then the process died
    recorder = Recorder()
    assert run_deliverer(session, keys, clock, recorder).sent == 0  # held: nobody else sends it meanwhile
    clock.advance(seconds=SCHEDULE.lease.total_seconds() + 1)
    assert run_deliverer(session, keys, clock, recorder).sent == 1


def test_two_deliverers_racing_send_each_message_once(engine, keys, clock):
    with Session(engine) as session:
        ids = [queue(session, keys, clock) for _ in range(30)]
    recorder = Recorder()
    barrier = threading.Barrier(2)

    def deliverer() -> None:
        with Session(engine) as own:
            seen = outbox.due_ids(own, clock(), 100)  # both see every message due...
            barrier.wait()  # ...and then both try to deliver them all
            outbox.deliver(own, keys, SCHEDULE, recorder, clock, seen)

    threads = [threading.Thread(target=deliverer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(message.id for message in recorder.delivered) == ids


def test_a_transport_error_is_logged_by_type_only(session, keys, clock, caplog):
    def leaky(_message):
        raise RuntimeError(f"refused alice@example.org for {LINK}")

    queue(session, keys, clock)
    assert run_deliverer(session, keys, clock, leaky).retrying == 1
    assert "unexpected RuntimeError" in caplog.text
    assert "alice" not in caplog.text and "CANARY" not in caplog.text


def test_finished_messages_are_deleted_after_the_set_time(session, keys, clock):
    queue(session, keys, clock)
    run_deliverer(session, keys, clock, Recorder())
    clock.advance(hours=24)
    assert outbox.delete_finished(session, SCHEDULE, clock()) == 0
    clock.advance(seconds=1)
    assert outbox.delete_finished(session, SCHEDULE, clock()) == 1
    assert session.execute(select(OutboxMessage)).first() is None

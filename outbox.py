"""SecureShare's outbox: every email and webhook call waits here, sealed, until it is delivered. Imports no Flask.

A message is added in the same transaction as what caused it (a reset asked for, a secret opened), so it exists
exactly when its cause does. Delivery claims it with one guarded UPDATE (vault.guarded_update), so two deliverers on
two hosts never both send it; a failure is retried with back-off until `Schedule.give_up`. A deliverer that dies
between sending and recording it leaves the claim to run out, and the message is sent again: delivery is
at least once (SECURITY.md says why). Logs name a message by its kind and number, never what it says.
"""

import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from schema import OutboxMessage, OutboxState
from vault import Clock, KeyRing, guarded_update

log = logging.getLogger("secureshare.outbox")

EMAIL = "email"
WEBHOOK = "webhook"
SEAL_PURPOSE = "outbox"


@dataclass(frozen=True)
class Schedule:
    """When the outbox tries again: after `first_retry`, doubling up to `longest_wait`, abandoning after `give_up`."""

    first_retry: timedelta = timedelta(minutes=1)
    longest_wait: timedelta = timedelta(hours=1)
    give_up: timedelta = timedelta(hours=72)
    lease: timedelta = timedelta(minutes=2)  # longer than any one delivery can take (its timeouts)
    keep: timedelta = timedelta(hours=24)  # sent and abandoned messages are deleted this long after

    def wait_after(self, attempts: int) -> timedelta:
        """Return how long to wait after the `attempts`-th failed try (1 minute, 2, 4, ... at most `longest_wait`)."""
        return min(self.first_retry * 2 ** min(attempts - 1, 20), self.longest_wait)


@dataclass(frozen=True)
class Message:
    """A claimed message, opened: what a transport needs to deliver it."""

    id: int
    channel: str
    kind: str
    payload: dict
    endpoint_id: int | None
    attempts: int


class NotDelivered(Exception):
    """A transport could not deliver; `reason` is safe to log (no address's local part, no link, no content)."""

    def __init__(self, reason: str, retry: bool = True):
        super().__init__(reason)
        self.reason, self.retry = reason, retry


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    abandoned: int = 0

    def add(self, other: "DeliveryReport") -> int:
        """Count `other` in; return how many messages it handled."""
        self.sent, self.retrying, self.abandoned = (
            self.sent + other.sent,
            self.retrying + other.retrying,
            self.abandoned + other.abandoned,
        )
        return other.sent + other.retrying + other.abandoned


Transport = Callable[[Message], None]


# --- adding ----------------------------------------------------------------------------------------------------------------


def enqueue(
    session: Session,
    keys: KeyRing,
    channel: str,
    kind: str,
    payload: dict,
    now: datetime,
    deliver_by: datetime | None = None,
    endpoint_id: int | None = None,
) -> OutboxMessage:
    """Add a sealed message to `session`; the caller's commit stores it with what caused it."""
    message = OutboxMessage(
        channel=channel,
        kind=kind,
        created_at=now,
        next_attempt_at=now,
        deliver_by=deliver_by,
        key_id=keys.newest_id,
        sealed=keys.seal_label(keys.newest_id, SEAL_PURPOSE, f"{channel}:{kind}", json.dumps(payload)),
        endpoint_id=endpoint_id,
    )
    session.add(message)
    return message


def _opened(keys: KeyRing, row: OutboxMessage) -> dict | None:
    if row.sealed is None:
        return None
    opened = keys.open_label(row.key_id, SEAL_PURPOSE, f"{row.channel}:{row.kind}", row.sealed)
    return json.loads(opened) if opened is not None else None


# --- delivering --------------------------------------------------------------------------------------------------------------


def _due(now: datetime) -> tuple:
    free = or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)
    return (OutboxMessage.state == OutboxState.PENDING, OutboxMessage.next_attempt_at <= now, free)


def _claim(session: Session, message_id: int, now: datetime, schedule: Schedule) -> datetime | None:
    """Hold one due message for this deliverer with one guarded UPDATE; return the claim, or None when another has it."""
    until = now + schedule.lease
    held = guarded_update(
        session,
        OutboxMessage,
        (OutboxMessage.id == message_id, *_due(now)),
        claimed_until=until,
        attempts=OutboxMessage.attempts + 1,
    )
    return until if held else None


def _finish(session: Session, message_id: int, claim: datetime, state: OutboxState, now: datetime) -> None:
    """Record a claimed message as sent or abandoned, erasing what it said."""
    mine = (OutboxMessage.id == message_id, OutboxMessage.claimed_until == claim)
    guarded_update(session, OutboxMessage, mine, state=state, finished_at=now, claimed_until=None, sealed=None)


def _retry_later(session: Session, row: OutboxMessage, claim: datetime, schedule: Schedule, now: datetime) -> bool:
    """Put a failed message back for later; abandon it (False) past `give_up` or past the time its link dies."""
    next_try = now + schedule.wait_after(row.attempts)
    too_late = row.deliver_by is not None and next_try >= row.deliver_by
    if too_late or next_try - row.created_at > schedule.give_up:
        _finish(session, row.id, claim, OutboxState.FAILED, now)
        return False
    mine = (OutboxMessage.id == row.id, OutboxMessage.claimed_until == claim)
    guarded_update(session, OutboxMessage, mine, next_attempt_at=next_try, claimed_until=None)
    return True


def due_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Return the numbers of messages due now and held by no one, oldest first."""
    due = select(OutboxMessage.id).where(*_due(now)).order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)
    return list(session.execute(due).scalars())


def deliver(
    session: Session, keys: KeyRing, schedule: Schedule, transport: Transport, clock: Clock, ids: list[int]
) -> DeliveryReport:
    """Claim each of `ids` that is still due, hand it to `transport`, and record what happened."""
    report = DeliveryReport()
    for message_id in ids:
        claim = _claim(session, message_id, clock(), schedule)
        if claim is None:
            continue  # sent, abandoned or held by another deliverer meanwhile
        row = session.get(OutboxMessage, message_id, populate_existing=True)
        outcome = _hand_over(keys, row, transport, clock())
        if outcome is None:
            _finish(session, row.id, claim, OutboxState.SENT, clock())
            report.sent += 1
            log.info("delivered %s %s message %s", row.channel, row.kind, row.id)
        elif outcome.retry and _retry_later(session, row, claim, schedule, clock()):
            report.retrying += 1
            log.warning("%s message %s (%s) not delivered, will retry: %s", row.channel, row.id, row.kind, outcome.reason)
        else:
            _finish(session, row.id, claim, OutboxState.FAILED, clock())
            report.abandoned += 1
            log.error("%s message %s (%s) abandoned: %s", row.channel, row.id, row.kind, outcome.reason)
    return report


def _hand_over(keys: KeyRing, row: OutboxMessage, transport: Transport, now: datetime) -> NotDelivered | None:
    """Open the message and give it to the transport; return why it was not delivered, or None when it was."""
    if row.deliver_by is not None and row.deliver_by <= now:
        return NotDelivered("its link had expired before it could be sent", retry=False)
    payload = _opened(keys, row)
    if payload is None:
        return NotDelivered("its server key was removed from ENCRYPTION_KEYS", retry=False)
    try:
        transport(Message(row.id, row.channel, row.kind, payload, row.endpoint_id, row.attempts))
    except NotDelivered as refusal:
        return refusal
    except Exception as error:  # a transport's own words may quote the address: only the type is logged
        return NotDelivered(f"unexpected {type(error).__name__}")
    return None


@lru_cache(maxsize=4)
def tls_context(extra_ca_file: str | None) -> ssl.SSLContext:
    """Return the TLS settings both transports connect with: the system's CAs (plus `extra_ca_file`), certificates
    and host names always checked."""
    context = ssl.create_default_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


# --- keeping it small --------------------------------------------------------------------------------------------------------


def delete_finished(session: Session, schedule: Schedule, now: datetime) -> int:
    """Delete messages sent or abandoned longer than `schedule.keep` ago."""
    old = session.execute(
        delete(OutboxMessage).where(OutboxMessage.finished_at < now - schedule.keep).execution_options(synchronize_session=False)
    )
    session.commit()
    return old.rowcount


def waiting(session: Session) -> int:
    """Return how many messages wait to be delivered."""
    return session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.state == OutboxState.PENDING))


def sealed_by_key_id(session: Session) -> dict[str, int]:
    """Return how many waiting messages each server key seals."""
    counted = select(OutboxMessage.key_id, func.count()).where(OutboxMessage.sealed.is_not(None)).group_by(OutboxMessage.key_id)
    return dict(session.execute(counted).all())

"""The audit log: administrative and security events. Imports no Flask.

`record` only adds a row to the session: the caller commits it with the change it describes, so a change that fails
halfway leaves neither. Rows are kept AUDIT_RETENTION_DAYS and then dropped by the purge.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from schema import AuditEvent, User

CLI_ACTOR = "cli"  # who acted when an operator ran `flask users ...`
PAGE_SIZE = 50
ACTIONS = (
    "user.created", "user.promoted", "user.demoted", "user.disabled", "user.enabled", "user.deleted",
    "user.two_factor_reset", "invitation.created", "invitation.withdrawn", "invitation.used",
    *(f"security.{kind}" for kind in (
        "new_device", "password_changed", "password_reset_done", "email_changed", "two_factor_off",
        "recovery_codes_new", "api_token_created",
    )),
)  # fmt: skip


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and from which network (accounts.ip_prefix: never the full address)."""

    name: str
    network: str = ""

    @classmethod
    def of(cls, user: User, network: str) -> "Actor":
        return cls(user.username, network)


COMMAND_LINE = Actor(CLI_ACTOR)


def record(session: Session, actor: Actor, action: str, target: str, now: datetime, detail: str = "") -> None:
    """Add one event to `session`; it is written by the caller's commit, with the change it describes."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    session.add(AuditEvent(at=now, action=action, actor=actor.name, target=target, network=actor.network, detail=detail))


def events(session: Session, action: str = "", name: str = "", before_id: int | None = None) -> list[AuditEvent]:
    """Return a page of events, newest first: of one action, by or about one username, older than `before_id`."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(PAGE_SIZE)
    if action:
        query = query.where(AuditEvent.action == action)
    if name:
        query = query.where((AuditEvent.actor == name) | (AuditEvent.target == name))
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.execute(query).scalars())


def purge(session: Session, retention: timedelta, now: datetime) -> int:
    """Drop events older than `retention`."""
    dropped = session.execute(
        delete(AuditEvent).where(AuditEvent.at < now - retention).execution_options(synchronize_session=False)
    )
    session.commit()
    return dropped.rowcount

"""The audit log: administrative and security events. Imports no Flask.

`record` only adds a row to the session: the caller commits it with the change it describes, so a change that fails
halfway leaves neither. Rows are kept AUDIT_RETENTION_DAYS and then dropped by the purge.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from schema import AuditEvent, User


def N_(text: str) -> str:
    """Mark `text` for the catalogues (`make translations`); the page translates it when it shows it, so this module
    needs no Flask."""
    return text


CLI_ACTOR = "cli"  # who acted when an operator ran `flask users ...`
PAGE_SIZE = 50
# Every action's stored code (kept as written: filters and scripts use it) and how the audit log page names it.
ACTIONS = {
    "user.created": N_("Account made"),
    "user.promoted": N_("Made an administrator"),
    "user.demoted": N_("No longer an administrator"),
    "user.disabled": N_("Account disabled"),
    "user.enabled": N_("Account enabled"),
    "user.deleted": N_("Account deleted"),
    "user.two_factor_reset": N_("Two-factor sign-in reset"),
    "invitation.created": N_("Invitation made"),
    "invitation.withdrawn": N_("Invitation withdrawn"),
    "invitation.used": N_("Invitation used"),
    "security.new_device": N_("Sign-in on a new device"),
    "security.password_changed": N_("Password changed"),
    "security.password_reset_done": N_("Password reset by email"),
    "security.email_changed": N_("Email address changed"),
    "security.two_factor_off": N_("Two-factor sign-in turned off"),
    "security.recovery_codes_new": N_("New recovery codes"),
    "security.api_token_created": N_("API token created"),
}
ADMIN_DETAIL = "administrator"  # the detail of an account made with the admin role
INVITATION_DETAIL = re.compile(r"invitation (\d+)(?: for (.+))?")
DEVICE_DETAIL = re.compile(r"(.+) on (.+)")  # accounts.device_name, as a new device's event stores it (in English)


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


def invitation_detail(number: int, address: str | None = None) -> str:
    """The stored detail of an invitation's event: its number, and the one address it is for."""
    return f"invitation {number} for {address}"[:200] if address else f"invitation {number}"


def detail_message(action: str, detail: str) -> tuple[str, dict] | None:
    """Return an event's detail as a message for the page to translate and its values; None for a detail shown as
    it was written (an API token's name)."""
    if action == "user.created" and detail == ADMIN_DETAIL:
        return N_("as an administrator"), {}
    if action == "security.new_device":
        if match := DEVICE_DETAIL.fullmatch(detail):
            return N_("%(browser)s on %(system)s"), {"browser": match[1], "system": match[2]}
        return (N_("Unknown device"), {}) if detail == "Unknown device" else None
    if action.startswith("invitation.") and (match := INVITATION_DETAIL.fullmatch(detail)):
        if match[2]:
            return N_("Invitation %(number)d, for %(address)s"), {"number": int(match[1]), "address": match[2]}
        return N_("Invitation %(number)d"), {"number": int(match[1])}
    return None


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

"""Administering accounts: the admin role, disabling, deletion, two-factor resets, the users list and the instance's
figures. Imports no Flask; the command line (commands.py) and the /admin pages (app.py) both call it.

Every change writes its audit record (audit.py) in the same transaction as the change: one commit, or neither.
Nothing here reads a secret's title, content or share id, nor any token: an administrator sees accounts and counts.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

import audit
import vault
from accounts import Passwords, Taken, taken_fields
from audit import Actor
from schema import AccessEvent, AccessOutcome, ApiToken, RecoveryCode, Secret, SecretStatus, User, UserSession, canonical

USERS_PAGE_SIZE = 50


def _change(session: Session, actor: Actor, action: str, user: User, now: datetime, stage, detail: str = "") -> None:
    """Stage a change (`stage()`), record it and commit both; on any failure roll both back and re-raise."""
    try:
        stage()
        audit.record(session, actor, action, user.username, now, detail)
        session.commit()
    except Exception:
        session.rollback()
        raise


def create_user(
    session: Session, passwords: Passwords, username: str, email: str, password: str, admin: bool, actor: Actor, now: datetime
) -> User | Taken:
    """Make an account (the command line's way in when sign-up is closed); its address counts as confirmed."""
    if taken := taken_fields(session, username, email):
        return Taken(taken)
    user = User(
        username=username,
        email=email,
        password_hash=passwords.hash(password),
        is_admin=admin,
        email_verified_at=now,
        created_at=now,
    )
    _change(session, actor, "user.created", user, now, lambda: session.add(user), audit.ADMIN_DETAIL if admin else "")
    return user


def set_admin(session: Session, user: User, actor: Actor, now: datetime, admin: bool = True) -> bool:
    """Grant or take away the admin role; False (nothing written) when it was so already."""
    if user.is_admin == admin:
        return False

    def stage() -> None:
        user.is_admin = admin

    _change(session, actor, "user.promoted" if admin else "user.demoted", user, now, stage)
    return True


def _end_access(session: Session, user: User) -> None:
    """Stage the end of every way in: sessions, API tokens and the trust of every device."""
    for model in (UserSession, ApiToken):
        session.execute(delete(model).where(model.user_id == user.id).execution_options(synchronize_session=False))
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(device_epoch=User.device_epoch + 1)
        .execution_options(synchronize_session=False)
    )


def disable(session: Session, user: User, actor: Actor, now: datetime) -> bool:
    """Disable an account: its sessions and API tokens end, it cannot sign in, and its secrets cannot be opened (nor a
    try or a view spent) until it is enabled again. False (nothing written) when it was disabled already."""
    if user.disabled:
        return False

    def stage() -> None:
        user.disabled_at = now
        session.flush()
        _end_access(session, user)

    _change(session, actor, "user.disabled", user, now, stage)
    session.refresh(user)
    return True


def enable(session: Session, user: User, actor: Actor, now: datetime) -> bool:
    """Let a disabled account sign in again; its secrets open again (those whose time is up have ended meanwhile)."""
    if not user.disabled:
        return False

    def stage() -> None:
        user.disabled_at = None

    _change(session, actor, "user.enabled", user, now, stage)
    return True


def delete_user(session: Session, user: User, actor: Actor, now: datetime) -> int:
    """Delete an account and erase its secrets, as the account's own deletion does; return how many secrets went."""
    username = user.username
    try:
        return vault.delete_account(session, user, lambda: audit.record(session, actor, "user.deleted", username, now))
    except Exception:
        session.rollback()
        raise


def reset_two_factor(session: Session, user: User, actor: Actor, now: datetime) -> bool:
    """Turn two-factor off for someone who lost both their app and their codes; they sign in with the password alone
    and may set it up again. Their sessions end too. False (nothing written) when it was off."""
    if not user.two_factor_on:
        return False

    def stage() -> None:
        user.totp_key_sealed = user.totp_key_id = user.totp_last_step = user.two_factor_since = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id).execution_options(synchronize_session=False))
        session.flush()
        _end_access(session, user)

    _change(session, actor, "user.two_factor_reset", user, now, stage)
    session.refresh(user)
    return True


def find_user(session: Session, name: str) -> User | None:
    """Return the account a username or an email names (canonical spellings), or None."""
    column = User.email_key if "@" in name else User.username_key
    return session.execute(select(User).where(column == canonical(name))).scalar_one_or_none()


# --- the users list ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    """What an administrator sees of an account: no secret's title, content or link, no token."""

    id: int
    username: str
    email: str
    is_admin: bool
    verified: bool
    two_factor: bool
    last_login_at: datetime | None
    active_secrets: int
    disabled: bool


def _prefix(column, text: str):
    """Match canonical spellings starting with `text` as a range, so the unique key's index serves it on any database."""
    start = canonical(text)
    return (column >= start) & (column < start + "\U0010ffff")


def users_page(session: Session, now: datetime, search: str = "", after_id: int | None = None) -> list[UserRow]:
    """Return up to USERS_PAGE_SIZE accounts, newest first, after (older than) `after_id`: keyset pages, so page 2,000
    costs what page 1 does. `search` matches the start of a username or an email address."""
    active = (
        select(func.count(Secret.id))
        .where(Secret.owner_id == User.id, Secret.status == SecretStatus.ACTIVE, Secret.expires_at > now)
        .scalar_subquery()
    )
    query = select(User, active).order_by(User.id.desc()).limit(USERS_PAGE_SIZE)
    if search.strip():
        query = query.where(_prefix(User.username_key, search.strip()) | _prefix(User.email_key, search.strip()))
    if after_id is not None:
        query = query.where(User.id < after_id)
    return [
        UserRow(
            user.id,
            user.username,
            user.email,
            user.is_admin,
            user.email_verified,
            user.two_factor_on,
            user.last_login_at,
            count,
            user.disabled,
        )
        for user, count in session.execute(query).all()
    ]


# --- the instance's figures -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayFigures:
    day: date
    unlocks: int
    failed_tries: int


@dataclass(frozen=True)
class Figures:
    users: int
    disabled_users: int
    active_secrets: int
    days: list[DayFigures]


def figures(session: Session, now: datetime, days: int = 14) -> Figures:
    """Counts only: accounts, active secrets, and unlocks and wrong passwords per day over the last `days` days."""
    since = datetime.combine((now - timedelta(days=days - 1)).date(), datetime.min.time(), tzinfo=now.tzinfo)
    per_day = {
        (row.day if isinstance(row.day, str) else str(row.day)[:10], row.outcome): row.count
        for row in session.execute(
            select(func.date(AccessEvent.at).label("day"), AccessEvent.outcome, func.count().label("count"))
            .where(AccessEvent.at >= since)
            .group_by("day", AccessEvent.outcome)
        )
    }
    listed = [(since + timedelta(days=offset)).date() for offset in range(days)]
    return Figures(
        users=session.scalar(select(func.count(User.id))),
        disabled_users=session.scalar(select(func.count(User.id)).where(User.disabled_at.is_not(None))),
        active_secrets=session.scalar(
            select(func.count(Secret.id)).where(Secret.status == SecretStatus.ACTIVE, Secret.expires_at > now)
        ),
        days=[
            DayFigures(
                day,
                per_day.get((day.isoformat(), AccessOutcome.UNLOCKED), 0),
                per_day.get((day.isoformat(), AccessOutcome.WRONG_PASSWORD), 0),
            )
            for day in reversed(listed)
        ],
    )

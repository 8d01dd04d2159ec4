"""SecureShare's accounts: passwords, sessions, two-factor, recovery codes, API tokens and guess budgets. Imports no Flask.

Like the vault, each change takes a database session, the time and its inputs and returns what happened, never an
HTTP answer; a change that must not race is one guarded statement whose row count is checked (vault.guarded_update).
"""

import base64
import enum
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from schema import (
    AccountToken,
    ApiToken,
    RecoveryCode,
    TokenPurpose,
    User,
    UserSession,
    canonical,
    new_token,
    token_digest,
)
from vault import KeyRing, guarded_update

MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_LENGTH = 72
RECOVERY_CODE_COUNT = 10
RECOVERY_CODES_LOW = 2  # the owner is told when a used code leaves this many or fewer
RESET_LINKS_PER_HOUR = 3  # per account, whatever spelling asked: more are answered alike but not sent
TOTP_CODE_RE = re.compile(r"[0-9]{6}")
API_TOKEN_PREFIX = "ss_"  # noqa: S105 - a visible prefix, so a leaked token is recognisable in a scan
SESSION_SEEN_STEP = timedelta(seconds=30)  # last-seen is written at most this often: one write, not one per request
TOKEN_USE_STEP = timedelta(minutes=1)
DEVICE_COOKIE_ACCOUNTS = 5
# A tiny user-agent reading for the sessions list: the first match wins, so the more specific names come first.
BROWSER_MARKS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
SYSTEM_MARKS = (
    ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"), ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"), ("Linux", "Linux"),
)  # fmt: skip


# --- passwords -----------------------------------------------------------------------------------------------------


class Passwords:
    """Account password hashing (Argon2id), with a dummy hash so an unknown account costs the same time."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int):
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def check(self, user: User | None, password: str) -> bool:
        """Verify an account password; for an unknown user, spend the same time on the dummy hash."""
        stored = user.password_hash if user else self.dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
        return user is not None

    def needs_rehash(self, user: User) -> bool:
        return self.hasher.check_needs_rehash(user.password_hash)


def password_feedback(password: str, user_inputs: list[str], say: Callable[[str], str] = str) -> str | None:
    """Return why zxcvbn finds `password` too guessable, or None when it scores well enough; each of zxcvbn's
    English hints goes through `say` (a page passes its gettext: i18n.PASSWORD_HINTS holds them for the catalogues)."""
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[value for value in user_inputs if value])
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    feedback = result["feedback"]
    hints = [feedback["warning"], *feedback["suggestions"]]
    return " ".join(say(hint) for hint in hints if hint) or say("This password is too easy to guess.")


# --- users ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    """The username or email (or both) already belongs to an account: nothing was written."""

    fields: tuple[str, ...]


def _find_user(session: Session, key_column, value: str) -> User | None:
    return session.execute(select(User).where(key_column == canonical(value))).scalar_one_or_none()


def find_user_for_login(session: Session, login: str) -> User | None:
    """Return the user a sign-in names: by email when it has an @, else by username (canonical spellings)."""
    return _find_user(session, User.email_key if "@" in login else User.username_key, login)


def taken_fields(session: Session, username: str | None = None, email: str | None = None) -> tuple[str, ...]:
    """Name the fields whose value already belongs to an account, as the unique keys compare them."""
    wanted = {"username": (User.username_key, username), "email": (User.email_key, email)}
    return tuple(name for name, (column, value) in wanted.items() if value is not None and _find_user(session, column, value))


@dataclass(frozen=True)
class NotClaimed:
    """What the sign-up depended on (an invitation) was used or ended meanwhile: nothing was written."""


def register(
    session: Session, passwords: Passwords, username: str, email: str, password: str, claim: Callable[[User], bool] | None = None
) -> User | Taken | NotClaimed:
    """Store a new account; a name or address taken meanwhile (a parallel sign-up) is Taken, never an error. `claim`
    spends what the sign-up needs (an invitation) in the same transaction; when it cannot, nothing is written."""
    user = User(username=username, email=email, password_hash=passwords.hash(password))
    session.add(user)
    try:
        claimed = claim is None or claim(user)
    except IntegrityError:  # its flush met a parallel sign-up's name or address
        claimed = None
    if not claimed:
        session.rollback()
        if claimed is False:
            return NotClaimed()
    if not claimed or not _committed(session):
        return Taken(taken_fields(session, username, email) or ("username", "email"))
    return user


def change_email(session: Session, user: User, email: str) -> bool:
    """Give `user` a new address; False (nothing changed) when another account took it meanwhile."""
    user.email = email
    return _committed(session)


def _committed(session: Session) -> bool:
    """Commit; on a unique key's refusal roll back and say so (the check before it raced another request)."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def set_password(session: Session, passwords: Passwords, user: User, password: str) -> None:
    """Store a new password hash; every reset link still out dies with the old password."""
    user.password_hash = passwords.hash(password)
    _delete_links(session, user.id, TokenPurpose.PASSWORD_RESET)
    session.commit()


# --- sessions ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionLimits:
    """How long a browser session lives: in all, and without a visit; longer when kept signed in (at most 14 days)."""

    lifetime: timedelta
    idle: timedelta
    remembered_lifetime: timedelta
    remembered_idle: timedelta

    def of(self, remember: bool) -> tuple[timedelta, timedelta]:
        """Return (absolute lifetime, idle limit) of a session."""
        return (self.remembered_lifetime, self.remembered_idle) if remember else (self.lifetime, self.idle)


@dataclass(frozen=True)
class TimedOut:
    """The session was past its limits: it has ended now."""


def open_session(
    session: Session, user: User, remember: bool, limits: SessionLimits, device: str, network: str, now: datetime
) -> str:
    """Store a brand-new session for `user` and return its token (only the digest is kept)."""
    token = new_token()
    lifetime, _idle = limits.of(remember)
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=token_digest(token),
            remember=remember,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            device=device,
            ip_prefix=network,
        )
    )
    session.commit()
    return token


def resolve_session(session: Session, token: str, limits: SessionLimits, now: datetime) -> UserSession | TimedOut | None:
    """Return the live session a cookie's token names; a session past its limits ends here (TimedOut).

    Ended sessions have no row, so no cookie (copied, remembered or replayed) brings one back.
    """
    found = session.execute(select(UserSession).filter_by(token_hash=token_digest(token))).scalar_one_or_none()
    if found is None:
        return None
    if not found.is_live(now, limits.of(found.remember)[1]):
        end_sessions(session, UserSession.id == found.id)
        return TimedOut()
    return found


def touch_session(session: Session, user_session: UserSession, now: datetime) -> None:
    """Record activity for the idle limit, at most once per SESSION_SEEN_STEP."""
    if now - user_session.last_seen_at >= SESSION_SEEN_STEP:
        user_session.last_seen_at = now
        session.commit()


def end_sessions(session: Session, *conditions) -> int:
    """Delete the matching sessions: their cookies, remember cookie included, resolve to nothing from now on."""
    ended = session.execute(delete(UserSession).where(*conditions).execution_options(synchronize_session=False))
    session.commit()
    return ended.rowcount


def session_of(session: Session, user: User, session_id: int) -> UserSession | None:
    """Return one live session of `user`, or None when it is not theirs (or has ended)."""
    return session.execute(select(UserSession).filter_by(id=session_id, user_id=user.id)).scalar_one_or_none()


def end_stale_sessions(session: Session, limits: SessionLimits, now: datetime) -> int:
    """Delete sessions past their absolute or idle limit (they are refused anyway; this keeps the table small)."""
    return end_sessions(
        session,
        or_(
            UserSession.expires_at <= now,
            UserSession.last_seen_at < now - max(limits.idle, limits.remembered_idle),
            (UserSession.remember.is_(False)) & (UserSession.last_seen_at < now - limits.idle),
        ),
    )


def sessions_of(session: Session, user_id: int, here_id: int) -> list[UserSession]:
    """Return every live session of a user, this one first, then the most recently seen."""
    rows = session.execute(
        select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.last_seen_at.desc())
    ).scalars()
    return sorted(rows, key=lambda row: row.id != here_id)


# --- devices and networks ---------------------------------------------------------------------------------------------


def device_name(user_agent: str, both: str = "%(browser)s on %(system)s", unknown: str = "Unknown device") -> str:
    """Return a coarse device name for the sessions list: 'Chrome on Android', 'Firefox on Windows' (a page passes
    `both` and `unknown` in its own language)."""
    browser = next((name for mark, name in BROWSER_MARKS if mark in user_agent), None)
    system = next((name for mark, name in SYSTEM_MARKS if mark in user_agent), None)
    if browser and system:
        return both % {"browser": browser, "system": system}
    return browser or system or unknown


def ip_prefix(address: str | None, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """Return the client's network, never its address: /24 for IPv4, /48 (or `v6_prefix`) for IPv6."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return ""
    prefix = v4_prefix if ip.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def client_network(address: str | None) -> str:
    """Rate-limit key for a caller: its IPv4 address, or its IPv6 /64 (what one subscriber gets) by its first address."""
    network = ip_prefix(address, v4_prefix=32, v6_prefix=64)
    return network.partition("/")[0] if network else (address or "")


def short_digest(value: str, key: str) -> str:
    """Return a short keyed digest (HMAC-SHA256 under the app's secret key), for rate-limit keys: whoever reads the
    limit store can neither read nor confirm a guessed login, device or share id from them."""
    return hmac.new(key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class DeviceCookie:
    """OWASP's device cookie: a signed list of [user id, nonce, epoch] for the accounts this browser signed in to.

    An entry counts only while its epoch is the account's device epoch: forget_devices raises it.
    """

    def __init__(self, secret_key: str):
        self._serializer = URLSafeSerializer(secret_key, salt="secureshare device")

    def _entries(self, raw: str | None) -> dict[int, tuple[str, int]]:
        """Return {user id: (nonce, epoch)}; nothing when the cookie is missing or forged."""
        if not raw:
            return {}
        try:
            entries = self._serializer.loads(raw)
        except BadSignature:
            return {}
        if not isinstance(entries, list):
            return {}
        return {entry[0]: (entry[1], entry[2]) for entry in entries if isinstance(entry, list) and len(entry) == 3}

    def nonce_for(self, raw: str | None, user: User) -> str | None:
        """Return this browser's nonce for `user` while its trust holds, else None (an unknown device)."""
        nonce, epoch = self._entries(raw).get(user.id, (None, None))
        return nonce if epoch == user.device_epoch else None

    def with_account(self, raw: str | None, user: User) -> str:
        """Return the cookie's new value, with `user` first (a nonce of the current epoch) and at most 5 accounts."""
        entries = self._entries(raw)
        nonce = self.nonce_for(raw, user) or secrets.token_urlsafe(16)
        entries.pop(user.id, None)
        recent = [[user.id, nonce, user.device_epoch], *([key, *entry] for key, entry in entries.items())]
        return self._serializer.dumps(recent[:DEVICE_COOKIE_ACCOUNTS])


def forget_devices(session: Session, user: User) -> None:
    """End the trust of every device cookie `user` has handed out (their sign-in budgets are an unknown device's)."""
    guarded_update(session, User, (User.id == user.id,), device_epoch=User.device_epoch + 1)
    session.refresh(user)


def login_guess_key(login: str, key: str) -> str:
    """Key sign-in guesses on the spelling typed (canonical), never on the account it resolves to: a stranger must
    not learn that a username and an email are one account from which of them is throttled."""
    return "login:" + short_digest(canonical(login.strip()), key)


def account_guess_key(user_id: int | None) -> str:
    """Key guesses made after the password (the code step, re-authentication) on the account."""
    return f"user:{user_id}"


def guess_device_key(nonce: str | None, key: str) -> str:
    return "device:" + short_digest(nonce or "", key)


# --- two-factor ------------------------------------------------------------------------------------------------------


def new_totp_key() -> str:
    return pyotp.random_base32()


def provisioning_uri(key: str, username: str) -> str:
    """Return the otpauth:// address an authenticator app takes (as a QR code or a link)."""
    return pyotp.TOTP(key).provisioning_uri(name=username, issuer_name="SecureShare")


def _sealed_totp_columns(keys: KeyRing, user_id: int, key: str) -> dict:
    """Return the user columns holding `key` sealed under the newest server key, bound to its user and key id."""
    return {"totp_key_id": keys.newest_id, "totp_key_sealed": keys.seal_label(keys.newest_id, "totp", f"user:{user_id}", key)}


def open_totp_key(keys: KeyRing, user: User) -> str | None:
    """Return the user's TOTP key, or None when there is none or it cannot be opened (unknown key, tampered row)."""
    if user.totp_key_sealed is None or user.totp_key_id is None:
        return None
    return keys.open_label(user.totp_key_id, "totp", f"user:{user.id}", user.totp_key_sealed)


def seal_pending_key(keys: KeyRing, session_id: int, key: str) -> tuple[str, bytes]:
    """Seal a key being enrolled, bound to one browser session: another session cannot open it."""
    return keys.newest_id, keys.seal_label(keys.newest_id, "totp-pending", f"session:{session_id}", key)


def open_pending_key(keys: KeyRing, session_id: int, stored) -> str | None:
    """Open what seal_pending_key made; None for anything else (another session's, a removed key, junk)."""
    key_id, sealed = stored if isinstance(stored, list | tuple) and len(stored) == 2 else ("", b"")
    if not isinstance(sealed, bytes):
        return None
    return keys.open_label(str(key_id), "totp-pending", f"session:{session_id}", sealed)


def matching_totp_step(key: str, code: str, now: datetime) -> int | None:
    """Return the time step `code` belongs to, when it is the current one or one either side (clock skew)."""
    if not TOTP_CODE_RE.fullmatch(code):
        return None
    totp = pyotp.TOTP(key)
    current = totp.timecode(now)
    steps = (current - 1, current, current + 1)
    return next((step for step in steps if hmac.compare_digest(totp.generate_otp(step), code)), None)


def _claim_totp_step(session: Session, user: User, step: int) -> bool:
    """Record `step` as used, in one guarded UPDATE: False when it (or a later one) was used already."""
    fresh = or_(User.totp_last_step.is_(None), User.totp_last_step < step)
    claimed = guarded_update(session, User, (User.id == user.id, fresh), totp_last_step=step)
    session.refresh(user)
    return claimed


def _accept_totp(session: Session, keys: KeyRing, user: User, code: str, now: datetime) -> bool:
    """Accept a code of the user's key, of the current time step or one either side, once."""
    key = open_totp_key(keys, user)
    step = matching_totp_step(key, code, now) if key is not None else None
    return step is not None and _claim_totp_step(session, user, step)


def accept_second_factor(session: Session, keys: KeyRing, user: User, code: str, now: datetime) -> bool:
    """Accept an authenticator code or, failing that, an unused recovery code."""
    code = code.replace(" ", "")
    if TOTP_CODE_RE.fullmatch(code):
        return _accept_totp(session, keys, user, code, now)
    return _use_recovery_code(session, user, code)


def turn_on_two_factor(session: Session, keys: KeyRing, user: User, key: str, step: int, now: datetime) -> bool:
    """Store the confirmed key and turn two-factor on, in one guarded UPDATE: False when it was on already."""
    values = _sealed_totp_columns(keys, user.id, key) | {"totp_last_step": step, "two_factor_since": now}
    turned_on = guarded_update(session, User, (User.id == user.id, User.two_factor_since.is_(None)), **values)
    session.refresh(user)
    return turned_on


def turn_off_two_factor(session: Session, user: User) -> None:
    """Erase the key and the recovery codes."""
    user.totp_key_sealed = user.totp_key_id = user.totp_last_step = user.two_factor_since = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.commit()


def two_factor_keys_by_key_id(session: Session) -> dict[str, int]:
    """Return how many accounts' two-factor keys each server key seals."""
    counted = select(User.totp_key_id, func.count()).where(User.totp_key_id.is_not(None)).group_by(User.totp_key_id)
    return dict(session.execute(counted).all())


def rewrap_totp_keys(session: Session, keys: KeyRing) -> tuple[int, int]:
    """Re-seal every two-factor key under the newest server key; return (moved, left under a removed key)."""
    moved = stuck = 0
    stale = select(User).where(User.totp_key_id.is_not(None), User.totp_key_id != keys.newest_id)
    for user in session.execute(stale).scalars().all():
        if (key := open_totp_key(keys, user)) is None:
            stuck += 1
            continue
        same = (User.id == user.id, User.totp_key_id == user.totp_key_id)
        moved += guarded_update(session, User, same, **_sealed_totp_columns(keys, user.id, key))
    return moved, stuck


# --- recovery codes ---------------------------------------------------------------------------------------------------


def _normal_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def _use_recovery_code(session: Session, user: User, code: str) -> bool:
    """Spend a recovery code: one guarded DELETE, so a code works exactly once."""
    used = session.execute(
        delete(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == token_digest(_normal_recovery_code(code)))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return used.rowcount == 1


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones; return them (grouped by four) for showing once."""
    codes = [base64.b32encode(os.urandom(10)).decode().lower() for _ in range(RECOVERY_CODE_COUNT)]
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.add_all(RecoveryCode(user_id=user.id, code_hash=token_digest(code)) for code in codes)
    session.commit()
    return ["-".join(code[i : i + 4] for i in range(0, 16, 4)) for code in codes]


def recovery_codes_left(session: Session, user: User) -> int:
    return session.scalar(select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user.id))


def is_recovery_code(code: str) -> bool:
    """Tell whether a second factor typed is a recovery code (anything but a 6-digit authenticator code)."""
    return not TOTP_CODE_RE.fullmatch(code.replace(" ", ""))


# --- API tokens --------------------------------------------------------------------------------------------------------


def issue_api_token(session: Session, user: User, name: str, lifetime: timedelta | None, now: datetime) -> str:
    """Store a named token for `user` and return it (only its digest is kept: it is shown once)."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + lifetime if lifetime else None
    session.add(ApiToken(user_id=user.id, name=name, token_hash=token_digest(token), created_at=now, expires_at=expires_at))
    session.commit()
    return token


def resolve_api_token(session: Session, token: str | None, now: datetime) -> ApiToken | None:
    """Return the unexpired token row for `token`, noting when it was last used (at most once a minute)."""
    if not token:
        return None
    row = session.execute(select(ApiToken).filter_by(token_hash=token_digest(token))).scalar_one_or_none()
    # A disabled owner's token is refused too: disabling deletes the tokens, but one made by a request that was
    # already under way (its re-authentication) is written after that deletion.
    if row is None or row.is_expired(now) or row.user.disabled:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_USE_STEP:
        row.last_used_at = now
        session.commit()
    return row


def api_tokens_of(session: Session, user: User) -> list[ApiToken]:
    return list(session.execute(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())).scalars())


def api_token_of(session: Session, user: User, token_id: int) -> ApiToken | None:
    """Return one token of `user`, or None when it is not theirs (or was revoked)."""
    return session.execute(select(ApiToken).filter_by(id=token_id, user_id=user.id)).scalar_one_or_none()


def revoke_api_token(session: Session, token: ApiToken) -> None:
    session.execute(delete(ApiToken).where(ApiToken.id == token.id).execution_options(synchronize_session=False))
    session.commit()


def revoke_api_tokens(session: Session, user: User) -> int:
    revoked = session.execute(
        delete(ApiToken).where(ApiToken.user_id == user.id).execution_options(synchronize_session=False)
    )
    session.commit()
    return revoked.rowcount


# --- links sent by email: password reset, address verification --------------------------------------------------------


class EmailVerification(enum.StrEnum):
    """EMAIL_VERIFICATION: must an address be confirmed before the account creates secrets (required), may it be
    (optional), or is every address taken as typed (off)."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    OFF = "off"


def email_usable(user: User, verification: EmailVerification) -> bool:
    """Tell whether mail that could open the account (a reset link) or tells about it may go to its address: a
    confirmed one, or any when verification is off. An unconfirmed address may be someone else's (a typo)."""
    return verification == EmailVerification.OFF or user.email_verified


def may_create_secrets(user: User, verification: EmailVerification) -> bool:
    return verification != EmailVerification.REQUIRED or user.email_verified


def issue_link(
    session: Session, user: User, purpose: TokenPurpose, lifetime: timedelta, now: datetime, email: str | None = None
) -> str:
    """Add a 256-bit link token for `user` to `session` (the caller commits it with the email that carries it).

    Only its SHA-256 is kept. A new verification link replaces the older ones: the newest address asked for wins.
    """
    if purpose == TokenPurpose.VERIFY_EMAIL:
        _delete_links(session, user.id, purpose)
    token = new_token()
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=token_digest(token),
            email=email,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def recent_links(session: Session, user: User, purpose: TokenPurpose, now: datetime) -> int:
    """Count the links of `purpose` issued to `user` in the last hour."""
    mine = (AccountToken.user_id == user.id, AccountToken.purpose == purpose)
    return session.scalar(select(func.count(AccountToken.id)).where(*mine, AccountToken.created_at > now - timedelta(hours=1)))


def find_link(session: Session, token: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
    """Return the unused, unexpired link a token names, without using it."""
    row = session.execute(select(AccountToken).filter_by(token_hash=token_digest(token), purpose=purpose)).scalar_one_or_none()
    return row if row is not None and now < row.expires_at else None


def _use_link(session: Session, link: AccountToken) -> bool:
    """Spend a link with one guarded DELETE (not yet committed): of two requests with the same link, one wins."""
    used = session.execute(delete(AccountToken).where(AccountToken.id == link.id).execution_options(synchronize_session=False))
    return used.rowcount == 1


def _delete_links(session: Session, user_id: int, purpose: TokenPurpose) -> None:
    session.execute(
        delete(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose)
        .execution_options(synchronize_session=False)
    )


def reset_password(session: Session, passwords: Passwords, link: AccountToken, password: str) -> bool:
    """Use a reset link: new password, every session ended, every device forgotten, every API token revoked and every
    other reset link dead, in one transaction; False (nothing changed) when the link was used meanwhile.

    API tokens go too: a reset means the password may have been someone else's, and they could have made tokens.
    """
    password_hash = passwords.hash(password)  # before the guarded DELETE: the slow part holds no lock
    if not _use_link(session, link):
        session.rollback()
        return False
    user_id = link.user_id
    values = {"password_hash": password_hash, "device_epoch": User.device_epoch + 1}
    session.execute(update(User).where(User.id == user_id).values(**values).execution_options(synchronize_session=False))
    _delete_links(session, user_id, TokenPurpose.PASSWORD_RESET)
    for model in (UserSession, ApiToken):
        session.execute(delete(model).where(model.user_id == user_id).execution_options(synchronize_session=False))
    session.commit()
    return True


def confirm_email(session: Session, link: AccountToken, now: datetime) -> User | Taken | None:
    """Use a verification link: its address becomes the account's, confirmed; None when the link was used meanwhile,
    Taken when another account took the address since."""
    if not _use_link(session, link):
        session.rollback()
        return None
    user = session.get(User, link.user_id)
    user.email = link.email
    user.email_verified_at = now
    if not _committed(session):
        return Taken(("email",))
    return user


def delete_expired_links(session: Session, now: datetime) -> int:
    """Delete links past their time (they are refused anyway; this keeps the table small)."""
    expired = session.execute(
        delete(AccountToken).where(AccountToken.expires_at <= now).execution_options(synchronize_session=False)
    )
    session.commit()
    return expired.rowcount


def pending_email(session: Session, user: User, now: datetime) -> str | None:
    """Return the new address a live verification link would switch the account to, if there is one."""
    waiting = select(AccountToken.email).where(
        AccountToken.user_id == user.id,
        AccountToken.purpose == TokenPurpose.VERIFY_EMAIL,
        AccountToken.expires_at > now,
    )
    for address in session.execute(waiting).scalars():
        if canonical(address) != user.email_key:
            return address
    return None


def set_notice_defaults(session: Session, user: User, choices) -> None:
    """Store what new secrets of `user` tell by email (a vault.NoticeChoices)."""
    for column, value in choices.columns().items():
        setattr(user, column, value)
    session.commit()

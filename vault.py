"""SecureShare's vault: the server key ring, sealing, and every state change of a secret. Imports no Flask.

Routes translate, the vault decides: each change takes a database session and the time (or the clock, when the
decision comes after a key derivation) and returns an outcome, never an HTTP answer. Only this module writes a
secret's status, counters or sealed fields, each through one guarded UPDATE whose row count is checked.
"""

import base64
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import bindparam, exists, func, select, text, update
from sqlalchemy import delete as delete_rows
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import ObjectDeletedError

from schema import (
    AccessEvent,
    AccessOutcome,
    FileChunk,
    Secret,
    SecretFile,
    SecretStatus,
    User,
    UTCDateTime,
    new_unique_id,
    share_id_digest,
)

log = logging.getLogger("secureshare.vault")

Clock = Callable[[], datetime]

KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
FORMAT_VERSION = 1
KDF_FLOOR_MEMORY_KIB = 19456  # OWASP's Argon2id floor: 19 MiB, 2 passes
KDF_FLOOR_ITERATIONS = 2
WIPED = {"ciphertext": None, "salt": None, "nonce": None, "files_key_sealed": None}
# How long the form that unlocked a secret can show it again (a reload, a phone restoring its tab) without a view.
REPLAY_WINDOW = timedelta(minutes=5)


# --- outcomes ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unlocked:
    content: str
    secret: Secret  # as stored after this view: counts, status, blur, expiry
    files_key: bytes | None = None  # opens the attached files (attachments.py), when there are any
    replayed: bool = False  # the same form shown again: no view was counted


@dataclass(frozen=True)
class WrongPassword:
    tries_left: int


@dataclass(frozen=True)
class Destroyed:
    """That wrong password was the last allowed try: the content is erased."""


@dataclass(frozen=True)
class Gone:
    """Expired, used up, destroyed, deleted or never there."""


@dataclass(frozen=True)
class Busy:
    """No key derivation could start in time; nothing was spent."""

    retry_after: int


@dataclass(frozen=True)
class TriesInFlight:
    """Every try left is held by a derivation still running; nothing was spent."""


@dataclass(frozen=True)
class KeyRetired:
    """The server key that seals this secret was removed from ENCRYPTION_KEYS; nothing was spent."""


@dataclass(frozen=True)
class EndedByRecipient:
    """The recipient said "I have it": the content is erased."""


@dataclass(frozen=True)
class Saved:
    secret: Secret


@dataclass(frozen=True)
class ExpiryTooLate:
    latest: datetime  # creation + the longest lifetime


@dataclass(frozen=True)
class ViewsTaken:
    view_count: int


@dataclass(frozen=True)
class Deleted:
    """An active secret is now deleted and erased; its record stays until the purge."""


@dataclass(frozen=True)
class Removed:
    """An ended record is now gone entirely."""


@dataclass(frozen=True)
class Opened:
    """A right password's yield: the content, and the key of the attached files when there are any."""

    content: str
    files_key: bytes | None


@dataclass(frozen=True)
class Attached:
    """Files an upload has already sealed (attachments.py) under `files_key`, bound to the share id it chose."""

    share_id: str
    files_key: bytes
    count: int
    total_bytes: int


@dataclass(frozen=True)
class Created:
    secret: Secret
    share_id: str


@dataclass(frozen=True)
class PurgeReport:
    expired: int
    purged: int
    tries_given_back: int  # held by workers that stopped mid-derivation


@dataclass(frozen=True)
class KeyUse:
    key_id: str
    configured: bool
    live_secrets: int  # active secrets whose content it seals
    last_ends: datetime | None  # when the last of them expires at the latest
    labels: int  # records (any status) whose title and share id copy it seals: `keys rewrap` moves them


Outcome = Unlocked | WrongPassword | Destroyed | Gone | Busy | TriesInFlight | KeyRetired
EditOutcome = Saved | WrongPassword | Destroyed | Gone | Busy | TriesInFlight | KeyRetired | ExpiryTooLate | ViewsTaken


# --- settings ----------------------------------------------------------------------------------------------------


class KeyRingError(ValueError):
    """ENCRYPTION_KEYS is unusable: the app must not start."""


@dataclass(frozen=True)
class KdfCost:
    memory_kib: int
    iterations: int
    lanes: int

    def floored(self) -> "KdfCost":
        return KdfCost(max(self.memory_kib, KDF_FLOOR_MEMORY_KIB), max(self.iterations, KDF_FLOOR_ITERATIONS), self.lanes)

    def is_below_floor(self) -> bool:
        return self.memory_kib < KDF_FLOOR_MEMORY_KIB or self.iterations < KDF_FLOOR_ITERATIONS


@dataclass(frozen=True)
class Visitor:
    """Who tried: kept coarse on purpose (a /24 or /48 network, a browser string)."""

    user_agent: str = ""
    ip_prefix: str = ""


@dataclass(frozen=True)
class Notice:
    """A secret's event its owner may want to hear of: opened, destroyed (wrong passwords) or expired."""

    secret_id: int
    event: str
    at: datetime
    visitor: Visitor | None = None


@dataclass(frozen=True)
class NoticeChoices:
    """What a secret's owner wants to hear of it: opened (never, first, every), destroyed, expired unopened."""

    opened: str = "never"
    destroyed: bool = False
    unopened: bool = False

    def columns(self) -> dict:
        return {"notify_opened": self.opened, "notify_destroyed": self.destroyed, "notify_unopened": self.unopened}


NO_NOTICES = NoticeChoices()


# Told of each Notice inside the transaction that makes it happen (before its commit), so whatever it queues is
# stored exactly when the event is; it must not commit, and must not raise.
Announce = Callable[[Session, Notice], None]


@dataclass(frozen=True)
class Policy:
    """The lifecycle's limits, from the app's settings, and who hears of a secret's events."""

    max_failed_attempts: int = 5
    max_lifetime: timedelta = timedelta(days=30)
    retention: timedelta = timedelta(days=30)
    purge_batch: int = 5000
    # Longer than any try can be held (a wait for a derivation slot, the derivation, a worker's timeout).
    stale_hold: timedelta = timedelta(minutes=5)
    # How long a recipient's download links work: a used-up secret's file chunks are kept this long after its last view.
    file_link_window: timedelta = timedelta(minutes=15)
    announce: Announce | None = None


class _FormCounted(Exception):
    """A parallel request from the same form (a double click) counted the view first."""


class _DerivationBusy(Exception):
    pass


class KeyRing:
    """Server keys (newest first), the label keys derived from them, and the limiter on costly derivations."""

    def __init__(self, keys: dict[str, bytes], kdf: KdfCost, max_derivations: int = 2, wait_seconds: float = 10):
        if not keys:
            raise KeyRingError("ENCRYPTION_KEYS is empty.")
        self._keys = dict(keys)
        self.newest_id = next(iter(self._keys))
        self.kdf = kdf.floored()
        self.wait_seconds = wait_seconds
        # Each derivation holds tens of MiB: a bounded number run at once, so a burst cannot exhaust memory.
        self._slots = threading.BoundedSemaphore(max_derivations)
        # Labels get keys of their own (HKDF), so no server key serves two purposes; derived once, here.
        self._label_ciphers = {
            key_id: AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"secureshare label v1").derive(key))
            for key_id, key in self._keys.items()
        }

    @classmethod
    def parse(cls, value: str, kdf: KdfCost, max_derivations: int = 2, wait_seconds: float = 10) -> "KeyRing":
        """Build the ring from ENCRYPTION_KEYS ("id:base64key" pairs, comma-separated, newest first).

        :raise KeyRingError: on a malformed pair, a key that is not 32 bytes, a duplicate id, or no key at all.
        """
        keys: dict[str, bytes] = {}
        for pair in filter(None, (item.strip() for item in value.split(","))):
            key_id, _, encoded = pair.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError:
                key = b""
            if not KEY_ID_RE.fullmatch(key_id) or len(key) != 32:
                raise KeyRingError("ENCRYPTION_KEYS must be id:base64 pairs of 32-byte keys.")
            if key_id in keys:
                raise KeyRingError(f"ENCRYPTION_KEYS names the key id {key_id!r} twice.")
            keys[key_id] = key
        return cls(keys, kdf, max_derivations, wait_seconds)

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @contextmanager
    def derivation_slot(self) -> Iterator[None]:
        """Hold one of the few derivation slots.

        :raise _DerivationBusy: when none frees up within `wait_seconds`.
        """
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise _DerivationBusy
        try:
            yield
        finally:
            self._slots.release()

    def derive(self, key_id: str, salt: bytes, cost: KdfCost, password: str) -> bytes | None:
        """Derive a content key from the password, salt and cost, and the server key; None for an unknown key."""
        if key_id not in self._keys or cost.is_below_floor():
            return None
        kdf = Argon2id(
            salt=salt,
            length=32,
            iterations=cost.iterations,
            lanes=cost.lanes,
            memory_cost=cost.memory_kib,
            secret=self._keys[key_id],
        )
        with self.derivation_slot():
            return kdf.derive(password.encode("utf-8"))

    def seal_label(self, key_id: str, purpose: str, id_digest: str, value: str) -> bytes:
        """Seal a short owner-facing value (title, share id) with the server key alone: nonce + ciphertext."""
        nonce = os.urandom(12)
        return nonce + self._label_ciphers[key_id].encrypt(nonce, value.encode("utf-8"), _label_aad(purpose, id_digest, key_id))

    def open_label(self, key_id: str, purpose: str, id_digest: str, sealed: bytes) -> str | None:
        """Open a sealed label; None when its key is gone or the bytes were tampered with."""
        cipher = self._label_ciphers.get(key_id)
        if cipher is None:
            return None
        try:
            return cipher.decrypt(sealed[:12], sealed[12:], _label_aad(purpose, id_digest, key_id)).decode("utf-8")
        except InvalidTag:
            return None


def _label_aad(purpose: str, id_digest: str, key_id: str) -> bytes:
    return f"secureshare/{purpose}|{id_digest}|{key_id}".encode()


# --- sealing -----------------------------------------------------------------------------------------------------


def _content_aad(share_id: str, key_id: str, format_version: int, cost: KdfCost) -> bytes:
    """Bind the ciphertext to its format, its share id, its server key and its KDF parameters."""
    return (
        f"secureshare/v{format_version}|{share_id}|{key_id}|"
        f"argon2id:m={cost.memory_kib},t={cost.iterations},p={cost.lanes}"
    ).encode()


def _cost_of(secret: Secret) -> KdfCost:
    return KdfCost(secret.kdf_memory_kib, secret.kdf_iterations, secret.kdf_lanes)


def _files_cipher(content_key: bytes) -> AESGCM:
    """The cipher that wraps a secret's file key: its own key, from the content key, so one derivation serves both."""
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"secureshare files v1").derive(content_key))


def seal_content(keys: KeyRing, share_id: str, content: str, password: str, files_key: bytes | None = None) -> dict:
    """Return the column values of `content` (and the file key, if any) sealed under the newest key, a fresh salt and nonce.

    :raise _DerivationBusy: when no derivation slot frees up in time.
    """
    salt, nonce = os.urandom(16), os.urandom(12)
    key = keys.derive(keys.newest_id, salt, keys.kdf, password)
    aad = _content_aad(share_id, keys.newest_id, FORMAT_VERSION, keys.kdf)
    return {
        "format_version": FORMAT_VERSION,
        "key_id": keys.newest_id,
        "kdf_memory_kib": keys.kdf.memory_kib,
        "kdf_iterations": keys.kdf.iterations,
        "kdf_lanes": keys.kdf.lanes,
        "salt": salt,
        "nonce": nonce,
        "ciphertext": AESGCM(key).encrypt(nonce, content.encode("utf-8"), aad),
        "files_key_sealed": None if files_key is None else _wrap_files_key(key, files_key, aad),
    }


def _wrap_files_key(content_key: bytes, files_key: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + _files_cipher(content_key).encrypt(nonce, files_key, aad)


def open_content(keys: KeyRing, secret: Secret, share_id: str, password: str) -> str | None:
    """Decrypt the content; None on a wrong password, a tampered or moved row, or weakened parameters.

    :raise _DerivationBusy: when no derivation slot frees up in time.
    """
    opened = open_sealed(keys, secret, share_id, password)
    return None if opened is None else opened.content


def open_sealed(keys: KeyRing, secret: Secret, share_id: str, password: str) -> Opened | None:
    """Decrypt the content and unwrap the file key with one derivation; None as for `open_content`.

    :raise _DerivationBusy: when no derivation slot frees up in time.
    """
    if secret.ciphertext is None or secret.salt is None or secret.nonce is None:
        return None
    cost = _cost_of(secret)
    key = keys.derive(secret.key_id, secret.salt, cost, password)
    if key is None:
        return None
    try:
        aad = _content_aad(share_id, secret.key_id, secret.format_version, cost)
        content = AESGCM(key).decrypt(secret.nonce, secret.ciphertext, aad).decode("utf-8")
        wrapped = secret.files_key_sealed
        files_key = None if wrapped is None else _files_cipher(key).decrypt(wrapped[:12], wrapped[12:], aad)
        return Opened(content, files_key)
    except InvalidTag:
        return None


def seal_labels(keys: KeyRing, id_digest: str, share_id: str, title: str) -> dict:
    """Return the column values of the title and the share id copy sealed under the newest key."""
    return {
        "label_key_id": keys.newest_id,
        "unique_id_sealed": keys.seal_label(keys.newest_id, "id", id_digest, share_id),
        "title_sealed": keys.seal_label(keys.newest_id, "title", id_digest, title),
    }


def share_id_of(keys: KeyRing, secret: Secret) -> str | None:
    """Return the secret's share id, or None when its label key was removed."""
    return keys.open_label(secret.label_key_id, "id", secret.id_digest, secret.unique_id_sealed)


def title_of(keys: KeyRing, secret: Secret) -> str | None:
    """Return the secret's title, or None when its label key was removed."""
    return keys.open_label(secret.label_key_id, "title", secret.id_digest, secret.title_sealed)


def key_retired(keys: KeyRing, secret: Secret) -> bool:
    """Tell whether a key this secret still needs was removed from the ring."""
    needs_content_key = secret.status == SecretStatus.ACTIVE
    return not keys.knows(secret.label_key_id) or (needs_content_key and not keys.knows(secret.key_id))


# Built once, run through the connection: the recipient's page needs no ORM machinery for four columns.
_OPENABLE = (
    select(Secret.status, Secret.expires_at, Secret.key_id, Secret.label_key_id, User.disabled_at)
    .outerjoin(User, User.id == Secret.owner_id)
    .where(Secret.id_digest == bindparam("digest"))
)


def openable(session: Session, keys: KeyRing, share_id: str, now: datetime) -> bool | None:
    """Tell whether a recipient may try a password now; None when there is no such secret.

    The recipient's page asks this on every visit (link previews, scanners, crowds): one indexed read of four
    columns, no ORM row and no unsealing.
    """
    found = session.connection().execute(_OPENABLE, {"digest": share_id_digest(share_id)}).first()
    if found is None:
        return None
    live = found.status == SecretStatus.ACTIVE and now < found.expires_at and found.disabled_at is None
    return live and keys.knows(found.key_id) and keys.knows(found.label_key_id)


# --- create --------------------------------------------------------------------------------------------------------


def create(
    session: Session,
    keys: KeyRing,
    owner_id: int | None,
    title: str,
    content: str,
    password: str,
    lifetime: timedelta,
    max_views: int | None,
    blur_level: int,
    now: datetime,
    notices: NoticeChoices = NO_NOTICES,
    attached: Attached | None = None,
    manage_digest: str | None = None,
) -> Created | Busy:
    """Seal and store a new secret under the newest key, with a fresh share id (or the one its files are bound to).

    Files sealed during the upload are in the session's open transaction: they are stored with it or not at all. One
    without an owner (shared without an account) is found again by `manage_digest`, the digest of its manage link.
    """
    share_id = new_unique_id() if attached is None else attached.share_id
    id_digest = share_id_digest(share_id)
    try:
        sealed = seal_content(keys, share_id, content, password, attached and attached.files_key)
    except _DerivationBusy:
        return Busy(retry_after=_retry_after(keys))
    secret = Secret(
        owner_id=owner_id,
        manage_digest=manage_digest,
        id_digest=id_digest,
        blur_level=blur_level,
        max_views=max_views,
        expires_at=now + lifetime,
        created_at=now,
        updated_at=now,
        **seal_labels(keys, id_digest, share_id, title),
        **sealed,
        **notices.columns(),
        file_count=attached.count if attached else 0,
        file_bytes=attached.total_bytes if attached else 0,
    )
    session.add(secret)
    session.commit()
    secret.unique_id = share_id
    return Created(secret, share_id)


# --- unlock ----------------------------------------------------------------------------------------------------------


def _available(secret_id: int, now: datetime) -> tuple:
    return (Secret.id == secret_id, Secret.status == SecretStatus.ACTIVE, Secret.expires_at > now, _owner_enabled())


def _owner_enabled():
    """A disabled account's secrets cannot be opened (nor a try or a view spent) until it is enabled again."""
    return ~exists().where(User.id == Secret.owner_id, User.disabled_at.is_not(None))


def _owner_disabled(session: Session, secret: Secret) -> bool:
    return session.scalar(select(User.disabled_at).where(User.id == secret.owner_id)) is not None


def _views_remain():
    return Secret.max_views.is_(None) | (Secret.view_count < Secret.max_views)


def guarded_update(session: Session, model: type, conditions: tuple, **values) -> bool:
    """Apply `values` in one UPDATE only where `conditions` hold, commit, and tell whether the one row changed.

    The one way a change that must not race is written, here and in accounts.py.
    """
    result = session.execute(update(model).where(*conditions).values(**values).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def _reserve_try(session: Session, policy: Policy, secret_id: int, now: datetime) -> bool:
    """Hold a try before the costly derivation, so parallel guesses can never pass the limit."""
    room = Secret.failed_attempts + Secret.tries_in_flight < policy.max_failed_attempts
    held = {"tries_in_flight": Secret.tries_in_flight + 1, "tries_held_at": now}
    return guarded_update(session, Secret, (*_available(secret_id, now), room, _views_remain()), **held)


def _release_try(session: Session, secret_id: int) -> None:
    session.rollback()  # a failed statement must not block the give-back
    held = (Secret.id == secret_id, Secret.tries_in_flight > 0)
    guarded_update(session, Secret, held, tries_in_flight=Secret.tries_in_flight - 1)


def _find(session: Session, share_id: str, owner_id: int | None = None) -> Secret | None:
    query = Secret.by_share_id(share_id)
    if owner_id is not None:
        query = query.filter_by(owner_id=owner_id)
    secret = session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if secret is not None:
        secret.unique_id = share_id
    return secret


def _refused(session: Session, policy: Policy, secret: Secret, now: datetime) -> Gone | TriesInFlight:
    """Say why a try could not be reserved, erasing the secret if its time is up."""
    try:
        session.refresh(secret)
    except ObjectDeletedError:  # purged meanwhile by another host
        return Gone()
    if secret.status == SecretStatus.ACTIVE and secret.is_expired(now):
        _end(session, SecretStatus.EXPIRED, now, Secret.id == secret.id, Secret.expires_at <= now, announce=policy.announce)
    if _owner_disabled(session, secret):
        return Gone()  # the recipient hears what an ended secret says, and nothing was spent
    return TriesInFlight() if secret.is_available(now) and secret.views_left() != 0 else Gone()


def _spend_wrong_password(
    session: Session, policy: Policy, secret: Secret, visitor: Visitor, now: datetime
) -> WrongPassword | Destroyed:
    """Turn the held try into a wrong password (with its event); the last allowed one destroys the secret."""
    session.execute(
        update(Secret)
        .where(Secret.id == secret.id)
        .values(failed_attempts=Secret.failed_attempts + 1, tries_in_flight=Secret.tries_in_flight - 1)
        .execution_options(synchronize_session=False)
    )
    _add_event(session, secret.id, AccessOutcome.WRONG_PASSWORD, visitor, now)
    session.commit()
    log.info("secret %s: wrong password", secret.id)
    limit_reached = Secret.failed_attempts >= policy.max_failed_attempts
    if _end(session, SecretStatus.DESTROYED, now, Secret.id == secret.id, limit_reached, announce=policy.announce):
        return Destroyed()
    session.refresh(secret)
    if secret.status == SecretStatus.DESTROYED:  # a parallel wrong guess spent the last try first
        return Destroyed()
    return WrongPassword(tries_left=max(policy.max_failed_attempts - secret.failed_attempts, 0))


def _add_event(
    session: Session, secret_id: int, outcome: AccessOutcome, visitor: Visitor, now: datetime, form_mark: str | None = None
) -> None:
    event = AccessEvent(
        secret_id=secret_id, at=now, outcome=outcome, user_agent=visitor.user_agent[:200], form_mark=form_mark
    )
    event.ip_prefix = visitor.ip_prefix
    session.add(event)


def _take_view(
    session: Session, policy: Policy, secret_id: int, visitor: Visitor, now: datetime, form_mark: str | None = None
) -> bool:
    """Turn the held try into a view, with its event; False when the secret ended or its last view went first.

    :raise _FormCounted: when the event's form mark is already taken (nothing was counted here).
    """
    result = session.execute(
        update(Secret)
        .where(*_available(secret_id, now), _views_remain(), Secret.tries_in_flight > 0)
        .values(view_count=Secret.view_count + 1, tries_in_flight=Secret.tries_in_flight - 1, last_viewed_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        return False
    _add_event(session, secret_id, AccessOutcome.UNLOCKED, visitor, now, form_mark)
    try:
        session.flush()  # the unique form mark is checked here, before anyone hears of a view
    except IntegrityError:
        session.rollback()
        raise _FormCounted() from None
    _tell(session, policy.announce, Notice(secret_id, "opened", now, visitor))
    session.commit()
    return True


def _tell(session: Session, announce: Announce | None, notice: Notice) -> None:
    if announce is not None:
        announce(session, notice)


def _check_password(
    session: Session, keys: KeyRing, policy: Policy, secret: Secret, password: str, visitor: Visitor, clock: Clock
) -> Opened | Outcome:
    """Spend one try on `password`; return what it opens with the try still held, or why not (nothing else held).

    The caller must give the held try back or turn it into a view.
    """
    now = clock()
    if not secret.is_available(now):
        return _refused(session, policy, secret, now)
    if key_retired(keys, secret):
        return KeyRetired()
    if not _reserve_try(session, policy, secret.id, now):
        return _refused(session, policy, secret, now)
    held = True
    try:
        session.refresh(secret)
        opened = open_sealed(keys, secret, secret.unique_id, password)
        if opened is None:
            outcome = _spend_wrong_password(session, policy, secret, visitor, clock())
            held = False
            return outcome
        held = False  # handed to the caller, who turns it into a view or gives it back
        return opened
    except _DerivationBusy:
        return Busy(retry_after=_retry_after(keys))
    finally:
        # Every exit but a counted wrong password or a right one gives the try back: busy, a database error, a bug.
        if held:
            _release_try(session, secret.id)


def unlock(
    session: Session,
    keys: KeyRing,
    policy: Policy,
    share_id: str,
    password: str,
    clock: Clock,
    visitor: Visitor | None = None,
    form_mark: str | None = None,
) -> Outcome:
    """Spend one try on `password`; a right one takes a view, decided when the derivation is done.

    `form_mark` (a keyed hash of the page form's token) lets the form that unlocked the secret show it again within
    REPLAY_WINDOW without a view: the password is still derived and checked, and a wrong one spends a try as ever.
    """
    visitor = visitor or Visitor()
    secret = _find(session, share_id)
    if secret is None:
        return Gone()
    checked = _check_password(session, keys, policy, secret, password, visitor, clock)
    if not isinstance(checked, Opened):
        return checked
    now = clock()  # expiry is judged now, when the derivation is done, not when the request began
    if form_mark is not None and _form_unlocked(session, secret.id, form_mark, now):
        _release_try(session, secret.id)
        return _replayed(session, secret, checked)
    viewed = False
    try:
        viewed = _take_view(session, policy, secret.id, visitor, now, form_mark)
    except _FormCounted:
        return _replayed(session, secret, checked)
    finally:
        if not viewed:
            _release_try(session, secret.id)
    if not viewed:
        return _refused(session, policy, secret, now)
    _end(session, SecretStatus.USED_UP, now, Secret.id == secret.id, Secret.view_count >= Secret.max_views)
    session.refresh(secret)
    if secret.status == SecretStatus.ACTIVE and secret.key_id != keys.newest_id:
        _reseal(session, keys, secret, checked, password, now)
    return Unlocked(checked.content, secret, checked.files_key)


def _form_unlocked(session: Session, secret_id: int, form_mark: str, now: datetime) -> bool:
    """Tell whether this form unlocked the secret within REPLAY_WINDOW; an older mark is let go, so it counts anew."""
    event = session.scalar(select(AccessEvent).where(AccessEvent.secret_id == secret_id, AccessEvent.form_mark == form_mark))
    if event is None:
        return False
    if _as_utc(event.at) > now - REPLAY_WINDOW:
        return True
    event.form_mark = None
    session.commit()
    return False


def _replayed(session: Session, secret: Secret, opened: Opened) -> Unlocked:
    session.refresh(secret)
    log.info("secret %s shown again to the form that unlocked it", secret.id)
    return Unlocked(opened.content, secret, opened.files_key, replayed=True)


def end_by_recipient(
    session: Session, share_id: str, form_mark: str, now: datetime, visitor: Visitor | None = None
) -> EndedByRecipient | Gone:
    """End a secret at its recipient's word: only the form that unlocked it, within REPLAY_WINDOW, may."""
    secret = _find(session, share_id)
    if secret is None or not _form_unlocked(session, secret.id, form_mark, now):
        return Gone()
    if not _end(session, SecretStatus.DESTROYED, now, *_available(secret.id, now)):
        return Gone()
    _add_event(session, secret.id, AccessOutcome.RECIPIENT_ENDED, visitor or Visitor(), now)
    session.commit()
    return EndedByRecipient()


def _reseal(session: Session, keys: KeyRing, secret: Secret, opened: Opened, password: str, now: datetime) -> None:
    """Move content (and the file key) sealed under an older key to the newest one, now that its password is at hand."""
    try:
        sealed = seal_content(keys, secret.unique_id, opened.content, password, opened.files_key)
    except _DerivationBusy:
        return  # the next right unlock will do it
    same_content = (*_available(secret.id, now), Secret.ciphertext == secret.ciphertext)
    if guarded_update(session, Secret, same_content, **sealed):
        _checkpoint(session)
    session.refresh(secret)


def _retry_after(keys: KeyRing) -> int:
    return max(1, round(keys.wait_seconds))


# --- edit -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """An owner's edit: settings always; new content or password only with the current password."""

    title: str
    blur_level: int
    max_views: int | None
    lifetime: timedelta | None = None  # None keeps the current expiry
    current_password: str | None = None
    content: str | None = None
    password: str | None = None
    notices: NoticeChoices | None = None  # None keeps them

    @property
    def replaces_content(self) -> bool:
        return bool(self.content or self.password)


def edit(
    session: Session,
    keys: KeyRing,
    policy: Policy,
    share_id: str,
    owner_id: int,
    changes: Changes,
    clock: Clock,
    visitor: Visitor | None = None,
) -> EditOutcome:
    """Apply an owner's changes in one guarded UPDATE; replacing content spends a try like an unlock."""
    secret = _find(session, share_id, owner_id)
    now = clock()
    if secret is None or not secret.is_available(now):
        return Gone()
    if changes.max_views is not None and changes.max_views <= secret.view_count:
        return ViewsTaken(secret.view_count)
    values: dict = {"blur_level": changes.blur_level, "max_views": changes.max_views}
    if changes.notices is not None:
        values |= changes.notices.columns()
    if changes.lifetime is not None:
        latest = secret.created_at + policy.max_lifetime
        if now + changes.lifetime > latest:
            return ExpiryTooLate(latest)
        values["expires_at"] = now + changes.lifetime
    if changes.replaces_content:
        checked = _check_password(session, keys, policy, secret, changes.current_password or "", visitor or Visitor(), clock)
        if not isinstance(checked, Opened):
            return checked
        _release_try(session, secret.id)  # a right password is no view: its try goes back
        try:
            new_password = changes.password or changes.current_password
            values |= seal_content(keys, share_id, changes.content or checked.content, new_password, checked.files_key)
        except _DerivationBusy:
            return Busy(retry_after=_retry_after(keys))
    elif key_retired(keys, secret):
        return KeyRetired()
    now = clock()
    values |= seal_labels(keys, secret.id_digest, share_id, changes.title)
    room = () if changes.max_views is None else (Secret.view_count < changes.max_views,)
    if not guarded_update(session, Secret, (*_available(secret.id, now), *room), updated_at=now, **values):
        return Gone()  # it ended, or was viewed up to the new limit, while the owner was editing
    if changes.replaces_content:
        _checkpoint(session)  # the old ciphertext leaves the WAL too
    session.refresh(secret)
    return Saved(secret)


# --- ending, deleting, purging ------------------------------------------------------------------------------------------


def _end(session: Session, status: SecretStatus, now: datetime, *conditions, announce: Announce | None = None) -> int:
    """Move matching active secrets to `status`, erasing their content in the same statement; return how many.

    `announce` hears of each one before the commit (destroyed and expired secrets are news to their owners).
    """
    ended = session.execute(
        update(Secret)
        .where(Secret.status == SecretStatus.ACTIVE, *conditions)
        .values(status=status, updated_at=now, **WIPED)
        .returning(Secret.id)
        .execution_options(synchronize_session=False)
    ).scalars().all()
    for secret_id in ended:
        _tell(session, announce, Notice(secret_id, status.value, now))
    if ended and status != SecretStatus.USED_UP:  # a used-up secret's files wait out the download links' window
        _erase_files(session, Secret.id.in_(ended))
    session.commit()
    if ended:
        _checkpoint(session)
        for secret_id in ended:
            log.info("secret %s ended: %s", secret_id, status.value)
    return len(ended)


def _erase_files(session: Session, *conditions) -> None:
    """Delete the files and chunks of the secrets matching `conditions`, in the caller's transaction."""
    digests = select(Secret.id_digest).where(*conditions).scalar_subquery()
    for model in (FileChunk, SecretFile):
        session.execute(delete_rows(model).where(model.secret_digest.in_(digests)).execution_options(synchronize_session=False))


def _checkpoint(session: Session) -> None:
    """Fold SQLite's WAL back into the main file (where secure_delete has zeroed freed bytes) and empty it.

    A failure is logged, never raised: the erasing UPDATE has already committed, and the next purge checkpoints again.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    try:
        busy = session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("WAL checkpoint failed; the next purge tries again")
        return
    if busy and busy[0]:
        log.warning("WAL checkpoint was blocked by a reader; the next purge tries again")


def active_count(session: Session, owner_id: int, now: datetime) -> int:
    """Count the owner's secrets that can still be opened (the ACTIVE_SECRETS_PER_USER policy); from an index."""
    mine = (Secret.owner_id == owner_id, Secret.status == SecretStatus.ACTIVE, Secret.expires_at > now)
    return session.scalar(select(func.count(Secret.id)).where(*mine))


def expire_due(session: Session, now: datetime, owner_id: int | None = None, announce: Announce | None = None) -> int:
    """End (and erase) every active secret whose time is up, or only `owner_id`'s."""
    mine = () if owner_id is None else (Secret.owner_id == owner_id,)
    return _end(session, SecretStatus.EXPIRED, now, Secret.expires_at <= now, *mine, announce=announce)


def delete(session: Session, share_id: str, owner_id: int | None, now: datetime) -> Deleted | Removed | Gone:
    """Delete an owner's secret: an active one is erased and kept as a record; an ended record is removed."""
    secret = _find(session, share_id, owner_id)
    if secret is None:
        return Gone()
    if _end(session, SecretStatus.DELETED, now, Secret.id == secret.id):
        return Deleted()
    removed = session.execute(
        delete_rows(Secret)
        .where(Secret.id == secret.id, Secret.status != SecretStatus.ACTIVE)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if removed.rowcount != 1:
        return Gone()
    _checkpoint(session)
    return Removed()


def delete_account(session: Session, user, also: Callable[[], None] | None = None) -> int:
    """Delete an account with every secret it owns and their events, in one transaction, erased on disk; `also` adds
    to that transaction (an audit record) before it commits. Return how many secrets went."""
    removed = session.execute(
        delete_rows(Secret).where(Secret.owner_id == user.id).execution_options(synchronize_session=False)
    )
    session.delete(user)
    if also is not None:
        also()
    session.commit()
    _checkpoint(session)
    return removed.rowcount


def purge(session: Session, policy: Policy, now: datetime) -> PurgeReport:
    """Expire due secrets, then delete records ended longer than the retention period ago, in batches.

    Safe to run on several hosts at once: every step is one statement that re-checks its own conditions.
    """
    expired = expire_due(session, now, announce=policy.announce)
    given_back = _give_back_stale_tries(session, policy, now)
    _erase_files(session, Secret.status != SecretStatus.ACTIVE, Secret.updated_at < now - policy.file_link_window)
    session.commit()
    cutoff = now - policy.retention
    purged = 0
    while True:
        batch = (
            select(Secret.id)
            .where(Secret.status != SecretStatus.ACTIVE, Secret.updated_at < cutoff)
            .limit(policy.purge_batch)
            .scalar_subquery()
        )
        removed = session.execute(
            delete_rows(Secret)
            .where(Secret.id.in_(batch), Secret.status != SecretStatus.ACTIVE, Secret.updated_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if not removed.rowcount:
            break
        purged += removed.rowcount
    _checkpoint(session)  # once, at the end: these records' content was erased (and checkpointed) when they ended
    _vacuum_postgres(session)
    return PurgeReport(expired, purged, given_back)


def _give_back_stale_tries(session: Session, policy: Policy, now: datetime) -> int:
    """Give back the tries held by workers that stopped mid-derivation (killed, timed out): no hold lasts this long."""
    result = session.execute(
        update(Secret)
        .where(Secret.tries_in_flight > 0, Secret.tries_held_at < now - policy.stale_hold)
        .values(tries_in_flight=0)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount:
        log.warning("gave back the tries held on %d secrets by workers that stopped mid-derivation", result.rowcount)
    return result.rowcount


def _vacuum_postgres(session: Session) -> None:
    """Let PostgreSQL reclaim the erased rows' space (VACUUM cannot run inside a transaction)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    engine = getattr(bind, "engine", bind)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        tables = ", ".join(model.__tablename__ for model in (Secret, AccessEvent, SecretFile, FileChunk))
        connection.execute(text(f"VACUUM {tables}"))


# --- keys ---------------------------------------------------------------------------------------------------------------


def key_usage(session: Session, keys: KeyRing, now: datetime) -> list[KeyUse]:
    """Per key id (configured or still named by a record): what it protects and when the last of it ends."""
    live = dict.fromkeys(keys.ids, (0, None))
    for key_id, count, last in session.execute(
        select(Secret.key_id, func.count(), func.max(Secret.expires_at))
        .where(Secret.status == SecretStatus.ACTIVE, Secret.expires_at > now)
        .group_by(Secret.key_id)
    ):
        live[key_id] = (count, last)
    labels = dict(session.execute(select(Secret.label_key_id, func.count()).group_by(Secret.label_key_id)).all())
    key_ids = list(keys.ids) + sorted((set(live) | set(labels)) - set(keys.ids))
    uses = []
    for key_id in key_ids:
        count, last = live.get(key_id, (0, None))
        uses.append(KeyUse(key_id, keys.knows(key_id), count, _as_utc(last), labels.get(key_id, 0)))
    return uses


def _as_utc(moment: datetime | None) -> datetime | None:
    # func.max bypasses the column type, so SQLite hands back a string and PostgreSQL a zoned datetime.
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return UTCDateTime().process_result_value(moment, None)


def rewrap(session: Session, keys: KeyRing) -> tuple[int, int]:
    """Re-seal titles and share id copies under the newest key; return (moved, left behind for want of their key)."""
    moved = stuck = 0
    stale = select(Secret).where(Secret.label_key_id != keys.newest_id).order_by(Secret.id)
    for secret in session.execute(stale).scalars().all():
        share_id, title = share_id_of(keys, secret), title_of(keys, secret)
        if share_id is None or title is None:
            stuck += 1
            continue
        same = (Secret.id == secret.id, Secret.label_key_id == secret.label_key_id)
        moved += guarded_update(session, Secret, same, **seal_labels(keys, secret.id_digest, share_id, title))
    _checkpoint(session)
    return moved, stuck

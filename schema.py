"""SecureShare data: users, secrets and their access events. Never imports app, nor Flask (vault.py uses it)."""

import enum
import hashlib
import secrets
import sqlite3
import unicodedata
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    event,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates


class Base(DeclarativeBase):
    # Stable constraint names, so a later migration can refer to them.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def utcnow() -> datetime:
    """Return the current time, aware, in UTC: the one source of 'now'."""
    return datetime.now(UTC)


def canonical(text: str) -> str:
    """Return the one spelling of a username or email that uniqueness and look-ups compare: NFKC, case-folded.

    Python folds it, not the database, so SQLite and PostgreSQL (whose lower() differs by collation) agree.
    """
    return unicodedata.normalize("NFKC", text).casefold()


def new_token() -> str:
    """Return a fresh 256-bit URL-safe token (session tokens, QR file names)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Return the SHA-256 of a bearer value (session, API or recovery code): the only form the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# What a share id looks like in a path: routing refuses anything else before a query runs.
SHARE_ID_PATTERN = r"[A-Za-z0-9_-]{22,43}"


def new_unique_id() -> str:
    """Return a fresh 128-bit share id: the only id of a secret that leaves the server."""
    return secrets.token_urlsafe(16)


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection, _record) -> None:
    """Make every SQLite connection overwrite deleted bytes and wait for locks instead of failing."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class UTCDateTime(TypeDecorator):
    """A datetime stored as UTC and always read back aware (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, _dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, _dialect) -> datetime | None:
        if value is None:
            return None
        # PostgreSQL answers in the session's time zone, SQLite with none: both become UTC here, once.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class User(Base):
    __tablename__ = "user"

    # Flask-Login's user interface, written out so this module imports no Flask.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    # The canonical spellings, kept by the validators below: the only columns uniqueness and look-ups use.
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-factor: the confirmed TOTP key sealed with the server key `totp_key_id` (a key being enrolled lives only in
    # the enrolling session). `totp_last_step` is the newest time step accepted, so no code works twice.
    totp_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_key_id: Mapped[str | None] = mapped_column(String(32))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    two_factor_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Device cookies carry the epoch they were issued in; raising it (a password change, "sign out everywhere")
    # ends the trust of every device at once.
    device_epoch: Mapped[int] = mapped_column(default=0)
    # When the address was confirmed through a link sent to it; None: not (yet) confirmed.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The notifications a new secret starts with (the account page changes them; each secret can differ).
    notify_opened: Mapped[str] = mapped_column(String(8), default="first")
    notify_destroyed: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_unopened: Mapped[bool] = mapped_column(Boolean, default=True)
    # Administrators run the instance (/admin, the audit log); first made with `flask users promote`.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # When an administrator disabled the account: it cannot sign in and its secrets cannot be opened until enabled.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Pages and emails in this language (i18n.LANGUAGES) and time zone (an IANA name); None: the browser's, and UTC.
    language: Mapped[str | None] = mapped_column(String(8))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Pages in this theme (preferences.THEMES: system, light or dark); None: not chosen, the device's.
    theme: Mapped[str | None] = mapped_column(String(8))

    secrets: Mapped[list["Secret"]] = relationship(back_populates="owner", cascade="all, delete-orphan")
    sessions: Mapped[list["UserSession"]] = relationship(back_populates="user", cascade="all, delete-orphan")
    api_tokens: Mapped[list["ApiToken"]] = relationship(back_populates="user", cascade="all, delete-orphan")
    recovery_codes: Mapped[list["RecoveryCode"]] = relationship(cascade="all, delete-orphan")

    # The raw token of the session this object was loaded for; Flask-Login keeps it in the cookies (never stored).
    session_token = None
    current_session = None  # that session's row, set by whoever resolved the token

    @validates("username", "email")
    def _keep_canonical_key(self, column: str, value: str) -> str:
        setattr(self, f"{column}_key", canonical(value))
        return value

    def get_id(self) -> str | None:
        return self.session_token

    @property
    def two_factor_on(self) -> bool:
        return self.two_factor_since is not None

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class SecretStatus(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used_up"
    DESTROYED = "destroyed"
    DELETED = "deleted"  # the pages name each in i18n.STATUS_WORDS


def share_id_digest(unique_id: str) -> str:
    """Return the SHA-256 of a share id: the only form in which the database indexes it."""
    return hashlib.sha256(unique_id.encode("utf-8")).hexdigest()


class Secret(Base):
    __tablename__ = "secret"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The share id is a link: the database keeps its digest for look-ups and a sealed copy for the owner's
    # pages, so a stolen copy holds no working links. The app fills `unique_id` in when a row is loaded.
    id_digest: Mapped[str] = mapped_column(String(64), unique=True)
    unique_id_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    unique_id = None
    # None: shared without an account (ANONYMOUS_SHARING); then only the digest of its private manage link finds it.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    manage_digest: Mapped[str | None] = mapped_column(String(64), unique=True)

    # The title is an owner's label, sealed with the server key so a stolen database shows no labels either.
    title_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # Labels (title, share id copy) and content have their own key ids: `flask keys rewrap` moves the labels to the
    # newest key at once, while content waits for its password (the next right unlock).
    label_key_id: Mapped[str] = mapped_column(String(32))

    # Content sealed with a key derived from the secret's password; all four are erased when it stops being available.
    format_version: Mapped[int] = mapped_column(default=1)
    key_id: Mapped[str] = mapped_column(String(32))
    kdf_memory_kib: Mapped[int]
    kdf_iterations: Mapped[int]
    kdf_lanes: Mapped[int]
    salt: Mapped[bytes | None] = mapped_column(LargeBinary)
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Attached files are sealed under a random key of their own (attachments.py); that key is wrapped under the
    # content key, so it needs the password too, and is erased with the content.
    files_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    file_count: Mapped[int] = mapped_column(default=0, server_default="0")
    file_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    blur_level: Mapped[int] = mapped_column(default=10)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_views: Mapped[int | None]
    view_count: Mapped[int] = mapped_column(default=0)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    # Tries reserved by derivations still running: they bound parallel guesses but never count toward destruction.
    tries_in_flight: Mapped[int] = mapped_column(default=0)
    # When the newest of those tries was held: a worker killed mid-derivation never gives its try back, so the purge
    # gives back every hold older than any derivation can last.
    tries_held_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), default=SecretStatus.ACTIVE)
    # What its owner is told: opened (never, the first time, every time), destroyed by wrong guesses, expired unopened.
    notify_opened: Mapped[str] = mapped_column(String(8), default="never")
    notify_destroyed: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_unopened: Mapped[bool] = mapped_column(Boolean, default=False)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User | None] = relationship(back_populates="secrets")
    events: Mapped[list["AccessEvent"]] = relationship(
        back_populates="secret", cascade="all, delete-orphan", order_by="AccessEvent.id.desc()"
    )

    __table_args__ = (
        Index("ix_secret_status_expires_at", "status", "expires_at"),
        # The dashboard: newest first, all or one status, and the per-status totals from the index alone.
        Index("ix_secret_owner_id_id", "owner_id", "id"),
        Index("ix_secret_owner_id_status_id", "owner_id", "status", "id"),
        # The purge: ended records past retention, found by age without reading the live rows.
        Index("ix_secret_updated_at_status", "updated_at", "status"),
    )

    @classmethod
    def by_share_id(cls, unique_id: str):
        """Return the select statement that finds a secret by its share id."""
        return select(cls).filter_by(id_digest=share_id_digest(unique_id))

    @property
    def state(self) -> SecretStatus:
        return SecretStatus(self.status)

    def is_expired(self, now: datetime) -> bool:
        """Tell whether the secret's time is up at `now`."""
        return now >= self.expires_at

    def is_available(self, now: datetime) -> bool:
        """Tell whether the secret can still be unlocked at `now`."""
        return self.status == SecretStatus.ACTIVE and not self.is_expired(now)

    def views_left(self) -> int | None:
        return None if self.max_views is None else self.max_views - self.view_count

    def __repr__(self) -> str:
        return f"<Secret {self.id} {self.status}>"


def _secret_digest_column() -> Mapped[str]:
    # Deferred: an upload seals its chunks before the form (and so the secret) is complete, in the same transaction.
    return mapped_column(ForeignKey("secret.id_digest", ondelete="CASCADE", deferrable=True, initially="DEFERRED"))


class SecretFile(Base):
    """One attached file: its name, type and size sealed under the secret's file key (attachments.py)."""

    __tablename__ = "secret_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_digest: Mapped[str] = _secret_digest_column()
    position: Mapped[int]
    sealed_meta: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_secret_file_place", "secret_digest", "position", unique=True),)

    def __repr__(self) -> str:
        return f"<SecretFile {self.id}>"


class FileChunk(Base):
    """One sealed chunk of an attached file; its place (file, chunk, last or not) is in its authenticated data."""

    __tablename__ = "file_chunk"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    secret_digest: Mapped[str] = _secret_digest_column()
    file_position: Mapped[int]
    position: Mapped[int]
    sealed: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_file_chunk_place", "secret_digest", "file_position", "position", unique=True),)

    def __repr__(self) -> str:
        return f"<FileChunk {self.id}>"


class AccessOutcome(enum.StrEnum):
    UNLOCKED = "unlocked"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - an outcome label, not a password
    RECIPIENT_ENDED = "recipient_ended"  # "I have it: destroy it now"; the pages name each in i18n.OUTCOME_WORDS


class AccessEvent(Base):
    __tablename__ = "access_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_id: Mapped[int] = mapped_column(ForeignKey("secret.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    ip_prefix: Mapped[str] = mapped_column(String(64), default="")
    # On an unlock from the page: a keyed hash of the form's token, so the same form can show the content again
    # for a few minutes without counting a view (vault.REPLAY_WINDOW); unique, so a double click counts once.
    form_mark: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)

    secret: Mapped[Secret] = relationship(back_populates="events")

    def __repr__(self) -> str:
        return f"<AccessEvent {self.id} {self.outcome}>"


class UserSession(Base):
    """One signed-in browser: found by the digest of the token its cookies hold, ended by deleting the row."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    device: Mapped[str] = mapped_column(String(64), default="")
    ip_prefix: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship(back_populates="sessions")

    def is_live(self, now: datetime, idle_limit: timedelta) -> bool:
        """Tell whether the session is within both its absolute and its idle limit at `now`."""
        return now < self.expires_at and now - self.last_seen_at <= idle_limit

    def __repr__(self) -> str:
        return f"<UserSession {self.id} of user {self.user_id}>"


class ApiToken(Base):
    """A named API token of a user; only its digest is kept, the token itself is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="api_tokens")

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} of user {self.user_id}>"


class RecoveryCode(Base):
    """A single-use two-factor recovery code, kept as a digest; using it deletes the row."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)

    def __repr__(self) -> str:
        return f"<RecoveryCode {self.id} of user {self.user_id}>"


class TokenPurpose(enum.StrEnum):
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose label, not a password
    VERIFY_EMAIL = "verify_email"


class AccountToken(Base):
    """A link sent by email (a password reset, an address to confirm): only its digest is kept; using it deletes it."""

    __tablename__ = "account_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))  # the address a verification link confirms
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        return f"<AccountToken {self.id} {self.purpose} of user {self.user_id}>"


class WebhookEndpoint(Base):
    """An owner's HTTPS address that receives their secrets' events; its address and signing secret are sealed."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(253))  # shown in the list and named in logs; the full address may hold a key
    key_id: Mapped[str] = mapped_column(String(32))
    url_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_outcome: Mapped[str | None] = mapped_column(String(120))

    def __repr__(self) -> str:
        return f"<WebhookEndpoint {self.id} of user {self.user_id}>"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # abandoned after its retries, or its seal can no longer be opened


class OutboxMessage(Base):
    """An email or a webhook call on its way out. What it says (recipient, subject, body, payload) is sealed with the
    server key; delivery needs only the clear columns. Its payload is erased once it is sent or abandoned."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # email | webhook
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(8), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A message whose link dies at this time is not worth sending after it.
    deliver_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A deliverer holds a message until then: another one skips it (a guarded claim), or takes it over after.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True)

    __table_args__ = (Index("ix_outbox_message_state_next_attempt_at", "state", "next_attempt_at"),)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.channel} {self.kind} {self.state}>"


class Invitation(Base):
    """A sign-up link: only its digest is kept; single use (used_at is set by one guarded UPDATE), it expires, and it
    may be bound to one address (kept in its canonical spelling)."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    email_key: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])

    def is_open(self, now: datetime) -> bool:
        """Tell whether the invitation can still be used at `now`."""
        return self.used_at is None and now < self.expires_at

    def __repr__(self) -> str:
        return f"<Invitation {self.id} by user {self.created_by_id}>"


class AuditEvent(Base):
    """One administrative or security event. Names are copied, not linked, so the record outlives the accounts; it
    holds no content, title, link or token, only who did what to whom, when and from which network."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(32), default="")  # a username, or "cli" for the command line
    target: Mapped[str] = mapped_column(String(32), default="")
    network: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(200), default="")

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action}>"

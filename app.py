"""SecureShare: share secrets by link and QR code. Factory, forms, routes and JSON API."""

import base64
import hashlib
import io
import ipaddress
import logging
import os
import re
import secrets
import sys
import threading
from datetime import datetime, timedelta
from functools import partial, wraps
from logging.handlers import WatchedFileHandler
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import click
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import (
    LoginManager,
    current_user,
    login_required,
    login_user,
    logout_user,
    user_loaded_from_cookie,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy import event, func, text
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional
from zxcvbn import zxcvbn

from config import CONFIGS, INSTANCE_DIR
from schema import AccessEvent, AccessOutcome, Secret, SecretStatus, User, db, new_token, new_unique_id, share_id_digest, utcnow

# --- constants ---------------------------------------------------------------------------------------------

USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
SECRET_ID_RE = r"[A-Za-z0-9_-]{22,43}"  # noqa: S105 - a pattern, not a password
KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
FORMAT_VERSION = 1
KDF_FLOOR_MEMORY_KIB = 19456
KDF_FLOOR_ITERATIONS = 2
MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_LENGTH = 72

EXPIRATION_PRESETS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
EXPIRATION_CHOICES = [
    SelectChoice("1h", "1 hour"),
    SelectChoice("24h", "24 hours"),
    SelectChoice("7d", "7 days"),
    SelectChoice("custom", "Custom"),
]
CUSTOM_UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
        "payment=(), usb=(), browsing-topics=()"
    ),
}
DESTROYED_MESSAGE = "That was the last allowed try, so the secret has been destroyed for safety."
UNTRUSTED_HOST_PAGE = (
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Bad request · SecureShare</title>"
    "<h1>This address isn't served here</h1><p>Check the link you were given.</p></html>"
)
HSTS_VALUE = "max-age=63072000; includeSubDomains"
# The recipient's form stays usable this long; after that a reload gives a fresh one.
UNLOCK_FORM_MAX_AGE = timedelta(hours=12)
# Ids in paths are share links: they never reach a log line.
ID_IN_PATH_RE = re.compile(r"((?:/|%2F)(?:view|secrets|api(?:/|%2F)secrets)(?:/|%2F))[A-Za-z0-9_-]+", re.IGNORECASE)

ERROR_TEXT = {
    400: ("That request didn't work", "Something in it wasn't right. Go back, check the form and try again."),
    401: ("Please sign in", "You need to be signed in for this."),
    403: ("Not allowed", "You don't have access to this page."),
    404: ("Page not found", "There's nothing at this address. Check the link you were given."),
    405: ("Not allowed", "This page can't be used that way."),
    410: (
        "This secret is no longer available",
        "It has expired, was viewed as many times as allowed, or was deleted. Ask the sender to share it again.",
    ),
    413: ("That was too much", "What you sent is larger than SecureShare accepts. Shorten it and try again."),
    429: ("Too many tries", "Please wait a little, then try again."),
    500: ("Something went wrong on our side", "Nothing you did caused this. Please try again in a moment."),
    503: ("SecureShare is busy", "Too many secrets are being unlocked right now. Try again in a few seconds."),
}

# --- extensions and blueprints --------------------------------------------------------------------------------

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
web = Blueprint("web", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


class SecretIdConverter(BaseConverter):
    """Match share ids only, so a malformed id is a 404 from routing, before any database query."""

    regex = SECRET_ID_RE


class SealError(Exception):
    """Wrong password, tampered row or unknown key: deliberately one error, so none can be told apart."""


# --- forms ---------------------------------------------------------------------------------------------------


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _password_feedback(password: str, user_inputs: list[str]) -> str | None:
    """Return why zxcvbn finds `password` too guessable, or None when it scores well enough."""
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[value for value in user_inputs if value])
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    feedback = result["feedback"]
    hints = [feedback["warning"], *feedback["suggestions"]]
    return " ".join(hint for hint in hints if hint) or "This password is too easy to guess."


class NewPasswordMixin:
    """A new account password (12-128 characters) that zxcvbn must score at 3 or more."""

    password = PasswordField(
        "Password",
        validators=[
            InputRequired("Choose a password."),
            Length(min=12, max=128, message="Use 12 to 128 characters."),
        ],
    )
    confirm = PasswordField(
        "Repeat password", validators=[InputRequired("Repeat the password."), EqualTo("password", "The passwords don't match.")]
    )

    def password_context(self) -> list[str]:
        return []

    def validate_password(self, field) -> None:
        feedback = _password_feedback(field.data, self.password_context())
        if feedback:
            raise ValidationError(f"Too easy to guess. {feedback}")


class RegisterForm(NewPasswordMixin, FlaskForm):
    username = StringField(
        "Username",
        filters=[_strip],
        validators=[InputRequired("Choose a username."), Length(min=3, max=32, message="Use 3 to 32 characters.")],
    )
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[InputRequired("Enter your email address."), Length(max=254), Email("Enter a valid email address.")],
    )

    def password_context(self) -> list[str]:
        return [self.username.data or "", self.email.data or ""]

    def validate_username(self, field) -> None:
        if not USERNAME_RE.fullmatch(field.data):
            raise ValidationError("Use only letters, digits, dots, dashes and underscores.")
        if _find_user_by(User.username, field.data):
            raise ValidationError("That username is taken. Try another.")

    def validate_email(self, field) -> None:
        # The form must say this much for a person to recover; sign-in never reveals which accounts exist.
        if _find_user_by(User.email, field.data):
            raise ValidationError("That email already has an account. Sign in instead.")


class LoginForm(FlaskForm):
    login = StringField("Username or email", filters=[_strip], validators=[InputRequired("Enter your username or email.")])
    password = PasswordField("Password", validators=[InputRequired("Enter your password."), Length(max=128)])
    remember = BooleanField("Keep me signed in for 14 days")


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = PasswordField("Current password", validators=[InputRequired("Enter your current password.")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.label.text = "New password"
        self.confirm.label.text = "Repeat new password"

    def password_context(self) -> list[str]:
        return [current_user.username, current_user.email]


class DeleteAccountForm(FlaskForm):
    password = PasswordField("Your password", validators=[InputRequired("Enter your password to confirm.")])


class EmptyForm(FlaskForm):
    """A form with only a CSRF token, for POST-only buttons."""


def _validate_content_size(_form, field) -> None:
    limit = current_app.config["SECRET_MAX_CONTENT_BYTES"]
    if field.data and len(field.data.encode("utf-8")) > limit:
        raise ValidationError(f"Keep it under {limit // 1024} KB.")


class SecretSettingsForm(FlaskForm):
    """Settings an owner picks when creating a secret and may change later."""

    title = StringField(
        "Title",
        filters=[_strip],
        validators=[DataRequired("Give it a title only you will see."), Length(max=100, message="Use at most 100 characters.")],
    )
    expiration = SelectField("Expires after", choices=EXPIRATION_CHOICES, default="24h")
    custom_amount = IntegerField("Custom time", validators=[Optional()])
    custom_unit = SelectField("Unit", choices=[SelectChoice(unit) for unit in CUSTOM_UNITS], default="hours")
    blur_level = IntegerField(
        "Blur",
        default=10,
        validators=[InputRequired("Choose a blur level."), NumberRange(min=0, max=20, message="Choose 0 to 20.")],
    )
    max_views = IntegerField(
        "Maximum views", validators=[Optional(), NumberRange(min=1, max=100, message="Choose 1 to 100, or leave it blank.")]
    )

    def validate_custom_amount(self, field) -> None:
        if self.expiration.data != "custom":
            return
        if field.data is None:
            raise ValidationError("Enter how long it should last.")
        settings = current_app.config
        # Compare seconds, not timedeltas: a huge amount would overflow timedelta before any check.
        seconds = field.data * CUSTOM_UNITS.get(self.custom_unit.data, CUSTOM_UNITS["hours"]).total_seconds()
        if not settings["SECRET_MIN_EXPIRY"].total_seconds() <= seconds <= settings["SECRET_MAX_EXPIRY"].total_seconds():
            low, high = _duration_text(settings["SECRET_MIN_EXPIRY"]), _duration_text(settings["SECRET_MAX_EXPIRY"])
            raise ValidationError(f"Choose between {low} and {high}.")

    def lifetime(self) -> timedelta | None:
        """Return the chosen lifetime, or None when the owner keeps the current expiry."""
        if self.expiration.data == "custom":
            return self.custom_amount.data * CUSTOM_UNITS[self.custom_unit.data]
        return EXPIRATION_PRESETS.get(self.expiration.data)


def _secret_password_field(label: str, required: bool) -> PasswordField:
    presence = InputRequired("Choose a password for this secret.") if required else Optional()
    return PasswordField(label, validators=[presence, Length(min=8, max=128, message="Use 8 to 128 characters.")])


class CreateSecretForm(SecretSettingsForm):
    content = TextAreaField("Secret", validators=[DataRequired("Write the secret to share."), _validate_content_size])
    password = _secret_password_field("Password for this secret", required=True)
    confirm = PasswordField(
        "Repeat password", validators=[InputRequired("Repeat the password."), EqualTo("password", "The passwords don't match.")]
    )


class EditSecretForm(SecretSettingsForm):
    expiration = SelectField(
        "Expires", choices=[SelectChoice("keep", "Keep the current expiry"), *EXPIRATION_CHOICES], default="keep"
    )
    current_password = PasswordField("Current password of this secret", validators=[Optional()])
    content = TextAreaField("New secret", validators=[Optional(), _validate_content_size])
    password = _secret_password_field("New password", required=False)
    confirm = PasswordField("Repeat new password", validators=[EqualTo("password", "The passwords don't match.")])

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if (self.content.data or self.password.data) and not self.current_password.data:
            self.current_password.errors.append("Enter the current password to replace the secret or its password.")
            return False
        return valid


class UnlockForm(FlaskForm):
    """The recipient's password. Its CSRF token is not the session's: see _check_unlock_form."""

    class Meta:
        csrf = False

    password = PasswordField("Password", validators=[InputRequired("Enter the password you were given."), Length(max=128)])


# --- private helpers: time, users, passwords --------------------------------------------------------------------


def _now() -> datetime:
    """Return 'now' from the app's clock, which tests replace with a frozen one."""
    return current_app.config["CLOCK"]()


def _duration_text(delta: timedelta) -> str:
    """Return a short human duration: '3 h 12 min', '2 days', '45 min'."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def relative_time(moment: datetime, now: datetime) -> str:
    """Return `moment` relative to `now`: 'in 3 h 12 min' or '5 min ago'."""
    delta = moment - now
    if abs(delta.total_seconds()) < 60:
        return "in less than a minute" if delta.total_seconds() > 0 else "just now"
    if delta.total_seconds() > 0:
        return f"in {_duration_text(delta)}"
    return f"{_duration_text(-delta)} ago"


def _find_user_by(column, value: str) -> User | None:
    return db.session.execute(db.select(User).where(func.lower(column) == value.lower())).scalar_one_or_none()


def _find_user_for_login(login: str) -> User | None:
    column = User.email if "@" in login else User.username
    return _find_user_by(column, login)


def _password_hasher() -> PasswordHasher:
    return current_app.extensions["secureshare"]["hasher"]


def _hash_password(password: str) -> str:
    return _password_hasher().hash(password)


def _check_password(user: User | None, password: str) -> bool:
    """Verify an account password; for an unknown user, spend the same time on a dummy hash."""
    hasher = _password_hasher()
    stored = user.password_hash if user else current_app.extensions["secureshare"]["dummy_hash"]
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None


def _start_session(user: User, remember: bool = False) -> None:
    """Sign `user` in on a brand-new session (nothing from before survives: no fixation)."""
    session.clear()
    login_user(user, remember=remember)
    stamp = _now().timestamp()
    session["auth_at"] = stamp
    session["seen_at"] = stamp


def _restart_sessions(user: User) -> None:
    """End every session and remember cookie of `user`, then keep this browser signed in on a fresh one."""
    user.rotate_session_token()
    db.session.commit()
    _start_session(user)


def _safe_next(target: str | None) -> str | None:
    """Return `target` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _ip_prefix(address: str | None) -> str:
    """Return the client's network, never its address: /24 for IPv4, /48 for IPv6."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _digest(value: str) -> str:
    """Return a short one-way digest, for rate-limit keys that must not store ids or logins."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


# --- private helpers: encryption ---------------------------------------------------------------------------------


def _server_keys() -> dict[str, bytes]:
    return current_app.extensions["secureshare"]["keys"]


def _current_key_id() -> str:
    return next(iter(_server_keys()))


def _server_key(key_id: str) -> bytes:
    try:
        return _server_keys()[key_id]
    except KeyError:
        raise SealError from None


def _kdf_settings() -> tuple[int, int, int]:
    """Return (memory KiB, passes, lanes) for new secrets, never below the OWASP floor."""
    settings = current_app.config
    return (
        max(settings["KDF_MEMORY_KIB"], KDF_FLOOR_MEMORY_KIB),
        max(settings["KDF_ITERATIONS"], KDF_FLOOR_ITERATIONS),
        settings["KDF_LANES"],
    )


def _derive_content_key(secret: Secret, password: str) -> bytes:
    """Derive the content key from the password, the row's salt and parameters, and the server key."""
    if secret.kdf_memory_kib < KDF_FLOOR_MEMORY_KIB or secret.kdf_iterations < KDF_FLOOR_ITERATIONS:
        raise SealError
    kdf = Argon2id(
        salt=secret.salt,
        length=32,
        iterations=secret.kdf_iterations,
        lanes=secret.kdf_lanes,
        memory_cost=secret.kdf_memory_kib,
        secret=_server_key(secret.key_id),
    )
    # Each derivation holds 64 MiB: a bounded number run at once, so a burst cannot exhaust memory.
    slots = current_app.extensions["secureshare"]["kdf_slots"]
    if not slots.acquire(timeout=current_app.config["KDF_WAIT_SECONDS"]):
        abort(503)
    try:
        return kdf.derive(password.encode("utf-8"))
    finally:
        slots.release()


def _content_aad(secret: Secret) -> bytes:
    """Bind the ciphertext to its format, its share id, its server key and its KDF parameters."""
    return (
        f"secureshare/v{secret.format_version}|{secret.unique_id}|{secret.key_id}|"
        f"argon2id:m={secret.kdf_memory_kib},t={secret.kdf_iterations},p={secret.kdf_lanes}"
    ).encode()


def _seal_content(secret: Secret, content: str, password: str) -> None:
    """Encrypt `content` into `secret` under a fresh salt and nonce and the secret's server key."""
    secret.format_version = FORMAT_VERSION
    secret.kdf_memory_kib, secret.kdf_iterations, secret.kdf_lanes = _kdf_settings()
    secret.salt = os.urandom(16)
    secret.nonce = os.urandom(12)
    key = _derive_content_key(secret, password)
    secret.ciphertext = AESGCM(key).encrypt(secret.nonce, content.encode("utf-8"), _content_aad(secret))


def _open_content(secret: Secret, password: str) -> str:
    """Decrypt the secret's content.

    :raise SealError: on a wrong password, a tampered or moved row, or an unknown key.
    """
    if secret.ciphertext is None or secret.salt is None or secret.nonce is None:
        raise SealError
    key = _derive_content_key(secret, password)
    try:
        return AESGCM(key).decrypt(secret.nonce, secret.ciphertext, _content_aad(secret)).decode("utf-8")
    except InvalidTag:
        raise SealError from None


def _label_cipher(key_id: str) -> AESGCM:
    """Return the cipher for owner-facing labels under server key `key_id`.

    :raise SealError: when the key is unknown.
    """
    try:
        return current_app.extensions["secureshare"]["label_ciphers"][key_id]
    except KeyError:
        raise SealError from None


def _label_ciphers(keys: dict[str, bytes]) -> dict[str, AESGCM]:
    # Labels get keys of their own (HKDF), so no server key is used directly for two purposes; derived once.
    return {
        key_id: AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"secureshare label v1").derive(key))
        for key_id, key in keys.items()
    }


def _seal_label(secret: Secret, purpose: str, value: str) -> bytes:
    """Seal a short owner-facing value (title, share id) with the server key alone: nonce + ciphertext."""
    nonce = os.urandom(12)
    aad = f"secureshare/{purpose}|{secret.id_digest}|{secret.key_id}".encode()
    return nonce + _label_cipher(secret.key_id).encrypt(nonce, value.encode("utf-8"), aad)


def _open_label(secret: Secret, purpose: str, sealed: bytes) -> str | None:
    aad = f"secureshare/{purpose}|{secret.id_digest}|{secret.key_id}".encode()
    try:
        return _label_cipher(secret.key_id).decrypt(sealed[:12], sealed[12:], aad).decode("utf-8")
    except (SealError, InvalidTag):
        return None


def _seal_title(secret: Secret, title: str) -> None:
    secret.title_sealed = _seal_label(secret, "title", title)


def _open_title(secret: Secret) -> str:
    return _open_label(secret, "title", secret.title_sealed) or "(title unavailable)"


def _assign_share_id(secret: Secret, unique_id: str) -> None:
    secret.unique_id = unique_id
    secret.id_digest = share_id_digest(unique_id)
    secret.unique_id_sealed = _seal_label(secret, "id", unique_id)


def _seal_secret(secret: Secret, unique_id: str, title: str, content: str, password: str) -> None:
    """Seal a secret's share id, title and content under the newest server key."""
    secret.key_id = _current_key_id()
    _assign_share_id(secret, unique_id)  # first: the ciphertexts are bound to it
    _seal_title(secret, title)
    _seal_content(secret, content, password)


@event.listens_for(Secret, "load")
def _open_share_id(secret: Secret, _context) -> None:
    """Give every loaded secret its share id back, for links and the ciphertext's associated data."""
    secret.unique_id = _open_label(secret, "id", secret.unique_id_sealed)


# --- private helpers: secret lifecycle ------------------------------------------------------------------------------

WIPED = {"ciphertext": None, "salt": None, "nonce": None}


def _end_secrets(status: SecretStatus, now: datetime, *conditions) -> int:
    """Move matching active secrets to `status`, erasing their content in the same statement.

    Returns how many ended; their QR files are removed at once.
    """
    ended = db.session.execute(
        db.update(Secret)
        .where(Secret.status == SecretStatus.ACTIVE, *conditions)
        .values(status=status, updated_at=now, **WIPED)
        .returning(Secret.id, Secret.qr_filename)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    for secret_id, qr_filename in ended:
        _remove_qr_file(qr_filename)
        current_app.logger.info("secret %s ended: %s", secret_id, status.value)
    return len(ended)


def _expire_due(now: datetime, *conditions) -> int:
    return _end_secrets(SecretStatus.EXPIRED, now, Secret.expires_at <= now, *conditions)


def _settle(secret: Secret, now: datetime) -> bool:
    """Expire `secret` if its time is up; return whether it can still be unlocked."""
    if secret.status == SecretStatus.ACTIVE and secret.is_expired(now):
        _end_secrets(SecretStatus.EXPIRED, now, Secret.id == secret.id)
        db.session.refresh(secret)
    return secret.is_available(now)


def _guarded_update(secret_id: int, now: datetime, *conditions, **values) -> bool:
    """Apply `values` to an available secret only when `conditions` hold, in one statement; tell whether it did."""
    result = db.session.execute(
        db.update(Secret)
        .where(Secret.id == secret_id, Secret.status == SecretStatus.ACTIVE, Secret.expires_at > now, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def _views_remain():
    return (Secret.max_views.is_(None)) | (Secret.view_count < Secret.max_views)


def _reserve_attempt(secret_id: int, now: datetime) -> bool:
    """Count an attempt before the costly key derivation, so parallel guesses can never pass the limit."""
    limit = current_app.config["SECRET_MAX_FAILED_ATTEMPTS"]
    return _guarded_update(
        secret_id, now, Secret.failed_attempts < limit, _views_remain(), failed_attempts=Secret.failed_attempts + 1
    )


def _take_view(secret_id: int, now: datetime) -> bool:
    """Turn a reserved attempt into a view; False when the last view went to someone else first."""
    return _guarded_update(
        secret_id,
        now,
        _views_remain(),
        failed_attempts=Secret.failed_attempts - 1,
        view_count=Secret.view_count + 1,
        last_viewed_at=now,
    )


def _record_access(secret: Secret, outcome: AccessOutcome, now: datetime) -> None:
    db.session.add(
        AccessEvent(
            secret_id=secret.id,
            at=now,
            outcome=outcome,
            user_agent=(request.user_agent.string or "")[:200],
            ip_prefix=_ip_prefix(request.remote_addr),
        )
    )
    db.session.commit()


def _try_password(secret: Secret, password: str, now: datetime) -> str | None:
    """Spend one attempt on `password`; return the content, or None (recorded) when it is wrong.

    A success leaves the attempt reserved: the caller turns it into a view or gives it back.
    :raise 410: when the secret ends before the attempt starts.
    :raise 429: when the attempt limit is taken by guesses still in flight.
    """
    if not _reserve_attempt(secret.id, now):
        db.session.refresh(secret)
        abort(410 if not secret.is_available(now) else 429)
    db.session.refresh(secret)
    try:
        return _open_content(secret, password)
    except SealError:
        _record_access(secret, AccessOutcome.WRONG_PASSWORD, now)
        limit = current_app.config["SECRET_MAX_FAILED_ATTEMPTS"]
        _end_secrets(SecretStatus.DESTROYED, now, Secret.id == secret.id, Secret.failed_attempts >= limit)
        current_app.logger.info("secret %s: wrong password", secret.id)
        return None


def _unlock(secret: Secret, password: str, now: datetime) -> str | None:
    """Try `password` on `secret`; return the content and count a view, or None for a wrong password.

    :raise 410: when the secret ends before or while it is unlocked (another view took the last one).
    """
    content = _try_password(secret, password, now)
    if content is None:
        return None
    if not _take_view(secret.id, now):
        abort(410)
    _record_access(secret, AccessOutcome.UNLOCKED, now)
    _end_secrets(
        SecretStatus.USED_UP, now, Secret.id == secret.id, Secret.max_views.is_not(None), Secret.view_count >= Secret.max_views
    )
    current_app.logger.info("secret %s unlocked", secret.id)
    db.session.refresh(secret)
    return content


def _purge_ended(now: datetime) -> int:
    """Delete ended secrets older than the retention period, in batches, with their events and QR files."""
    cutoff = now - current_app.config["SECRET_RETENTION"]
    batch = current_app.config["PURGE_BATCH_SIZE"]
    purged = 0
    while rows := db.session.execute(
        db.select(Secret.id, Secret.qr_filename)
        .where(Secret.status != SecretStatus.ACTIVE, Secret.updated_at < cutoff)
        .limit(batch)
    ).all():
        ids = [row.id for row in rows]
        db.session.execute(db.delete(AccessEvent).where(AccessEvent.secret_id.in_(ids)))
        db.session.execute(db.delete(Secret).where(Secret.id.in_(ids)))
        db.session.commit()
        for row in rows:
            _remove_qr_file(row.qr_filename)
        purged += len(rows)
    if purged:
        _checkpoint_sqlite()
        current_app.logger.info("purged %d ended secrets", purged)
    return purged


def _checkpoint_sqlite() -> None:
    # Fold the WAL back into the main file, where secure_delete has already zeroed the freed pages.
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()


def _run_maintenance(now: datetime) -> None:
    """Expire and purge at most once per MAINTENANCE_INTERVAL, piggybacking on requests."""
    state = current_app.extensions["secureshare"]
    with state["maintenance_lock"]:
        last = state["maintenance_at"]
        if last is not None and now - last < current_app.config["MAINTENANCE_INTERVAL"]:
            return
        state["maintenance_at"] = now
    _expire_due(now)
    _purge_ended(now)


# --- private helpers: QR codes and links ----------------------------------------------------------------------------


def _qr_dir() -> Path:
    return Path(current_app.config["QR_DIR"])


def _remove_qr_file(filename: str | None) -> None:
    if filename:
        (_qr_dir() / filename).unlink(missing_ok=True)


def _share_link(secret: Secret) -> str:
    """Return the full link to the secret: PUBLIC_BASE_URL when set, else this (trusted) host."""
    base = current_app.config["PUBLIC_BASE_URL"] or request.host_url.rstrip("/")
    return base + url_for("web.view_secret", unique_id=secret.unique_id)


def _make_qr(secret: Secret) -> segno.QRCode:
    return segno.make(_share_link(secret), error="m", micro=False)


def _ensure_qr_file(secret: Secret) -> Path:
    """Return the secret's QR PNG, writing it under a random name if it is missing."""
    if not secret.qr_filename:
        secret.qr_filename = f"{new_token()}.png"
        db.session.commit()
    path = _qr_dir() / secret.qr_filename
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _make_qr(secret).save(path, kind="png", scale=8, border=4)
    return path


# --- private helpers: requests and responses -------------------------------------------------------------------------


def get_owned_secret_or_404(unique_id: str, owner: User | None = None) -> Secret:
    """Return the secret of `owner` (by default the signed-in user).

    :raise 404: when it does not exist or belongs to someone else (never 403: that would confirm it exists).
    """
    owner_id = owner.id if owner else current_user.id
    return db.first_or_404(Secret.by_share_id(unique_id).filter_by(owner_id=owner_id))


def get_active_owned_secret(unique_id: str) -> Secret:
    """Return the current user's secret while it can still be unlocked.

    :raise 404: as get_owned_secret_or_404; :raise 410: when it has ended.
    """
    secret = get_owned_secret_or_404(unique_id)
    if not _settle(secret, _now()):
        abort(410)
    return secret


class _ClockSigner(TimestampSigner):
    """A timestamp signer that reads the app's clock, so a form's age follows the same 'now' as everything else."""

    def get_timestamp(self) -> int:
        return int(_now().timestamp())


def _unlock_form_signer(unique_id: str) -> TimestampSigner:
    return _ClockSigner(current_app.secret_key, salt=f"secureshare unlock form|{share_id_digest(unique_id)}")


def unlock_form_token() -> str:
    """Return the CSRF token of the recipient's form on this page: signed and bound to the share id, no session.

    An anonymous recipient has nothing to keep, so the page sets no cookie (nor does a link preview or a scanner).
    """
    return _unlock_form_signer(request.view_args["unique_id"]).sign("unlock").decode()


def _check_unlock_form():
    """Refuse an unlock POST whose form did not come from this secret's page, or that a browser says came from elsewhere.

    The unlock spends no ambient authority (no cookie gives it anything; the password in the body does), so a token
    bound to the share id and a cross-site check stand in for the session-bound token; CSRFProtect skips this view.
    :raise CSRFError: as CSRFProtect would, so the answer is the same "form has expired" page.
    """
    if request.endpoint != "web.view_secret" or request.method != "POST":
        return
    if request.headers.get("Sec-Fetch-Site") in {"cross-site", "same-site"}:
        raise CSRFError("The form came from another site.")
    try:
        _unlock_form_signer(request.view_args["unique_id"]).unsign(
            request.form.get("csrf_token", ""), max_age=UNLOCK_FORM_MAX_AGE.total_seconds()
        )
    except BadSignature:
        raise CSRFError("The unlock form is missing, stale or for another secret.") from None


csrf.exempt("app.view_secret")  # checked by _check_unlock_form instead


def _text_is_clean(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_malformed_input() -> None:
    """Refuse oversized bodies (413), and invalid UTF-8, NUL bytes and lone surrogates in the query or form (400)."""
    if (request.content_length or 0) > current_app.config["MAX_CONTENT_LENGTH"]:
        abort(413)  # said up front; Werkzeug would only notice when the body is read
    raw_sources = [request.query_string]
    if request.mimetype == "application/x-www-form-urlencoded":
        raw_sources.append(request.get_data(cache=True))
    for raw in raw_sources:
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            abort(400)
        if len(pairs) > current_app.config["MAX_FORM_PARTS"]:
            abort(413)  # Werkzeug caps parts of multipart forms only
        if any(not _text_is_clean(key + value) for key, value in pairs):
            abort(400)
    # In multipart forms Werkzeug has already replaced bad bytes by U+FFFD: refuse rather than store a changed text.
    if request.mimetype == "multipart/form-data" and any(
        "\ufffd" in value or not _text_is_clean(value) for value in request.form.values()
    ):
        abort(400)


def _json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def _json_body() -> dict:
    """Return the request's JSON object.

    :raise 400: when the body is not a JSON object or holds a NUL byte or a lone surrogate.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(_text_is_clean(value) for value in _json_strings(body)):
        abort(400, "Send a JSON object in UTF-8.")
    return body


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error_response(code: int, message: str | None = None, headers=None) -> Response:
    title, text_ = ERROR_TEXT.get(code, ERROR_TEXT[500])
    if _wants_json():
        response = jsonify(error={"code": code, "message": message or text_})
    else:
        response = Response(
            render_template("error.html", code=code, title=title, message=message or text_, request_id=g.get("request_id"))
        )
    response.status_code = code
    for name, value in headers or []:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _creator_key() -> str:
    """Key per-user limits on the account (by row id, which survives sign-outs), page or API alike."""
    user = g.get("api_user") or current_user
    return f"user:{getattr(user, 'id', None)}"


# One budget for creating secrets, shared by the page and the API.
create_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_CREATE"], scope="create-secret", key_func=_creator_key, methods=["POST"]
)


# --- account routes ----------------------------------------------------------------------------------------------------


@web.get("/")
def index():
    """Landing page: what SecureShare does, and the way in."""
    return render_template("index.html")


@web.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"], methods=["POST"])
def register():
    """Create an account and sign in with it."""
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = RegisterForm()
    if form.validate_on_submit():
        user = User(username=form.username.data, email=form.email.data, password_hash=_hash_password(form.password.data))
        db.session.add(user)
        db.session.commit()
        current_app.logger.info("registered user %s (%s)", user.id, user.username)
        _start_session(user)
        flash("Welcome to SecureShare. Your account is ready.", "success")
        return redirect(url_for("web.dashboard"))
    return render_template("register.html", form=form), 400 if form.errors else 200


def _login_key() -> str:
    return "login:" + _digest((request.form.get("login") or "").strip().lower())


@web.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"], meta_limits=["3 per hour"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"], key_func=_login_key, meta_limits=["3 per hour"])
def login():
    """Sign in with a username or email and a password."""
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = _find_user_for_login(form.login.data)
        if _check_password(user, form.password.data):
            _finish_login(user, form.password.data, form.remember.data)
            return redirect(_safe_next(request.args.get("next")) or url_for("web.dashboard"))
        # Never log what was typed for an unknown account: it may be a password in the wrong box.
        current_app.logger.info("sign-in failed for %s", user.username if user else "an unknown account")
        form.password.errors.append("That username or email and password don't match. Check them and try again.")
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form, signed_out=request.args.get("signed_out")), status


def _finish_login(user: User, password: str, remember: bool) -> None:
    if _password_hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hash_password(password)
    user.last_login_at = _now()
    db.session.commit()
    _start_session(user, remember=remember)
    current_app.logger.info("signed in %s", user.username)


@web.post("/logout")
@login_required
def logout():
    """Sign out, and end every copy of this session (the token rotates). CSRFProtect has checked the token."""
    user = current_user._get_current_object()
    user.rotate_session_token()
    db.session.commit()
    logout_user()
    session.clear()
    current_app.logger.info("signed out %s", user.username)
    response = redirect(url_for("web.login", signed_out=1))
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response


def _render_account(status: int = 200, **forms):
    forms = {
        "password_form": ChangePasswordForm(formdata=None),
        "delete_form": DeleteAccountForm(formdata=None),
        "sessions_form": EmptyForm(formdata=None),
        "token_form": EmptyForm(formdata=None),
        **forms,
    }
    return render_template("account.html", **forms), status


@web.get("/account")
@login_required
def account():
    """Account settings: password, sessions, API token, deletion."""
    return _render_account()


@web.post("/account/password")
@login_required
def change_password():
    """Change the password; every other session ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if _check_password(user, form.current_password.data):
            user.password_hash = _hash_password(form.password.data)
            _restart_sessions(user)
            current_app.logger.info("password changed for %s", user.username)
            flash("Password changed. Every other device has been signed out.", "success")
            return redirect(url_for("web.account"))
        form.current_password.errors.append("That isn't your current password.")
    return _render_account(400, password_form=form)


@web.post("/account/sessions")
@login_required
def sign_out_everywhere():
    """End every other session and remember cookie of this account."""
    user = current_user._get_current_object()
    _restart_sessions(user)
    current_app.logger.info("signed out everywhere: %s", user.username)
    flash("Every other device has been signed out.", "success")
    return redirect(url_for("web.account"))


@web.post("/account/api-token")
@login_required
def create_api_token():
    """Issue a new API token (shown once; only its hash is kept), replacing any old one."""
    token = "ss_" + secrets.token_urlsafe(32)
    current_user.api_token_hash = hashlib.sha256(token.encode()).hexdigest()
    db.session.commit()
    current_app.logger.info("API token issued for %s", current_user.username)
    return _render_account(new_api_token=token)


@web.post("/account/delete")
@login_required
def delete_account():
    """Delete the account and everything it owns."""
    form = DeleteAccountForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if _check_password(user, form.password.data):
            qr_files = [secret.qr_filename for secret in user.secrets]
            db.session.delete(user)
            db.session.commit()
            for filename in qr_files:
                _remove_qr_file(filename)
            logout_user()
            session.clear()
            current_app.logger.info("deleted user %s", user.id)
            flash("Your account and all its secrets are deleted.", "success")
            return redirect(url_for("web.index"))
        form.password.errors.append("That isn't your password.")
    return _render_account(400, delete_form=form)


# --- secret routes -----------------------------------------------------------------------------------------------------


def _dashboard_totals() -> dict[str, int]:
    rows = db.session.execute(
        db.select(Secret.status, func.count()).where(Secret.owner_id == current_user.id).group_by(Secret.status)
    ).all()
    counts = dict(rows)
    return {status.value: counts.get(status.value, 0) for status in SecretStatus}


@web.get("/dashboard")
@login_required
def dashboard():
    """Every secret of the owner, newest first, 20 a page, with totals and a status filter."""
    _expire_due(_now(), Secret.owner_id == current_user.id)
    status = request.args.get("status", "")
    query = db.select(Secret).where(Secret.owner_id == current_user.id).order_by(Secret.id.desc())
    if status in {s.value for s in SecretStatus}:
        query = query.where(Secret.status == status)
    else:
        status = ""
    totals = _dashboard_totals()
    page = db.paginate(query, per_page=current_app.config["SECRETS_PER_PAGE"], error_out=False, count=False)
    page.total = totals[status] if status else sum(totals.values())  # the totals already counted them, from an index
    return render_template("dashboard.html", page=page, totals=totals, status=status)


@web.route("/create", methods=["GET", "POST"])
@login_required
@create_limit
def create_secret():
    """Create a secret; on success the owner lands on its share page."""
    form = CreateSecretForm()
    if form.validate_on_submit():
        secret = _create_secret(form, current_user)
        flash("Your secret is ready to share.", "success")
        return redirect(url_for("web.secret_detail", unique_id=secret.unique_id))
    return render_template("create_secret.html", form=form), 400 if form.errors else 200


def _create_secret(form: CreateSecretForm, owner: User) -> Secret:
    """Store a new secret from a validated form, sealed, with its QR code written."""
    now = _now()
    secret = Secret(
        owner_id=owner.id,
        blur_level=form.blur_level.data,
        max_views=form.max_views.data,
        expires_at=now + form.lifetime(),
        created_at=now,
        updated_at=now,
    )
    _seal_secret(secret, new_unique_id(), form.title.data, form.content.data, form.password.data)
    db.session.add(secret)
    db.session.commit()
    _ensure_qr_file(secret)
    current_app.logger.info("secret %s created by %s", secret.id, owner.username)
    return secret


def _delete_secret(secret: Secret) -> None:
    """Mark `secret` deleted and erase its content and QR file; the record stays until it is purged."""
    db.session.execute(
        db.update(Secret)
        .where(Secret.id == secret.id)
        .values(status=SecretStatus.DELETED, updated_at=_now(), **WIPED)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    _remove_qr_file(secret.qr_filename)
    current_app.logger.info("secret %s deleted", secret.id)


@web.get("/secrets/<secret_id:unique_id>")
@login_required
def secret_detail(unique_id: str):
    """The owner's page for one secret: share link, QR code, state and access events."""
    secret = get_owned_secret_or_404(unique_id)
    _settle(secret, _now())
    return render_template("secret_detail.html", secret=secret)


def _apply_edit(secret: Secret, form: EditSecretForm, now: datetime) -> bool:
    """Apply the edit form to `secret`; False (with a field error) when the current password is wrong.

    Checking the current password spends an attempt like an unlock, so a stolen account cannot guess freely.
    """
    if form.content.data or form.password.data:
        content = _try_password(secret, form.current_password.data, now)
        if content is None:
            _abort_if_destroyed(secret)
            form.current_password.errors.append("That isn't the current password of this secret.")
            return False
        _guarded_update(secret.id, now, failed_attempts=Secret.failed_attempts - 1)
        db.session.refresh(secret)
        new_password = form.password.data or form.current_password.data
        _seal_secret(secret, secret.unique_id, form.title.data, form.content.data or content, new_password)
    else:
        _seal_title(secret, form.title.data)
    secret.blur_level = form.blur_level.data
    secret.max_views = form.max_views.data
    if lifetime := form.lifetime():
        secret.expires_at = now + lifetime
    secret.updated_at = now
    return True


EDITABLE_COLUMNS = (
    "title_sealed", "unique_id_sealed", "key_id", "format_version", "kdf_memory_kib", "kdf_iterations", "kdf_lanes",
    "salt", "nonce", "ciphertext", "blur_level", "max_views", "expires_at", "updated_at",
)  # fmt: skip


def _save_edit(secret: Secret, now: datetime) -> None:
    """Write the edited fields in one guarded UPDATE, so an edit never revives a secret that ended meanwhile.

    :raise 410: when the secret ended, or was viewed up to its new limit, since the form was loaded.
    """
    values = {column: getattr(secret, column) for column in EDITABLE_COLUMNS}
    db.session.expire(secret)  # drop the unguarded ORM changes before anything flushes them
    conditions = [] if values["max_views"] is None else [Secret.view_count < values["max_views"]]
    if not _guarded_update(secret.id, now, *conditions, **values):
        abort(410)


@web.route("/secrets/<secret_id:unique_id>/edit", methods=["GET", "POST"])
@login_required
def edit_secret(unique_id: str):
    """Change a secret's title, blur, expiry and views; replace its content or password with the current one."""
    secret = get_active_owned_secret(unique_id)
    form = EditSecretForm(data={"title": _open_title(secret), "blur_level": secret.blur_level, "max_views": secret.max_views})
    if form.validate_on_submit():
        if form.max_views.data is not None and form.max_views.data <= secret.view_count:
            form.max_views.errors.append(f"It has been viewed {secret.view_count} times: choose more, or leave it blank.")
        elif _apply_edit(secret, form, _now()):
            _save_edit(secret, _now())
            current_app.logger.info("secret %s edited", secret.id)
            flash("Changes saved.", "success")
            return redirect(url_for("web.secret_detail", unique_id=secret.unique_id))
        db.session.rollback()
    status = 400 if request.method == "POST" else 200
    return render_template("edit_secret.html", form=form, secret=secret), status


@web.route("/secrets/<secret_id:unique_id>/delete", methods=["GET", "POST"])
@login_required
def delete_secret(unique_id: str):
    """Ask, then delete: the content is erased at once, the record stays for the owner until it is purged."""
    secret = get_owned_secret_or_404(unique_id)
    if request.method == "POST":  # CSRFProtect has checked the token
        _delete_secret(secret)
        flash("Secret deleted. Its link no longer works.", "success")
        return redirect(url_for("web.dashboard"))
    return render_template("delete_secret.html", secret=secret, form=EmptyForm())


@web.get("/secrets/<secret_id:unique_id>/card")
@login_required
def secret_card(unique_id: str):
    """A printable card: QR code, title, expiry and where to get the password (never the secret or password)."""
    secret = get_active_owned_secret(unique_id)
    return render_template("secret_card.html", secret=secret)


def _send_qr(data: bytes, mimetype: str, extension: str) -> Response:
    """Send a QR image; ?download=1 makes it a download."""
    return send_file(
        io.BytesIO(data),
        mimetype=mimetype,
        as_attachment=bool(request.args.get("download")),
        download_name=f"secureshare-qr.{extension}",
        max_age=0,
    )


@web.get("/secrets/<secret_id:unique_id>/qr.png")
@login_required
def secret_qr_png(unique_id: str):
    """The QR code as PNG, from static/qrcodes (written again if missing)."""
    secret = get_active_owned_secret(unique_id)
    return _send_qr(_ensure_qr_file(secret).read_bytes(), "image/png", "png")


@web.get("/secrets/<secret_id:unique_id>/qr.svg")
@login_required
def secret_qr_svg(unique_id: str):
    """The QR code as SVG, drawn on request."""
    secret = get_active_owned_secret(unique_id)
    buffer = io.BytesIO()
    _make_qr(secret).save(buffer, kind="svg", scale=8, border=4, xmldecl=False)
    return _send_qr(buffer.getvalue(), "image/svg+xml", "svg")


def _unlock_limits_key() -> str:
    return "unlock:" + _digest(request.view_args["unique_id"])


@web.route("/view/<secret_id:unique_id>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_UNLOCK_IP"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_UNLOCK_SECRET"], methods=["POST"], key_func=_unlock_limits_key)
def view_secret(unique_id: str):
    """GET (and HEAD) shows only the password form and changes nothing; POST unlocks."""
    secret = db.first_or_404(Secret.by_share_id(unique_id))
    now = _now()
    if not _settle(secret, now):
        abort(410)
    form = UnlockForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("view_secret.html", form=form), status
    content = _unlock(secret, form.password.data, now)
    if content is None:
        return _wrong_secret_password(secret, form)
    return render_template("view_secret.html", form=None, secret=secret, content=content, title=_open_title(secret))


def _abort_if_destroyed(secret: Secret) -> None:
    """:raise 410: when the wrong password just spent the secret's last attempt."""
    db.session.refresh(secret)
    if secret.status == SecretStatus.DESTROYED:
        abort(410, DESTROYED_MESSAGE)


def _wrong_secret_password(secret: Secret, form: UnlockForm):
    _abort_if_destroyed(secret)
    left = current_app.config["SECRET_MAX_FAILED_ATTEMPTS"] - secret.failed_attempts
    form.password.errors.append(
        f"That password isn't right. {left} {'try' if left == 1 else 'tries'} left before the secret is destroyed."
    )
    return render_template("view_secret.html", form=form), 403


@web.get("/.well-known/security.txt")
def security_txt():
    """RFC 9116 contact details for reporting vulnerabilities."""
    expires = (_now() + timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"Contact: {current_app.config['SECURITY_CONTACT']}", f"Expires: {expires}"]
    if current_app.config["SECURITY_POLICY_URL"]:
        lines.append(f"Policy: {current_app.config['SECURITY_POLICY_URL']}")
    lines.append("Preferred-Languages: en")
    return Response("\n".join(lines) + "\n", mimetype="text/plain")


# --- API -------------------------------------------------------------------------------------------------------------


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def _api_user() -> User | None:
    """Return the caller: a Bearer token's owner, else the signed-in session's user."""
    if (token := _bearer_token()) is not None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        return db.session.execute(db.select(User).filter_by(api_token_hash=digest)).scalar_one_or_none()
    return current_user._get_current_object() if current_user.is_authenticated else None


def api_auth_required(view):
    """Require a caller; cookie callers must also send the CSRF token, token callers need none."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        user = _api_user()
        if user is None:
            return jsonify(success=False, error={"code": 401, "message": "Sign in or send an API token."}), 401
        if _bearer_token() is None and request.method not in {"GET", "HEAD"}:
            csrf.protect()  # a cookie is ambient, a bearer token is not
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped


def _api_limit_key() -> str:
    header = request.headers.get("Authorization", "")
    return "api:" + (_digest(header) if header else get_remote_address())


@api.get("/auth/check")
def auth_check():
    """Tell a script whether its session or token is signed in."""
    user = _api_user()
    if user is None:
        return jsonify(success=False), 401
    return jsonify(success=True, user={"id": user.id, "username": user.username, "email": user.email})


def _secret_json(secret: Secret) -> dict:
    active = secret.status == SecretStatus.ACTIVE
    return {
        "id": secret.unique_id,
        "title": _open_title(secret),
        "status": secret.status,
        "created_at": secret.created_at.isoformat(),
        "expires_at": secret.expires_at.isoformat(),
        "max_views": secret.max_views,
        "view_count": secret.view_count,
        "failed_attempts": secret.failed_attempts,
        "blur_level": secret.blur_level,
        "link": _share_link(secret) if active else None,
    }


def _form_from_json(form_class: type[FlaskForm]) -> FlaskForm:
    """Build a form from the JSON body, so the API validates exactly as the pages do."""
    fields = {key: str(value) for key, value in _json_body().items() if isinstance(value, str | int) and value is not True}
    return form_class(formdata=MultiDict(fields), meta={"csrf": False})


@api.get("/secrets")
@api_auth_required
def api_list_secrets():
    """The caller's secrets, newest first, 20 a page (?page=, ?status=)."""
    _expire_due(_now(), Secret.owner_id == g.api_user.id)
    query = db.select(Secret).where(Secret.owner_id == g.api_user.id).order_by(Secret.id.desc())
    if (status := request.args.get("status")) in {s.value for s in SecretStatus}:
        query = query.where(Secret.status == status)
    page = db.paginate(query, per_page=current_app.config["SECRETS_PER_PAGE"], error_out=False)
    return jsonify(success=True, secrets=[_secret_json(secret) for secret in page.items], page=page.page, pages=page.pages)


@api.post("/secrets")
@api_auth_required
@create_limit
def api_create_secret():
    """Create a secret from JSON with the form's field names; answer 201 with its link."""
    form = _form_from_json(CreateSecretForm)
    if not form.validate():
        return jsonify(success=False, error={"code": 400, "message": "Some fields need fixing.", "fields": form.errors}), 400
    secret = _create_secret(form, g.api_user)
    return jsonify(success=True, secret=_secret_json(secret)), 201


@api.get("/secrets/<secret_id:unique_id>")
@api_auth_required
def api_get_secret(unique_id: str):
    """One of the caller's secrets: its state and link, never its content."""
    secret = get_owned_secret_or_404(unique_id, g.api_user)
    _settle(secret, _now())
    return jsonify(success=True, secret=_secret_json(secret))


@api.delete("/secrets/<secret_id:unique_id>")
@api_auth_required
def api_delete_secret(unique_id: str):
    """Delete one of the caller's secrets: its content is erased at once."""
    secret = get_owned_secret_or_404(unique_id, g.api_user)
    _delete_secret(secret)
    db.session.refresh(secret)
    return jsonify(success=True, secret=_secret_json(secret))


# API calls are limited per token (or per address for cookie callers); CSRF is checked in api_auth_required.
limiter.limit(lambda: current_app.config["RATELIMIT_API"], key_func=_api_limit_key)(api)
csrf.exempt(api)


# --- error handlers -----------------------------------------------------------------------------------------------------


def _handle_http_error(error: HTTPException):
    if isinstance(error, SecurityError):
        # An untrusted Host: no URL can be built for it, so answer without the page template.
        return Response(UNTRUSTED_HOST_PAGE, status=400, mimetype="text/html")
    if isinstance(error, CSRFError):
        return _error_response(400, "This form has expired or came from elsewhere. Reload the page and try again.")
    headers = error.get_headers() if error.code in {405, 429} else None
    # Our own abort() messages are written for people; Werkzeug's stock texts and the limiter's rates are not shown.
    custom = error.description != type(error).description and not isinstance(error, RateLimitExceeded)
    message = error.description if custom else None
    return _error_response(error.code or 500, message, headers)


def _handle_unexpected_error(_error: Exception):
    db.session.rollback()
    current_app.logger.exception("unhandled error")
    return _error_response(500)


# --- create_app ---------------------------------------------------------------------------------------------------------


def _read_or_create(path: Path, make) -> str:
    """Return the contents of a key file, creating it once with mode 0600."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


def _new_encryption_key() -> str:
    return f"k{utcnow():%Y%m%d}:{base64.b64encode(os.urandom(32)).decode()}"


def _parse_encryption_keys(value: str) -> dict[str, bytes]:
    """Parse ENCRYPTION_KEYS ("id:base64key" pairs, comma-separated, newest first)."""
    keys = {}
    for pair in filter(None, (item.strip() for item in value.split(","))):
        key_id, _, encoded = pair.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            key = b""
        if not KEY_ID_RE.fullmatch(key_id) or len(key) != 32:
            raise SystemExit("SecureShare will not start: ENCRYPTION_KEYS must be id:base64 pairs of 32-byte keys.")
        keys[key_id] = key
    if not keys:
        raise SystemExit("SecureShare will not start: ENCRYPTION_KEYS is empty.")
    return keys


def _configure_keys(app: Flask) -> dict[str, bytes]:
    """Take SECRET_KEY and ENCRYPTION_KEYS from the environment; in development, generate them once."""
    settings = app.config
    missing = [name for name in ("SECRET_KEY", "ENCRYPTION_KEYS") if not settings[name]]
    if missing and settings["REQUIRE_KEYS"]:
        raise SystemExit(f"SecureShare will not start: set {' and '.join(missing)} in the environment (see README).")
    key_dir = settings["KEY_DIR"]
    if not settings["SECRET_KEY"]:
        make = lambda: secrets.token_hex(32)  # noqa: E731
        settings["SECRET_KEY"] = _read_or_create(Path(key_dir) / "secret_key", make) if key_dir else make()
    if not settings["ENCRYPTION_KEYS"]:
        keys = _read_or_create(Path(key_dir) / "encryption_keys", _new_encryption_key) if key_dir else _new_encryption_key()
        settings["ENCRYPTION_KEYS"] = keys
    return _parse_encryption_keys(settings["ENCRYPTION_KEYS"])


def _configure_hosts(app: Flask) -> None:
    """Answer only to known host names: TRUSTED_HOSTS, else PUBLIC_BASE_URL's host; production needs one of them."""
    settings = app.config
    if not settings["TRUSTED_HOSTS"] and settings["PUBLIC_BASE_URL"]:
        settings["TRUSTED_HOSTS"] = [urlsplit(settings["PUBLIC_BASE_URL"]).hostname]
    if settings["REQUIRE_HOSTS"] and not settings["TRUSTED_HOSTS"]:
        raise SystemExit("SecureShare will not start: set PUBLIC_BASE_URL or TRUSTED_HOSTS in the environment (see README).")


class _RequestIdFilter(logging.Filter):
    """Stamp each record with the request id, and cut share ids out of request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        if record.args:
            record.msg, record.args = record.getMessage(), ()
        record.msg = ID_IN_PATH_RE.sub(r"\1[id]", str(record.msg))
        return True


def _configure_logging(app: Flask) -> None:
    """Log to stderr and, when set, to LOG_FILE (WatchedFileHandler: safe to rotate under several workers)."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if app.config["LOG_FILE"]:
        log_file = Path(app.config["LOG_FILE"])
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(WatchedFileHandler(log_file, encoding="utf-8"))
    for handler in app.logger.handlers:
        handler.close()
    app.logger.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_RequestIdFilter())
        app.logger.addHandler(handler)
    app.logger.setLevel(logging.INFO)
    app.logger.propagate = False
    werkzeug_logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, _RequestIdFilter) for f in werkzeug_logger.filters):
        werkzeug_logger.addFilter(_RequestIdFilter())


def _register_extensions(app: Flask, keys: dict[str, bytes]) -> None:
    db.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    settings = app.config
    hasher = PasswordHasher(
        time_cost=settings["PASSWORD_HASH_TIME_COST"],
        memory_cost=settings["PASSWORD_HASH_MEMORY_KIB"],
        parallelism=settings["PASSWORD_HASH_PARALLELISM"],
    )
    app.extensions["secureshare"] = {
        "keys": keys,
        "label_ciphers": _label_ciphers(keys),
        "hasher": hasher,
        "dummy_hash": hasher.hash(secrets.token_urlsafe(16)),
        "kdf_slots": threading.BoundedSemaphore(settings["KDF_MAX_CONCURRENT"]),
        "maintenance_lock": threading.Lock(),
        "maintenance_at": None,
    }


@login_manager.user_loader
def _load_user(session_token: str) -> User | None:
    return db.session.execute(db.select(User).filter_by(session_token=session_token)).scalar_one_or_none()


@user_loaded_from_cookie.connect
def _stamp_remembered_session(_app, user=None) -> None:
    stamp = _now().timestamp()
    session["auth_at"] = stamp
    session["seen_at"] = stamp


def _before_request():
    g.request_id = secrets.token_hex(8)
    if request.path.startswith("/static/qrcodes/"):
        abort(404)  # QR codes are served to their owner only, through the owner routes
    if request.endpoint == "static" or request.routing_exception is not None:
        return None  # static files need none of this; a routing error is answered as it is
    _reject_malformed_input()
    _run_maintenance(_now())
    return _enforce_session_lifetime()


def _enforce_session_lifetime():
    """End a session idle too long or older than its absolute lifetime (enforced here, not by the cookie)."""
    if not current_user.is_authenticated:
        return None
    now = _now().timestamp()
    settings = current_app.config
    started, seen = session.get("auth_at"), session.get("seen_at")
    if (
        started is None
        or seen is None
        or now - started > settings["SESSION_ABSOLUTE_LIFETIME"].total_seconds()
        or now - seen > settings["SESSION_IDLE_TIMEOUT"].total_seconds()
    ):
        logout_user()
        session.clear()
        flash("You were signed out to keep your account safe. Please sign in again.", "info")
        if _wants_json():
            return jsonify(success=False, error={"code": 401, "message": "Session expired."}), 401
        back = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("web.login", next=back))
    session["seen_at"] = now
    return None


def _security_headers(app: Flask) -> dict[str, dict[str, str]]:
    """Return the headers for static files and for every other response, computed once per app."""
    static = dict(SECURITY_HEADERS)
    if app.config["HSTS"]:
        static["Strict-Transport-Security"] = HSTS_VALUE
    return {"static": static, "page": {**static, "Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}}


def _set_security_headers(response: Response, headers: dict[str, dict[str, str]]) -> Response:
    response.headers.update(headers["static" if request.endpoint == "static" else "page"])
    if g.get("request_id"):
        response.headers["X-Request-ID"] = g.request_id
    return response


def _register_handlers(app: Flask) -> None:
    app.before_request(_before_request)
    app.before_request(_check_unlock_form)
    app.after_request(partial(_set_security_headers, headers=_security_headers(app)))
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(Exception, _handle_unexpected_error)
    app.context_processor(_template_context)


def _template_context() -> dict:
    return {
        "now": _now(),
        "relative_time": relative_time,
        "title_of": _open_title,
        "share_link": _share_link,
        "SecretStatus": SecretStatus,
        "unlock_form_token": unlock_form_token,
    }


def _register_commands(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db():
        """Create the database tables (safe to run again)."""
        db.create_all()
        click.echo("Database ready.")

    @app.cli.command("purge")
    def purge():
        """Expire due secrets and delete ended ones older than the retention period."""
        now = _now()
        expired = _expire_due(now)
        purged = _purge_ended(now)
        click.echo(f"Expired {expired}, purged {purged}.")


def create_app(config_class=None) -> Flask:
    """Build the SecureShare app from `config_class`, or the class APP_CONFIG names (development by default)."""
    if config_class is None:
        name = os.environ.get("APP_CONFIG", "development")
        if name not in CONFIGS:
            raise SystemExit(f"SecureShare will not start: APP_CONFIG must be one of {', '.join(CONFIGS)}.")
        config_class = CONFIGS[name]
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(config_class)
    app.config.setdefault("CLOCK", utcnow)
    keys = _configure_keys(app)
    _configure_hosts(app)
    _configure_logging(app)
    if app.config["PROXY_COUNT"]:
        hops = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.url_map.converters["secret_id"] = SecretIdConverter
    _register_handlers(app)  # first: bad input is refused before CSRF or rate limits read the form
    _register_extensions(app, keys)
    _register_commands(app)
    app.register_blueprint(web)
    app.register_blueprint(api)
    return app


app = create_app()

"""SecureShare: share secrets by link and QR code. Factory, forms, routes and JSON API."""

import base64
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import os
import posixpath
import re
import secrets
import sys
from datetime import UTC, datetime, timedelta
from functools import partial, wraps
from logging.handlers import WatchedFileHandler
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, urlsplit

import click
import flask_migrate
import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    after_this_request,
    current_app,
    flash,
    g,
    has_app_context,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.cli import AppGroup
from flask_limiter import Limiter, RateLimitExceeded
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer
from sqlalchemy import event, func, inspect, or_, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, SecurityError, ServiceUnavailable
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

import vault
from config import BASE_DIR, CONFIGS, INSTANCE_DIR
from schema import (
    AccessEvent,
    AccessOutcome,
    ApiToken,
    Base,
    RecoveryCode,
    Secret,
    SecretStatus,
    User,
    UserSession,
    new_token,
    share_id_digest,
    token_digest,
    utcnow,
)

# --- constants ---------------------------------------------------------------------------------------------

USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
SECRET_ID_RE = r"[A-Za-z0-9_-]{22,43}"  # noqa: S105 - a pattern, not a password
PAGE_RE = re.compile(r"[0-9]{1,6}")
MIN_SECRET_KEY_LENGTH = 32
FIRST_REVISION = "0001"  # migrations/versions/0001_initial_schema.py: the schema init-db made before migrations
MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_LENGTH = 72

EXPIRATION_PRESETS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
EXPIRATION_CHOICES = [
    SelectChoice("1h", "1 hour"),
    SelectChoice("24h", "24 hours"),
    SelectChoice("7d", "7 days"),
    SelectChoice("custom", "Custom"),
]
TOKEN_LIFETIMES = {"30d": timedelta(days=30), "90d": timedelta(days=90), "365d": timedelta(days=365), "never": None}
TOKEN_LIFETIME_CHOICES = [
    SelectChoice("30d", "30 days"),
    SelectChoice("90d", "90 days"),
    SelectChoice("365d", "1 year"),
    SelectChoice("never", "Never"),
]
MAX_REMEMBERED_SESSION = timedelta(days=14)
SESSION_SEEN_STEP = timedelta(seconds=30)  # last-seen is written at most this often: one write, not one per request
LOGIN_CODE_TIMEOUT = timedelta(minutes=5)
RECOVERY_CODE_COUNT = 10
PENDING_TOTP_KEY = "pending_totp"  # the session entry holding the key being enrolled, sealed
TOTP_CODE_RE = re.compile(r"[0-9]{6}")
DEVICE_COOKIE_ACCOUNTS = 5
# A tiny user-agent reading for the sessions list: the first match wins, so the more specific names come first.
BROWSER_MARKS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
SYSTEM_MARKS = (
    ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"), ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"), ("Linux", "Linux"),
)  # fmt: skip
CUSTOM_UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Share links never leave the site in a Referer; our own pages keep Origin, which the CSRF check reads.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
        "payment=(), usb=(), browsing-topics=()"
    ),
}
UNAVAILABLE_TITLE = "Unavailable: its server key was removed"
DESTROYED_MESSAGE = "That was the last allowed try, so the secret has been destroyed for safety."
UNTRUSTED_HOST_PAGE = (
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Bad request · SecureShare</title>"
    "<h1>This address isn't served here</h1><p>Check the link you were given.</p></html>"
)
HSTS_VALUE = "max-age=63072000; includeSubDomains"
# Sec-Fetch-Site values of a request our own pages made ("none": typed or bookmarked by the person).
OWN_FETCH_SITES = {"same-origin", "none"}
EXPIRED_FORM_MESSAGE = "This form has expired or came from elsewhere. Reload the page and try again."
CROSS_SITE_MESSAGE = "This form was sent from another website, so nothing was changed. Open SecureShare yourself and try again."
HOST_RE = re.compile(
    r"\.?(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?"
)
MAX_PROXY_COUNT = 5
# Probes for a load balancer or orchestrator: no cookies, no rate limits, nothing about the deployment in the body.
PROBE_ENDPOINTS = {"web.healthz", "web.readyz"}
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
# The API names every error with a stable `reason` besides its status, so a script can tell causes apart.
ERROR_REASONS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    410: "gone", 413: "too_large", 415: "unsupported_media_type", 422: "unknown_fields", 429: "rate_limited",
    500: "server_error", 503: "busy",
}  # fmt: skip
GONE_MESSAGE = "This secret is no longer available: it expired, was viewed as often as allowed, or was deleted."
BUSY_RETRY_AFTER_SECONDS = 5
# JSON bodies: brackets are counted before parsing, so a deeply nested body is a 400, never a recursion error.
MAX_JSON_DEPTH = 8
JSON_TOKEN_RE = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')
QUERY_TOKEN_NAMES = {"token", "access_token", "api_key"}
MAX_PAGE = 100_000
MAX_PER_PAGE = 100

# --- extensions and blueprints --------------------------------------------------------------------------------

class CrossSiteRequest(CSRFError):
    """An unsafe request that a browser says came from another site."""


class SameOriginCSRFProtect(CSRFProtect):
    """Flask-WTF's token check, then our own same-origin check in place of its Referer check.

    With Referrer-Policy same-origin a form post carries no Referer to demand, but browsers send Sec-Fetch-Site
    (and Origin), which say where the request came from; SECURITY.md explains the choice.
    """

    def protect(self, apply_exemptions=False):
        super().protect(apply_exemptions)
        if g.get("csrf_valid") and (reason := _cross_site_reason()):  # set only where a token was checked
            current_app.logger.info("refused a cross-site request: %s", reason)
            raise CrossSiteRequest()


db = SQLAlchemy(metadata=Base.metadata)
login_manager = LoginManager()
csrf = SameOriginCSRFProtect()
limiter = Limiter(key_func=lambda: _client_network())  # one address, or one IPv6 /64: see _client_network
# Batch mode: SQLite alters a table by copying it, so later revisions can change columns on either database.
migrate = flask_migrate.Migrate(directory=str(BASE_DIR / "migrations"), render_as_batch=True)
web = Blueprint("web", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


class SecretIdConverter(BaseConverter):
    """Match share ids only, so a malformed id is a 404 from routing, before any database query."""

    regex = SECRET_ID_RE


class SecureShare(Flask):
    """Flask, plus the vault's key ring and policy: built once by create_app, handed to every vault call."""

    keys: vault.KeyRing
    policy: vault.Policy


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


def _email_field(label: str) -> StringField:
    return StringField(
        label,
        filters=[_strip],
        validators=[InputRequired("Enter your email address."), Length(max=254), Email("Enter a valid email address.")],
    )


def _validate_free_email(field) -> None:
    # The form must say this much for a person to recover; sign-in never reveals which accounts exist.
    if _find_user_by(User.email, field.data):
        raise ValidationError("That email already has an account. Sign in instead.")


def _code_field(label: str, required: bool) -> StringField:
    presence = InputRequired("Enter the code.") if required else Optional()
    return StringField(label, filters=[_strip], validators=[presence, Length(max=32, message="That code is too long.")])


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
    email = _email_field("Email")

    def password_context(self) -> list[str]:
        return [self.username.data or "", self.email.data or ""]

    def validate_username(self, field) -> None:
        if not USERNAME_RE.fullmatch(field.data):
            raise ValidationError("Use only letters, digits, dots, dashes and underscores.")
        if _find_user_by(User.username, field.data):
            raise ValidationError("That username is taken. Try another.")

    def validate_email(self, field) -> None:
        _validate_free_email(field)


class LoginForm(FlaskForm):
    login = StringField("Username or email", filters=[_strip], validators=[InputRequired("Enter your username or email.")])
    password = PasswordField("Password", validators=[InputRequired("Enter your password."), Length(max=128)])
    remember = BooleanField("Keep me signed in for 14 days")


class LoginCodeForm(FlaskForm):
    code = _code_field("Code from your authenticator app, or a recovery code", required=True)


class ReauthForm(FlaskForm):
    """Proof that the person at the keyboard owns the account: the password, and a code when two-factor is on."""

    current_password = PasswordField(
        "Current password", validators=[InputRequired("Enter your current password."), Length(max=128)]
    )
    code = _code_field("Code from your authenticator app, or a recovery code", required=False)


class TwoFactorForm(ReauthForm):
    """Turning two-factor on: the password (so a stolen session cannot lock the owner out) and a code of the new key."""

    code = _code_field("Code from your authenticator app", required=True)


class ChangePasswordForm(NewPasswordMixin, ReauthForm):
    keep_tokens = BooleanField("Keep my API tokens working")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.label.text = "New password"
        self.confirm.label.text = "Repeat new password"

    def password_context(self) -> list[str]:
        return [current_user.username, current_user.email]


class ChangeEmailForm(ReauthForm):
    email = _email_field("New email")

    def validate_email(self, field) -> None:
        _validate_free_email(field)


class CreateTokenForm(ReauthForm):
    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Name the token after the script that uses it."), Length(max=64)]
    )
    lifetime = SelectField("Expires after", choices=TOKEN_LIFETIME_CHOICES, default="90d")


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
        validators=[
            DataRequired("Give it a title, so you both know what it is."),
            Length(max=100, message="Use at most 100 characters."),
        ],
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

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # Optional() ends the custom amount's checks when it is left out: ask for it here, so lifetime() has a number.
        if self.expiration.data == "custom" and self.custom_amount.data is None and not self.custom_amount.errors:
            self.custom_amount.errors.append("Enter how long it should last.")
            return False
        return valid

    def validate_custom_amount(self, field) -> None:
        if self.expiration.data != "custom" or field.data is None:
            return  # not wanted, not a number (already said), or left out (validate() says so)
        settings = current_app.config
        # Compare whole seconds as Python ints: a huge amount would overflow a float or a timedelta first.
        seconds = field.data * int(CUSTOM_UNITS.get(self.custom_unit.data, CUSTOM_UNITS["hours"]).total_seconds())
        low_s, high_s = (int(settings[name].total_seconds()) for name in ("SECRET_MIN_EXPIRY", "SECRET_MAX_EXPIRY"))
        if not low_s <= seconds <= high_s:
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


class ApiExpiryMixin:
    """`expires_in`, in seconds: the API's simple way to set an expiry (its bounds are checked by the API schema)."""

    expires_in = IntegerField("Expires in (seconds)", validators=[Optional()])

    def validate_expires_in(self, field) -> None:
        if field.data is not None and self.expiration.raw_data:
            raise ValidationError("Send either expires_in or expiration, not both.")

    def lifetime(self) -> timedelta | None:
        if self.expires_in.data is not None:
            return timedelta(seconds=self.expires_in.data)
        return super().lifetime()


class ApiCreateSecretForm(ApiExpiryMixin, CreateSecretForm):
    # A script types nothing, so the confirmation is optional; when it is sent it must match.
    confirm = PasswordField("Repeat password", validators=[Optional(), EqualTo("password", "The passwords don't match.")])


class ApiEditSecretForm(ApiExpiryMixin, EditSecretForm):
    """The edit form's settings; the API never replaces the content or the password."""


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


def _verify_password_or_flag(form: ReauthForm, user: User) -> bool:
    if _check_password(user, form.current_password.data):
        return True
    form.current_password.errors.append("That isn't your current password.")
    return False


def _reauthenticate(form: ReauthForm) -> bool:
    """Check the password, then (when two-factor is on) the code; put what failed next to its field."""
    user = current_user._get_current_object()
    if not _verify_password_or_flag(form, user):
        return False
    if not user.two_factor_on:
        return True
    if not form.code.data:
        form.code.errors.append("Enter the code from your authenticator app, or a recovery code.")
        return False
    if not _accept_second_factor(user, form.code.data):
        form.code.errors.append("That code didn't work. Use the newest code, or a recovery code you haven't used.")
        return False
    return True


# --- private helpers: sessions -----------------------------------------------------------------------------------


def _device_name(user_agent: str) -> str:
    """Return a coarse device name for the sessions list: 'Chrome on Android', 'Firefox on Windows'."""
    browser = next((name for mark, name in BROWSER_MARKS if mark in user_agent), None)
    system = next((name for mark, name in SYSTEM_MARKS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def _session_limits(remember: bool) -> tuple[timedelta, timedelta]:
    """Return (absolute lifetime, idle limit) of a session; a kept-signed-in one lasts at most 14 days."""
    settings = current_app.config
    if remember:
        return min(settings["REMEMBER_COOKIE_DURATION"], MAX_REMEMBERED_SESSION), settings["REMEMBERED_SESSION_IDLE_TIMEOUT"]
    return settings["SESSION_ABSOLUTE_LIFETIME"], settings["SESSION_IDLE_TIMEOUT"]


def _start_session(user: User, remember: bool = False) -> None:
    """Sign `user` in on a brand-new server-side session (nothing from before survives: no fixation)."""
    now = _now()
    token = new_token()
    lifetime, _idle = _session_limits(remember)
    db.session.add(
        UserSession(
            user_id=user.id,
            token_hash=token_digest(token),
            remember=remember,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            device=_device_name(request.user_agent.string or ""),
            ip_prefix=_ip_prefix(request.remote_addr, v6_prefix=64),
        )
    )
    db.session.commit()
    session.clear()
    # Flask-WTF caches this request's CSRF token in g; it belonged to the cleared session, so a page rendered
    # now (the recovery codes after turning two-factor on) must get the new session's token.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    user.session_token = token
    login_user(user, remember=remember)


def _current_session() -> UserSession | None:
    return g.get("user_session")


def _end_sessions(*conditions) -> int:
    """Delete the matching sessions: their cookies, remember cookie included, resolve to nothing from now on."""
    ended = db.session.execute(db.delete(UserSession).where(*conditions).execution_options(synchronize_session=False))
    db.session.commit()
    return ended.rowcount


def _restart_sessions(user: User) -> None:
    """End every session of `user`, this one included (a copied cookie dies too), and keep this browser signed in
    on a fresh session that is kept signed in only if this one was."""
    remember = _current_session().remember
    _end_sessions(UserSession.user_id == user.id)
    _start_session(user, remember=remember)


def _revoke_api_tokens(user: User) -> int:
    revoked = db.session.execute(
        db.delete(ApiToken).where(ApiToken.user_id == user.id).execution_options(synchronize_session=False)
    )
    db.session.commit()
    return revoked.rowcount


def _touch_session(user_session: UserSession, now: datetime) -> None:
    """Record activity for the idle limit, at most once per SESSION_SEEN_STEP."""
    if now - user_session.last_seen_at >= SESSION_SEEN_STEP:
        user_session.last_seen_at = now
        db.session.commit()


def _end_stale_sessions(now: datetime) -> int:
    """Delete sessions past their absolute or idle limit (the loader refuses them anyway; this keeps the table small)."""
    short_idle = current_app.config["SESSION_IDLE_TIMEOUT"]
    long_idle = current_app.config["REMEMBERED_SESSION_IDLE_TIMEOUT"]
    return _end_sessions(
        or_(
            UserSession.expires_at <= now,
            UserSession.last_seen_at < now - max(short_idle, long_idle),
            (UserSession.remember.is_(False)) & (UserSession.last_seen_at < now - short_idle),
        )
    )


def _forget_remember_cookie(response: Response) -> Response:
    """Delete the remember cookie by name (the device cookie stays: it is what lets the owner back in)."""
    settings = current_app.config
    response.delete_cookie(
        settings.get("REMEMBER_COOKIE_NAME", "remember_token"),
        domain=settings.get("REMEMBER_COOKIE_DOMAIN"),
        path=settings.get("REMEMBER_COOKIE_PATH", "/"),
        secure=settings["REMEMBER_COOKIE_SECURE"],
        httponly=True,
        samesite=settings["REMEMBER_COOKIE_SAMESITE"],
    )
    return response


def _sign_out_here() -> None:
    """End this browser's session row and clear its session and remember cookies."""
    if (user_session := _current_session()) is not None:
        _end_sessions(UserSession.id == user_session.id)
    logout_user()
    session.clear()
    after_this_request(_forget_remember_cookie)


# --- private helpers: device cookies and guess throttling ---------------------------------------------------------


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="secureshare device")


def _device_entries() -> dict[int, str]:
    """Return {user id: nonce} from this browser's signed device cookie; nothing when it is missing or forged."""
    raw = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"])
    if not raw:
        return {}
    try:
        entries = _device_serializer().loads(raw)
    except BadSignature:
        return {}
    if not isinstance(entries, list):
        return {}
    return {entry[0]: entry[1] for entry in entries if isinstance(entry, list) and len(entry) == 2}


def _trust_this_device(user: User) -> None:
    """Give this browser a device cookie for `user` (OWASP device cookies): it keeps a sign-in budget of its own."""
    entries = _device_entries()
    entries.setdefault(user.id, secrets.token_urlsafe(16))
    recent = [[user.id, entries.pop(user.id)], *([key, nonce] for key, nonce in entries.items())][:DEVICE_COOKIE_ACCOUNTS]

    @after_this_request
    def _set_device_cookie(response: Response) -> Response:
        settings = current_app.config
        response.set_cookie(
            settings["DEVICE_COOKIE_NAME"],
            _device_serializer().dumps(recent),
            max_age=int(settings["DEVICE_COOKIE_DURATION"].total_seconds()),
            secure=settings["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        return response


def _guessed_user_id() -> int | None:
    """Return the account a password or code is being tried on in this request, when it resolves to one."""
    if "guessed_user_id" not in g:
        g.guessed_user_id = _resolve_guessed_user_id()
    return g.guessed_user_id


def _resolve_guessed_user_id() -> int | None:
    if request.endpoint == "web.login":
        user = _find_user_for_login((request.form.get("login") or "").strip())
        return user.id if user else None
    if request.endpoint == "web.login_code":
        return (_pending_login() or {}).get("user")
    return current_user.id if current_user.is_authenticated else None


def _guess_account_key() -> str:
    """Key guesses on the account: its id when the login resolves (username and email are one), else the login typed."""
    if (user_id := _guessed_user_id()) is not None:
        return f"user:{user_id}"
    return "login:" + _digest((request.form.get("login") or "").strip().lower())


def _trusted_device_nonce() -> str | None:
    """Return this browser's device nonce for the account being guessed, when it has signed in to it before."""
    user_id = _guessed_user_id()
    return _device_entries().get(user_id) if user_id is not None else None


def _from_trusted_device() -> bool:
    return _trusted_device_nonce() is not None


def _from_unknown_device() -> bool:
    return not _from_trusted_device()


def _device_key() -> str:
    return "device:" + _digest(_trusted_device_nonce() or "")


def _guess_rate() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


# Password and code guesses (sign-in, its code step and every re-authentication) share one budget per account and
# per network for unknown devices; a trusted device has a budget of its own, so guessers cannot lock the owner out.
# The back-off is the rate string's longer windows (10 a minute, then 30 an hour, then 100 a day). No meta limits:
# Flask-Limiter checks those before `exempt_when`, so unknown devices' breaches would refuse trusted ones too.
GUESS_LIMITS = (
    limiter.shared_limit(_guess_rate, scope="guess-network", methods=["POST"], exempt_when=_from_trusted_device),
    limiter.shared_limit(
        _guess_rate, scope="guess-account", key_func=_guess_account_key, methods=["POST"], exempt_when=_from_trusted_device
    ),
    limiter.shared_limit(
        _guess_rate, scope="guess-device", key_func=_device_key, methods=["POST"], exempt_when=_from_unknown_device
    ),
)


def throttle_guesses(view):
    """Apply the guess limits to a view that checks a password or a second-factor code."""
    for limit in GUESS_LIMITS:
        view = limit(view)
    return view


# --- private helpers: two-factor ------------------------------------------------------------------------------------


def _sealed_totp_columns(user_id: int, key: str) -> dict:
    """Return the user columns holding `key` sealed under the newest server key, bound to its user and key id."""
    keys = _keys()
    return {"totp_key_id": keys.newest_id, "totp_key_sealed": keys.seal_label(keys.newest_id, "totp", f"user:{user_id}", key)}


def _seal_totp_key(user: User, key: str) -> None:
    for column, value in _sealed_totp_columns(user.id, key).items():
        setattr(user, column, value)


def _open_totp_key(user: User) -> str | None:
    """Return the user's TOTP key, or None when there is none or it cannot be opened (unknown key, tampered row)."""
    if user.totp_key_sealed is None or user.totp_key_id is None:
        return None
    return _keys().open_label(user.totp_key_id, "totp", f"user:{user.id}", user.totp_key_sealed)


def _two_factor_keys_by_key_id() -> dict[str, int]:
    """Return how many accounts' two-factor keys each server key seals."""
    counted = db.select(User.totp_key_id, func.count()).where(User.totp_key_id.is_not(None)).group_by(User.totp_key_id)
    return dict(db.session.execute(counted).all())


def _rewrap_totp_keys() -> tuple[int, int]:
    """Re-seal every two-factor key under the newest server key; return (moved, left under a removed key)."""
    moved = stuck = 0
    newest = _keys().newest_id
    for user in db.session.execute(db.select(User).where(User.totp_key_id.is_not(None), User.totp_key_id != newest)).scalars():
        if (key := _open_totp_key(user)) is None:
            stuck += 1
            continue
        _seal_totp_key(user, key)
        moved += 1
    db.session.commit()
    return moved, stuck


def _claim_totp_step(user: User, step: int) -> bool:
    """Record `step` as used, in one guarded UPDATE: False when it (or a later one) was used already."""
    claimed = db.session.execute(
        db.update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(user)
    return claimed.rowcount == 1


def _matching_totp_step(key: str, code: str) -> int | None:
    """Return the time step `code` belongs to, when it is the current one or one either side (clock skew)."""
    if not TOTP_CODE_RE.fullmatch(code):
        return None
    totp = pyotp.TOTP(key)
    current = totp.timecode(_now())
    steps = (current - 1, current, current + 1)
    return next((step for step in steps if hmac.compare_digest(totp.generate_otp(step), code)), None)


def _accept_totp(user: User, code: str) -> bool:
    """Accept a code of the user's key, of the current time step or one either side, once."""
    key = _open_totp_key(user)
    step = _matching_totp_step(key, code) if key is not None else None
    return step is not None and _claim_totp_step(user, step)


def _normal_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def _use_recovery_code(user: User, code: str) -> bool:
    """Spend a recovery code: one guarded DELETE, so a code works exactly once."""
    used = db.session.execute(
        db.delete(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == token_digest(_normal_recovery_code(code)))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return used.rowcount == 1


def _accept_second_factor(user: User, code: str) -> bool:
    """Accept an authenticator code or, failing that, an unused recovery code."""
    code = code.replace(" ", "")
    if TOTP_CODE_RE.fullmatch(code):
        return _accept_totp(user, code)
    return _use_recovery_code(user, code)


def _new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones; return them for showing once."""
    codes = [base64.b32encode(os.urandom(10)).decode().lower() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=token_digest(code)) for code in codes)
    db.session.commit()
    return ["-".join(code[i : i + 4] for i in range(0, 16, 4)) for code in codes]


def _recovery_codes_left(user: User) -> int:
    return db.session.scalar(db.select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user.id))


def _pending_totp_key() -> str:
    """Return the key this session is enrolling, making one the first time, so a reload shows the same QR code.

    It lives sealed in this session only, bound to its server-side row: another session, or this one after a password
    change, an email change or "sign out everywhere", starts over with a new key, so a thief who saw one learns nothing.
    """
    keys, binding = _keys(), f"session:{_current_session().id}"
    key_id, sealed = session.get(PENDING_TOTP_KEY) or ("", b"")
    if isinstance(sealed, bytes) and (key := keys.open_label(str(key_id), "totp-pending", binding, sealed)) is not None:
        return key
    key = pyotp.random_base32()
    session[PENDING_TOTP_KEY] = (keys.newest_id, keys.seal_label(keys.newest_id, "totp-pending", binding, key))
    return key


def _confirm_two_factor(user: User, key: str, step: int) -> bool:
    """Store the confirmed key and turn two-factor on, in one guarded UPDATE: False when it was on already."""
    turned_on = db.session.execute(
        db.update(User)
        .where(User.id == user.id, User.two_factor_since.is_(None))
        .values(**_sealed_totp_columns(user.id, key), totp_last_step=step, two_factor_since=_now())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(user)
    session.pop(PENDING_TOTP_KEY, None)
    return turned_on.rowcount == 1


def _totp_qr_data_uri(user: User, key: str) -> str:
    """Return the enrolment QR code as an SVG data: URI (drawn in memory, never written to disk)."""
    uri = pyotp.TOTP(key).provisioning_uri(name=user.username, issuer_name="SecureShare")
    return segno.make(uri, error="m", micro=False).svg_data_uri(scale=5, border=4)


def _pending_login() -> dict | None:
    """Return the half-finished sign-in awaiting its code, while it is younger than LOGIN_CODE_TIMEOUT."""
    pending = session.get("pending_login")
    if not isinstance(pending, dict) or _now().timestamp() - pending.get("at", 0) > LOGIN_CODE_TIMEOUT.total_seconds():
        return None
    return pending


def _safe_next(target: str | None) -> str | None:
    """Return `target` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _ip_prefix(address: str | None, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """Return the client's network, never its address: /24 for IPv4, /48 (or `v6_prefix`) for IPv6."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return ""
    prefix = v4_prefix if ip.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _client_network() -> str:
    """Rate-limit key for the caller: its IPv4 address, or its IPv6 /64 (what one subscriber gets) by its first address."""
    network = _ip_prefix(request.remote_addr, v4_prefix=32, v6_prefix=64)
    return network.partition("/")[0] if network else (request.remote_addr or "")


def _digest(value: str) -> str:
    """Return a short one-way digest, for rate-limit keys that must not store ids or logins."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


# --- private helpers: the vault, QR codes and links --------------------------------------------------------------


def _keys() -> vault.KeyRing:
    return current_app.keys


def _policy() -> vault.Policy:
    return current_app.policy


def _visitor() -> vault.Visitor:
    return vault.Visitor(user_agent=request.user_agent.string or "", ip_prefix=_ip_prefix(request.remote_addr))


def _title_of(secret: Secret) -> str:
    """Return the title for the owner's pages, or say that a key it needs was removed."""
    if vault.key_retired(_keys(), secret):
        return UNAVAILABLE_TITLE
    return vault.title_of(_keys(), secret) or "(title unavailable)"


def _is_unavailable(secret: Secret) -> bool:
    return vault.key_retired(_keys(), secret)


@event.listens_for(Secret, "load")
def _open_share_id(secret: Secret, _context) -> None:
    """Give every secret the app loads its share id back, for the owner's links (None when its key was removed)."""
    secret.unique_id = vault.share_id_of(current_app.keys, secret) if has_app_context() else None


def _expire_owned_due(owner_id: int) -> None:
    """Erase the owner's secrets whose time is up before listing them; a failure here never fails the page."""
    try:
        vault.expire_due(db.session, _policy(), _now(), owner_id)
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("could not expire due secrets; the purge will")


def _public_url(endpoint: str, **values) -> str:
    """Return the full URL of `endpoint`: on PUBLIC_BASE_URL when set, else on this (trusted) host."""
    base = current_app.config["PUBLIC_BASE_URL"] or request.host_url.rstrip("/")
    return base + url_for(endpoint, **values)


def _share_link(secret: Secret) -> str:
    """Return the full link to the secret, the one its QR code holds."""
    return _public_url("web.view_secret", unique_id=secret.unique_id)


def _make_qr(secret: Secret) -> segno.QRCode:
    return segno.make(_share_link(secret), error="m", micro=False)


def _qr_file(secret: Secret) -> Path:
    """Return the secret's QR PNG under its random name, drawing it again if the file is missing."""
    path = Path(current_app.config["QR_DIR"]) / secret.qr_filename
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
    secret = db.first_or_404(Secret.by_share_id(unique_id).filter_by(owner_id=owner_id))
    secret.unique_id = unique_id  # known even when the key of its sealed copy was removed
    return secret


def get_active_owned_secret(unique_id: str, owner: User | None = None) -> Secret:
    """Return the secret of `owner` (by default the signed-in user) while it can still be unlocked.

    :raise 404: as get_owned_secret_or_404; :raise 410: when it has ended or a key it needs was removed.
    """
    secret = get_owned_secret_or_404(unique_id, owner)
    if not secret.is_available(_now()) or _is_unavailable(secret):
        abort(410)
    return secret


def _page_number() -> int:
    """Return ?page= as a number.

    :raise 400: unless it is a whole number from 1 to 999999 (a huge one would overflow the database's integers).
    """
    raw = request.args.get("page", "1")
    if not PAGE_RE.fullmatch(raw) or int(raw) < 1:
        abort(400, "Ask for a page number from 1 to 999999.")
    return int(raw)
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
    :raise CSRFError: as CSRFProtect would, so the answer is the same page (CrossSiteRequest for another site).
    """
    if request.endpoint != "web.view_secret" or request.method != "POST":
        return
    if reason := _cross_site_reason():
        current_app.logger.info("refused a cross-site unlock: %s", reason)
        raise CrossSiteRequest()
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
    _buffer_streamed_body()
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


def _buffer_streamed_body() -> None:
    """Read a body sent without a length (chunked) up to the limit, so an oversized one is a 413, not cut short.

    Werkzeug stops reading such a body at MAX_CONTENT_LENGTH and hands over what it has: a form or JSON silently cut.
    """
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        abort(413)
    request.environ["wsgi.input"] = io.BytesIO(body)


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


def _json_nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Tell whether the brackets of a JSON text nest deeper than `limit` (strings are skipped whole; no recursion)."""
    depth = 0
    for token in JSON_TOKEN_RE.finditer(raw):
        if token.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token.group() in (b"]", b"}"):
            depth -= 1
    return False


def _refuse_json_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_body() -> dict:
    """Return the request's JSON object.

    :raise ApiError: 415 unless the body is declared application/json; 400 when it is not a JSON object in UTF-8,
        nests deeper than MAX_JSON_DEPTH, or holds a NUL byte or a lone surrogate.
    """
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as JSON, with Content-Type: application/json.")
    raw = request.get_data(cache=True)
    if _json_nests_deeper_than(raw, MAX_JSON_DEPTH):
        raise ApiError(400, "invalid_json", f"JSON may nest at most {MAX_JSON_DEPTH} levels deep.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_json_constant)
    except ValueError:  # also invalid UTF-8, and integers too long to convert
        body = None
    if not isinstance(body, dict) or not all(_text_is_clean(value) for value in _json_strings(body)):
        raise ApiError(400, "invalid_json", "Send a JSON object in UTF-8.")
    return body


def _own_origins() -> set[str]:
    """Return this site's origins: the request's scheme and host (as ProxyFix sees them) and PUBLIC_BASE_URL's."""
    origins = {f"{request.scheme}://{request.host}".lower()}
    if public := current_app.config["PUBLIC_BASE_URL"]:
        origins.add(public.lower())
    return origins


def _cross_site_reason() -> str | None:
    """Tell why an unsafe request did not come from our own pages, or None when it did (or no header says).

    Sec-Fetch-Site is set by the browser and cannot be forged by a page, so it decides when present; else Origin
    must be ours ("null" never is); with neither (old browsers, scripts) the CSRF token alone decides.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return None if fetch_site in OWN_FETCH_SITES else f"Sec-Fetch-Site {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in _own_origins():
        return "foreign Origin"
    return None


def _wants_json() -> bool:
    return request.path.startswith("/api/")


class ApiError(Exception):
    """A refused API request, answered as the error envelope: status, a stable `reason`, words, and details."""

    def __init__(self, status: int, reason: str, message: str, headers: dict | None = None, **details):
        super().__init__(message)
        self.status, self.reason, self.message, self.headers, self.details = status, reason, message, headers or {}, details


def _api_error_response(error: ApiError) -> Response:
    details = {"code": error.status, "reason": error.reason, "message": error.message, **error.details}
    response = jsonify(success=False, error=details)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _error_response(code: int, message: str | None = None, headers=None, reason: str | None = None) -> Response:
    title, text_ = ERROR_TEXT.get(code, ERROR_TEXT[500])
    if _wants_json():
        response = _api_error_response(ApiError(code, reason or ERROR_REASONS.get(code, "server_error"), message or text_))
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
        _trust_this_device(user)
        flash("Welcome to SecureShare. Your account is ready.", "success")
        return redirect(url_for("web.dashboard"))
    return render_template("register.html", form=form), 400 if form.errors else 200


@web.route("/login", methods=["GET", "POST"])
@throttle_guesses
def login():
    """Sign in with a username or email and a password; with two-factor on, the code comes next."""
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = _find_user_for_login(form.login.data)
        if _check_password(user, form.password.data):
            return _after_password(user, form.password.data, form.remember.data)
        # Never log what was typed for an unknown account: it may be a password in the wrong box.
        current_app.logger.info("sign-in failed for %s", user.username if user else "an unknown account")
        form.password.errors.append("That username or email and password don't match. Check them and try again.")
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form, signed_out=request.args.get("signed_out")), status


def _after_password(user: User, password: str, remember: bool):
    """Finish a sign-in whose password was right: at once, or after the code when two-factor is on."""
    if _password_hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hash_password(password)
        db.session.commit()
    target = _safe_next(request.args.get("next"))
    if user.two_factor_on:
        session.clear()
        session["pending_login"] = {"user": user.id, "remember": remember, "next": target, "at": _now().timestamp()}
        return redirect(url_for("web.login_code"))
    _complete_login(user, remember)
    return redirect(target or url_for("web.dashboard"))


def _complete_login(user: User, remember: bool) -> None:
    user.last_login_at = _now()
    db.session.commit()
    _start_session(user, remember=remember)
    _trust_this_device(user)
    current_app.logger.info("signed in %s", user.username)


@web.route("/login/code", methods=["GET", "POST"])
@throttle_guesses
def login_code():
    """The second sign-in step: a code from the authenticator app, or a recovery code."""
    pending = _pending_login()
    user = db.session.get(User, pending["user"]) if pending else None
    if user is None or not user.two_factor_on:
        session.pop("pending_login", None)
        flash("Please sign in again.", "info")
        return redirect(url_for("web.login"))
    form = LoginCodeForm()
    if form.validate_on_submit():
        if _accept_second_factor(user, form.code.data):
            _complete_login(user, pending["remember"])
            return redirect(pending["next"] or url_for("web.dashboard"))
        current_app.logger.info("sign-in code refused for %s", user.username)
        form.code.errors.append("That code didn't work. Use the newest code from your app, or a recovery code you haven't used.")
    status = 400 if request.method == "POST" else 200
    return render_template("login_code.html", form=form), status


@web.post("/logout")
@login_required
def logout():
    """Sign out this browser only: its session ends on the server and its session cookies are cleared by name."""
    username = current_user.username
    _sign_out_here()
    current_app.logger.info("signed out %s", username)
    response = redirect(url_for("web.login", signed_out=1))
    # Not "cookies": that would also drop the device cookie, which keeps the owner's own sign-in budget.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _render_account(status: int = 200, **forms):
    user = current_user._get_current_object()
    forms = {
        "password_form": ChangePasswordForm(formdata=None),
        "email_form": ChangeEmailForm(formdata=None, prefix="email"),
        "delete_form": ReauthForm(formdata=None, prefix="delete"),
        **forms,
    }
    summary = {
        "session_count": len(user.sessions),
        "token_count": len(user.api_tokens),
        "recovery_left": _recovery_codes_left(user),
    }
    return render_template("account.html", **summary, **forms), status


@web.get("/account")
@login_required
def account():
    """Account settings: password, email, two-factor, where you're signed in, API tokens, deletion."""
    return _render_account()


@web.post("/account/password")
@login_required
@throttle_guesses
def change_password():
    """Change the password; every other session ends, and API tokens too unless the owner keeps them."""
    form = ChangePasswordForm()
    if form.validate_on_submit() and _reauthenticate(form):
        user = current_user._get_current_object()
        user.password_hash = _hash_password(form.password.data)
        db.session.commit()
        _restart_sessions(user)
        message = "Password changed. Every other device has been signed out."
        if not form.keep_tokens.data:
            _revoke_api_tokens(user)
            message += " Your API tokens no longer work."
        current_app.logger.info("password changed for %s", user.username)
        flash(message, "success")
        return redirect(url_for("web.account"))
    return _render_account(400, password_form=form)


@web.post("/account/email")
@login_required
@throttle_guesses
def change_email():
    """Change the email address, checked for uniqueness as at sign-up."""
    form = ChangeEmailForm(prefix="email")
    if form.validate_on_submit() and _reauthenticate(form):
        user = current_user._get_current_object()
        user.email = form.email.data
        db.session.commit()
        session.pop(PENDING_TOTP_KEY, None)  # a two-factor enrolment starts over with a new key
        current_app.logger.info("email changed for %s", user.username)
        flash("Email changed.", "success")
        return redirect(url_for("web.account"))
    return _render_account(400, email_form=form)


@web.post("/account/delete")
@login_required
@throttle_guesses
def delete_account():
    """Delete the account and everything it owns."""
    form = ReauthForm(prefix="delete")
    if form.validate_on_submit() and _reauthenticate(form):
        user = current_user._get_current_object()
        vault.delete_all_of(db.session, _policy(), user.id)
        db.session.delete(user)
        db.session.commit()
        logout_user()
        session.clear()
        after_this_request(_forget_remember_cookie)
        current_app.logger.info("deleted user %s", user.id)
        flash("Your account and all its secrets are deleted.", "success")
        return redirect(url_for("web.index"))
    return _render_account(400, delete_form=form)


# --- account routes: where you're signed in --------------------------------------------------------------------------


@web.get("/account/sessions")
@login_required
def account_sessions():
    """Where you're signed in: every live session of this account, this one first."""
    rows = db.session.execute(
        db.select(UserSession).where(UserSession.user_id == current_user.id).order_by(UserSession.last_seen_at.desc())
    ).scalars()
    here = _current_session()
    listed = sorted(rows, key=lambda row: row.id != here.id)
    return render_template("account_sessions.html", sessions=listed, here=here, form=EmptyForm())


@web.post("/account/sessions")
@login_required
def sign_out_everywhere():
    """End every other session of this account and revoke its API tokens; this browser stays signed in."""
    user = current_user._get_current_object()
    _restart_sessions(user)
    _revoke_api_tokens(user)
    current_app.logger.info("signed out everywhere: %s", user.username)
    flash("Every other device has been signed out, and your API tokens no longer work.", "success")
    return redirect(url_for("web.account_sessions"))


@web.post("/account/sessions/<int:session_id>/end")
@login_required
def end_session(session_id: int):
    """Sign out one session of this account (this one included).

    :raise 404: when it does not exist or belongs to someone else.
    """
    user_session = db.first_or_404(db.select(UserSession).filter_by(id=session_id, user_id=current_user.id))
    if user_session.id == _current_session().id:
        _sign_out_here()
        return redirect(url_for("web.login", signed_out=1))
    device = user_session.device
    _end_sessions(UserSession.id == user_session.id)
    flash(f"Signed out {device}.", "success")
    return redirect(url_for("web.account_sessions"))


# --- account routes: two-factor ---------------------------------------------------------------------------------------


def _render_two_factor(status: int = 200, **context):
    user = current_user._get_current_object()
    if user.two_factor_on:
        context.setdefault("reauth_form", ReauthForm(formdata=None))
        context.setdefault("disable_form", ReauthForm(formdata=None, prefix="off"))
        return render_template("account_two_factor.html", recovery_left=_recovery_codes_left(user), **context), status
    key = _pending_totp_key()
    context.setdefault("form", TwoFactorForm(formdata=None))
    return render_template("account_two_factor.html", key=key, qr=_totp_qr_data_uri(user, key), **context), status


@web.get("/account/two-factor")
@login_required
def two_factor():
    """Two-factor sign-in: turn it on (QR code and key as text), or manage it."""
    return _render_two_factor()


@web.post("/account/two-factor")
@login_required
@throttle_guesses
def enable_two_factor():
    """Turn two-factor on with the password and a code from the newly set-up app; every other session ends, and the
    recovery codes are shown once."""
    user = current_user._get_current_object()
    if user.two_factor_on:
        return redirect(url_for("web.two_factor"))
    form = TwoFactorForm()
    if form.validate_on_submit() and _reauthenticate(form):
        key = _pending_totp_key()
        step = _matching_totp_step(key, form.code.data.replace(" ", ""))
        if step is None:
            form.code.errors.append("That code didn't work. Check the app shows SecureShare, then type the newest code.")
        elif not _confirm_two_factor(user, key, step):
            return redirect(url_for("web.two_factor"))
        else:
            _restart_sessions(user)
            current_app.logger.info("two-factor on for %s", user.username)
            flash("Two-factor sign-in is on. Every other device has been signed out.", "success")
            return _render_two_factor(recovery_codes=_new_recovery_codes(user))
    return _render_two_factor(400, form=form)


@web.post("/account/two-factor/recovery-codes")
@login_required
@throttle_guesses
def new_recovery_codes():
    """Replace the recovery codes (the old ones stop working); shown once."""
    form = ReauthForm()
    if not current_user.two_factor_on:
        return redirect(url_for("web.two_factor"))
    if form.validate_on_submit() and _reauthenticate(form):
        current_app.logger.info("new recovery codes for %s", current_user.username)
        return _render_two_factor(recovery_codes=_new_recovery_codes(current_user))
    return _render_two_factor(400, reauth_form=form)


@web.post("/account/two-factor/disable")
@login_required
@throttle_guesses
def disable_two_factor():
    """Turn two-factor off: the key and the recovery codes are erased."""
    form = ReauthForm(prefix="off")
    if not current_user.two_factor_on:
        return redirect(url_for("web.two_factor"))
    if form.validate_on_submit() and _reauthenticate(form):
        user = current_user._get_current_object()
        user.totp_key_sealed = user.totp_key_id = user.totp_last_step = user.two_factor_since = None
        db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        db.session.commit()
        current_app.logger.info("two-factor off for %s", user.username)
        flash("Two-factor sign-in is off. Your recovery codes no longer work.", "success")
        return redirect(url_for("web.account"))
    return _render_two_factor(400, disable_form=form)


# --- account routes: API tokens ------------------------------------------------------------------------------------------


def _render_tokens(status: int = 200, **context):
    tokens = db.session.execute(
        db.select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id.desc())
    ).scalars()
    context.setdefault("form", CreateTokenForm(formdata=None))
    return render_template("account_tokens.html", tokens=list(tokens), revoke_form=EmptyForm(), **context), status


@web.get("/account/tokens")
@login_required
def account_tokens():
    """API tokens: create one (shown once), see when each was used, revoke any."""
    return _render_tokens()


@web.post("/account/tokens")
@login_required
@throttle_guesses
def create_api_token():
    """Issue a named API token after re-authentication; only its hash is kept."""
    form = CreateTokenForm()
    if form.validate_on_submit() and _reauthenticate(form):
        token = "ss_" + secrets.token_urlsafe(32)
        now = _now()
        lifetime = TOKEN_LIFETIMES[form.lifetime.data]
        db.session.add(
            ApiToken(
                user_id=current_user.id,
                name=form.name.data,
                token_hash=token_digest(token),
                created_at=now,
                expires_at=now + lifetime if lifetime else None,
            )
        )
        db.session.commit()
        current_app.logger.info("API token issued for %s", current_user.username)
        return _render_tokens(new_api_token=token, new_token_name=form.name.data)
    return _render_tokens(400, form=form)


@web.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_api_token(token_id: int):
    """Revoke one API token of this account.

    :raise 404: when it does not exist or belongs to someone else.
    """
    token = db.first_or_404(db.select(ApiToken).filter_by(id=token_id, user_id=current_user.id))
    name = token.name
    db.session.delete(token)
    db.session.commit()
    flash(f"Token “{name}” revoked. Scripts using it now get “not signed in”.", "success")
    return redirect(url_for("web.account_tokens"))


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
    _expire_owned_due(current_user.id)
    status = request.args.get("status", "")
    query = db.select(Secret).where(Secret.owner_id == current_user.id).order_by(Secret.id.desc())
    if status in {s.value for s in SecretStatus}:
        query = query.where(Secret.status == status)
    else:
        status = ""
    totals = _dashboard_totals()
    page = db.paginate(
        query, page=_page_number(), per_page=current_app.config["SECRETS_PER_PAGE"], error_out=False, count=False
    )
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
    """Store a new secret from a validated form, sealed, with its QR code written.

    :raise 503: when no key derivation could start in time.
    """
    settings = form.data
    match vault.create(
        db.session, _keys(), owner.id, settings["title"], settings["content"], settings["password"],
        form.lifetime(), settings["max_views"], settings["blur_level"], _now(),
    ):  # fmt: skip
        case vault.Created(secret):
            _qr_file(secret)
            current_app.logger.info("secret %s created by %s", secret.id, owner.username)
            return secret
        case vault.Busy(retry_after):
            raise ServiceUnavailable(retry_after=retry_after)


@web.get("/secrets/<secret_id:unique_id>")
@login_required
def secret_detail(unique_id: str):
    """The owner's page for one secret: share link, QR code, state and access events."""
    _expire_owned_due(current_user.id)
    return render_template("secret_detail.html", secret=get_owned_secret_or_404(unique_id))


def _changes(form: EditSecretForm) -> vault.Changes:
    return vault.Changes(
        title=form.title.data,
        blur_level=form.blur_level.data,
        max_views=form.max_views.data,
        lifetime=form.lifetime(),
        current_password=form.current_password.data or None,
        content=form.content.data or None,
        password=form.password.data or None,
    )


@web.route("/secrets/<secret_id:unique_id>/edit", methods=["GET", "POST"])
@login_required
def edit_secret(unique_id: str):
    """Change a secret's title, blur, expiry and views; replace its content or password with the current one.

    Checking the current password spends a try like an unlock, so a stolen account cannot guess freely.
    """
    secret = get_active_owned_secret(unique_id)
    form = EditSecretForm(data={"title": _title_of(secret), "blur_level": secret.blur_level, "max_views": secret.max_views})
    if form.validate_on_submit():
        clock = current_app.config["CLOCK"]
        match vault.edit(db.session, _keys(), _policy(), unique_id, current_user.id, _changes(form), clock, _visitor()):
            case vault.Saved():
                current_app.logger.info("secret %s edited", secret.id)
                flash("Changes saved.", "success")
                return redirect(url_for("web.secret_detail", unique_id=unique_id))
            case vault.WrongPassword():
                form.current_password.errors.append("That isn't the current password of this secret.")
            case vault.ViewsTaken(view_count):
                form.max_views.errors.append(f"It has been viewed {view_count} times: choose more, or leave it blank.")
            case vault.ExpiryTooLate(latest):
                form.expiration.errors.append(
                    f"A secret lasts at most {_duration_text(_policy().max_lifetime)} from its creation: "
                    f"until {latest:%Y-%m-%d %H:%M} UTC. Choose a shorter time."
                )
            case outcome:
                _abort_for(outcome)
    status = 400 if request.method == "POST" else 200
    return render_template("edit_secret.html", form=form, secret=secret), status


def _abort_unless_openable(unique_id: str) -> None:
    """:raise 404: when there is no such secret; :raise 410: when it has ended, expired or lost its key."""
    match vault.openable(db.session, _keys(), unique_id, _now()):
        case None:
            abort(404)
        case False:
            abort(410)


def _abort_for(outcome) -> None:
    """Answer a vault outcome that ends the request the same way on every page.

    :raise 410: gone, destroyed or its key removed; :raise 429: every try left is in flight; :raise 503: busy.
    """
    match outcome:
        case vault.Destroyed():
            abort(410, DESTROYED_MESSAGE)
        case vault.Busy(retry_after):
            raise ServiceUnavailable(retry_after=retry_after)
        case vault.TriesInFlight():
            abort(429)
        case vault.Gone() | vault.KeyRetired():
            abort(410)
    raise TypeError(f"unexpected outcome {outcome!r}")


@web.route("/secrets/<secret_id:unique_id>/delete", methods=["GET", "POST"])
@login_required
def delete_secret(unique_id: str):
    """Ask, then delete: an active secret is erased and its record kept until the purge; an ended record goes."""
    secret = get_owned_secret_or_404(unique_id)
    if request.method == "POST":  # CSRFProtect has checked the token
        current_app.logger.info("secret %s deleted", secret.id)
        match vault.delete(db.session, _policy(), unique_id, current_user.id, _now()):
            case vault.Deleted():
                flash("Secret deleted. Its link no longer works.", "success")
            case vault.Removed():
                flash("Record removed.", "success")
            case vault.Gone():
                abort(404)
        return redirect(url_for("web.dashboard"))
    return render_template("delete_secret.html", secret=secret, form=EmptyForm())


@web.get("/secrets/<secret_id:unique_id>/card")
@login_required
def secret_card(unique_id: str):
    """A printable card: QR code, title, expiry and where to get the password (never the secret or password)."""
    secret = get_active_owned_secret(unique_id)
    return render_template("secret_card.html", secret=secret)


def _qr_png_response(secret: Secret) -> Response:
    """The secret's QR code as PNG, from static/qrcodes (drawn again if the file is missing)."""
    return _send_qr(_qr_file(secret).read_bytes(), "image/png", "png")


def _qr_svg_response(secret: Secret) -> Response:
    """The secret's QR code as SVG, drawn on request."""
    buffer = io.BytesIO()
    _make_qr(secret).save(buffer, kind="svg", scale=8, border=4, xmldecl=False)
    return _send_qr(buffer.getvalue(), "image/svg+xml", "svg")


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
    """The QR code as PNG, from static/qrcodes (drawn again if the file is missing)."""
    return _qr_png_response(get_active_owned_secret(unique_id))


@web.get("/secrets/<secret_id:unique_id>/qr.svg")
@login_required
def secret_qr_svg(unique_id: str):
    """The QR code as SVG, drawn on request."""
    return _qr_svg_response(get_active_owned_secret(unique_id))


def _unlock_limits_key() -> str:
    return "unlock:" + _digest(request.view_args["unique_id"])


# One budget per address and one per secret for unlocking, shared by the page and the API: two doors, one lock.
unlock_ip_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_UNLOCK_IP"], scope="unlock-ip", methods=["POST"]
)
unlock_secret_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_UNLOCK_SECRET"], scope="unlock-secret", key_func=_unlock_limits_key, methods=["POST"]
)


@web.route("/view/<secret_id:unique_id>", methods=["GET", "POST"])
@unlock_ip_limit
@unlock_secret_limit
def view_secret(unique_id: str):
    """GET (and HEAD) shows only the password form and writes nothing; POST unlocks."""
    _abort_unless_openable(unique_id)
    form = UnlockForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("view_secret.html", form=form), status
    clock = current_app.config["CLOCK"]
    match vault.unlock(db.session, _keys(), _policy(), unique_id, form.password.data, clock, _visitor()):
        case vault.Unlocked(content, secret):
            current_app.logger.info("secret %s unlocked", secret.id)
            return render_template("view_secret.html", form=None, secret=secret, content=content, title=_title_of(secret))
        case vault.WrongPassword(left):
            form.password.errors.append(
                f"That password isn't right. {left} {'try' if left == 1 else 'tries'} left before the secret is destroyed."
            )
            return render_template("view_secret.html", form=form), 403
        case outcome:
            _abort_for(outcome)


@web.get("/.well-known/security.txt")
def security_txt():
    """RFC 9116 contact details for reporting vulnerabilities."""
    expires = (_now() + timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"Contact: {current_app.config['SECURITY_CONTACT']}", f"Expires: {expires}"]
    if current_app.config["SECURITY_POLICY_URL"]:
        lines.append(f"Policy: {current_app.config['SECURITY_POLICY_URL']}")
    lines.append("Preferred-Languages: en")
    return Response("\n".join(lines) + "\n", mimetype="text/plain")


@web.get("/healthz")
@limiter.exempt
def healthz():
    """Liveness: the process answers; the database is not touched."""
    return jsonify(status="ok")


@web.get("/readyz")
@limiter.exempt
def readyz():
    """Readiness: the database answers `SELECT 1`; 503 (never a 500) when it does not."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("readiness check: the database is unreachable")
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok")


# --- API -------------------------------------------------------------------------------------------------------------


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def _api_user() -> User | None:
    """Return the caller: a live Bearer token's owner (the token in g.api_token), else the signed-in user.

    Resolved once per request: the rate limit keys on the same answer the route acts on.
    """
    if "api_caller" not in g:
        g.api_token = _live_api_token(_bearer_token())
        if g.api_token is not None:
            g.api_caller = g.api_token.user
        elif _bearer_token() is None and current_user.is_authenticated:
            g.api_caller = current_user._get_current_object()
        else:
            g.api_caller = None
    return g.api_caller


def _live_api_token(token: str | None) -> ApiToken | None:
    """Return the unexpired token row for `token`, noting when it was last used (at most once a minute)."""
    if not token:
        return None
    row = db.session.execute(db.select(ApiToken).filter_by(token_hash=token_digest(token))).scalar_one_or_none()
    now = _now()
    if row is None or row.is_expired(now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= timedelta(minutes=1):
        row.last_used_at = now
        db.session.commit()
    return row


def api_auth_required(view):
    """Require a caller; cookie callers must also send the CSRF token, token callers need none."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        user = _api_user()
        if user is None:
            raise ApiError(401, "unauthorized", "Sign in or send an API token.")
        if _bearer_token() is None and request.method not in {"GET", "HEAD"}:
            csrf.protect()  # a cookie is ambient, a bearer token is not
        g.api_user = user
        return view(*args, **kwargs)

    wrapped.requires_auth = True  # read by the OpenAPI document
    return wrapped


def _api_limit_key() -> str:
    """Key the API budget on the resolved caller (token, else user, else network), never on a header it can vary."""
    user = _api_user()
    if g.api_token is not None:
        return f"api:token:{g.api_token.id}"
    return f"api:user:{user.id}" if user is not None else "api:network:" + _client_network()


@api.before_request
def _refuse_token_in_query():
    """A token in a URL lands in logs, proxies and histories: refuse it before anything reads it."""
    if QUERY_TOKEN_NAMES & {name.lower() for name in request.args}:
        raise ApiError(400, "token_in_query", "Send the token in the Authorization header, never in the URL.")


# --- API: strict input, one declared schema per request, also published in the OpenAPI document -------------------

JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "null": type(None)}
TYPE_WORDS = {"string": "a string", "integer": "a whole number", "boolean": "true or false", "null": "null"}


def _field_rule(field) -> dict:
    """Describe one WTForms field as JSON Schema: type, choices, range and length, taken from its validators."""
    rule = {"type": "integer" if isinstance(field, IntegerField) else "string", "description": field.label.text}
    if isinstance(field, SelectField):
        rule["enum"] = [choice.value for choice in field.choices]
    for validator in field.validators:
        if isinstance(validator, NumberRange):
            rule.update({"minimum": validator.min, "maximum": validator.max})
        elif isinstance(validator, Length):
            rule["minLength"] = max(validator.min, 0)
            if validator.max != -1:
                rule["maxLength"] = validator.max
    if field.default is not None:
        rule["default"] = field.default
    return rule


def _form_schema(form_class: type[FlaskForm], only: tuple[str, ...], all_optional: bool = False, **extra: dict) -> dict:
    """Return the JSON Schema of a request that carries `only` these fields of `form_class`, plus `extra` ones.

    The form stays the one place where a field's rules live. A field the form requires is required here (unless
    `all_optional`, for a partial update, which has no defaults either); an optional one also accepts null.
    """
    form = form_class(formdata=None, meta={"csrf": False})
    properties, required = {}, []
    for name in only:
        field = form[name]
        rule = _field_rule(field)
        if all_optional:
            rule.pop("default", None)
        if not any(isinstance(v, InputRequired | DataRequired) for v in field.validators):
            rule["type"] = [rule["type"], "null"]
            if "enum" in rule:
                rule["enum"].append(None)
        else:
            rule.pop("default", None)  # the page pre-fills it; a request must send it
            required += [] if all_optional else [name]
            if rule["type"] == "string":
                rule["minLength"] = max(rule.get("minLength", 0), 1)
        properties[name] = rule
    properties.update(extra)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _expires_in_rule() -> dict:
    settings = current_app.config
    return {
        "type": ["integer", "null"],
        "minimum": int(settings["SECRET_MIN_EXPIRY"].total_seconds()),
        "maximum": int(settings["SECRET_MAX_EXPIRY"].total_seconds()),
        "description": "Seconds until it expires: the simple way to set an expiry (instead of expiration).",
    }


def _create_body() -> dict:
    """POST /api/secrets: the create form's names (confirm optional), plus expires_in."""
    fields = ("title", "content", "password", "confirm", "expiration", "custom_amount", "custom_unit", "blur_level", "max_views")
    schema = _form_schema(ApiCreateSecretForm, fields, expires_in=_expires_in_rule())
    # The form checks an amount against its unit; this bound only keeps it a number that can be multiplied safely.
    most = int(current_app.config["SECRET_MAX_EXPIRY"].total_seconds() // 60)
    schema["properties"]["custom_amount"].update(minimum=1, maximum=most)
    schema["properties"]["content"]["description"] += f" (up to {current_app.config['SECRET_MAX_CONTENT_BYTES']} bytes of UTF-8)"
    return schema


def _edit_body() -> dict:
    """PATCH /api/secrets/<id>: any of the settings; max_views null means unlimited."""
    return _form_schema(ApiEditSecretForm, ("title", "blur_level", "max_views"), all_optional=True, expires_in=_expires_in_rule())


def _unlock_body() -> dict:
    """POST /api/secrets/<id>/unlock: the password the recipient was given."""
    return _form_schema(UnlockForm, ("password",))


def _page_query(**extra: dict) -> dict:
    per_page = current_app.config["SECRETS_PER_PAGE"]
    properties = {
        "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1, "description": "Past the last page: empty."},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": per_page, "description": "Per page."},
        **extra,
    }
    return {"type": "object", "properties": properties, "required": [], "additionalProperties": False}


def _list_query() -> dict:
    """GET /api/secrets: a page of the caller's secrets, optionally of one status."""
    statuses = [status.value for status in SecretStatus]
    return _page_query(status={"type": "string", "enum": statuses, "description": "Only secrets in this state."})


def _no_query() -> dict:
    return {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


def _rule_problem(value, rule: dict) -> str | None:
    """Return what is wrong with `value` under `rule` (type, enum, minimum/maximum, min/maxLength), or None."""
    types = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
    # Exact types: true is not 1, and 1.0 or "1" is not an integer.
    if not any(type(value) is JSON_TYPES[name] for name in types):
        return f"Must be {' or '.join(TYPE_WORDS[name] for name in types)}."
    if value is None:
        return None
    if "enum" in rule and value not in rule["enum"]:
        return "Must be one of: " + ", ".join(str(choice) for choice in rule["enum"] if choice is not None) + "."
    if isinstance(value, int) and not rule.get("minimum", value) <= value <= rule.get("maximum", value):
        return f"Must be from {rule.get('minimum', 'any')} to {rule.get('maximum', 'any')}."
    if isinstance(value, str) and not rule.get("minLength", 0) <= len(value) <= rule.get("maxLength", len(value)):
        return "Must not be empty." if not value else f"Use at most {rule['maxLength']} characters."
    return None


def _validated(values: dict, schema: dict, what: str) -> dict:
    """Check `values` against `schema` and return them.

    :raise ApiError: 422 naming the fields the schema does not declare; 400 naming each field that is missing or wrong.
    """
    unknown = sorted(name[:64] for name in set(values) - set(schema["properties"]))
    if unknown:
        fields = {name: ["This is not one of the accepted names."] for name in unknown}
        raise ApiError(422, "unknown_fields", f"Unknown {what}: {', '.join(unknown)}.", fields=fields)
    errors = {name: ["This field is required."] for name in schema["required"] if name not in values}
    for name, value in values.items():
        if problem := _rule_problem(value, schema["properties"][name]):
            errors[name] = [problem]
    if errors:
        raise ApiError(400, "invalid_fields", "Some fields need fixing.", fields=errors)
    return values


def _typed_query(schema: dict) -> dict:
    """Return the query string's values over the declared defaults, whole numbers as ints where the schema says integer."""
    values = {name: rule["default"] for name, rule in schema["properties"].items() if "default" in rule}
    for name, items in request.args.lists():
        rule = schema["properties"].get(name, {})
        value = items[-1]
        if rule.get("type") == "integer" and re.fullmatch(r"[0-9]{1,18}", value):
            value = int(value)
        values[name] = value
    return values


def api_operation(summary: str, responses: dict[int, str], body=None, query=_no_query):
    """Declare an API operation beside its route: its OpenAPI description, and the schemas its input must pass.

    `body` and `query` are functions returning JSON Schema: the view gets the checked values as `body` / `query`
    arguments, and the OpenAPI document publishes the very same schemas.
    """

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            checked = _validated(_typed_query(query()), query(), "query parameters")
            if query is not _no_query:
                kwargs["query"] = checked
            if body is not None:
                kwargs["body"] = _validated(_json_body(), body(), "fields")
            return view(*args, **kwargs)

        wrapped.openapi = {"summary": summary, "responses": responses, "body": body, "query": query}
        return wrapped

    return decorate


def _api_form(form_class: type[FlaskForm], values: dict) -> FlaskForm:
    """Run checked JSON values through the page's form, so the API validates exactly as the pages do.

    :raise ApiError: 400 naming the fields the form refuses.
    """
    fields = MultiDict({name: str(value) for name, value in values.items() if value is not None})
    form = form_class(formdata=fields, meta={"csrf": False})
    if not form.validate():
        raise ApiError(400, "invalid_fields", "Some fields need fixing.", fields=form.errors)
    return form


# --- API: JSON shapes ------------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _secret_json(secret: Secret) -> dict:
    unavailable = _is_unavailable(secret)
    active = secret.status == SecretStatus.ACTIVE and not unavailable
    link = _share_link(secret) if active else None
    return {
        "id": secret.unique_id,
        "title": _title_of(secret),
        "unavailable": UNAVAILABLE_TITLE if unavailable else None,
        "status": secret.status,
        "created_at": _iso(secret.created_at),
        "expires_at": _iso(secret.expires_at),
        "max_views": secret.max_views,
        "view_count": secret.view_count,
        "failed_attempts": secret.failed_attempts,
        "blur_level": secret.blur_level,
        "url": link,
        "link": link,
        "qr_png_url": _public_url("api.api_secret_qr_png", unique_id=secret.unique_id) if active else None,
        "qr_svg_url": _public_url("api.api_secret_qr_svg", unique_id=secret.unique_id) if active else None,
    }


def _event_json(access: AccessEvent) -> dict:
    return {"at": _iso(access.at), "outcome": access.outcome, "user_agent": access.user_agent, "ip_prefix": access.ip_prefix}


def _paginate(statement, query: dict):
    return db.paginate(statement, page=query["page"], per_page=query["per_page"], max_per_page=MAX_PER_PAGE, error_out=False)


def _page_json(page) -> dict:
    return {"page": page.page, "per_page": page.per_page, "pages": page.pages, "total": page.total}


# --- API: routes ---------------------------------------------------------------------------------------------------


@api.get("/openapi.json")
@api_operation("This document", responses={200: "OpenApiDocument"})
def openapi_document():
    """The OpenAPI 3.1 description of every API route, built from the routes' own declarations."""
    return jsonify(_openapi_document())


@api.get("/docs")
@api_operation("This API, as a page to read", responses={200: "DocsPage"})
def docs():
    """The API reference, rendered from the OpenAPI document by our own template."""
    return render_template("api_docs.html", spec=_openapi_document())


@api.get("/auth/check")
@api_auth_required
@api_operation("Check the token or session", responses={200: "AuthCheck"})
def auth_check():
    """Tell a script whether its session or token is signed in, and as whom."""
    user = g.api_user
    return jsonify(success=True, user={"id": user.id, "username": user.username, "email": user.email})


@api.get("/secrets")
@api_auth_required
@api_operation("List your secrets", responses={200: "SecretPage"}, query=_list_query)
def api_list_secrets(query: dict):
    """The caller's secrets, newest first; never their content."""
    _expire_owned_due(g.api_user.id)
    statement = db.select(Secret).where(Secret.owner_id == g.api_user.id).order_by(Secret.id.desc())
    if query.get("status"):
        statement = statement.where(Secret.status == query["status"])
    page = _paginate(statement, query)
    return jsonify(success=True, secrets=[_secret_json(secret) for secret in page.items], **_page_json(page))


@api.post("/secrets")
@api_auth_required
@create_limit
@api_operation("Create a secret", responses={201: "SecretCreated", 503: "Busy"}, body=_create_body)
def api_create_secret(body: dict):
    """Create a secret; answer 201 with its link, QR code addresses and expiry, and its address in Location."""
    secret = _create_secret(_api_form(ApiCreateSecretForm, body), g.api_user)
    location = url_for("api.api_get_secret", unique_id=secret.unique_id)
    return jsonify(success=True, secret=_secret_json(secret)), 201, {"Location": location}


@api.get("/secrets/<secret_id:unique_id>")
@api_auth_required
@api_operation("Read a secret's state", responses={200: "Secret"})
def api_get_secret(unique_id: str):
    """One of the caller's secrets: its state and link, never its content."""
    _expire_owned_due(g.api_user.id)
    return jsonify(success=True, secret=_secret_json(get_owned_secret_or_404(unique_id, g.api_user)))


@api.patch("/secrets/<secret_id:unique_id>")
@api_auth_required
@api_operation("Change a secret's settings", responses={200: "Secret", 410: "Gone"}, body=_edit_body)
def api_edit_secret(unique_id: str, body: dict):
    """Change the title, blur, expiry (expires_in) or views of an active secret, as its edit page does."""
    secret = get_active_owned_secret(unique_id, g.api_user)
    current = {"title": _title_of(secret), "blur_level": secret.blur_level, "max_views": secret.max_views}
    form = _api_form(ApiEditSecretForm, {**current, **body})
    clock = current_app.config["CLOCK"]
    match vault.edit(db.session, _keys(), _policy(), unique_id, g.api_user.id, _changes(form), clock, _visitor()):
        case vault.Saved(saved):
            current_app.logger.info("secret %s edited by API", saved.id)
            return jsonify(success=True, secret=_secret_json(get_owned_secret_or_404(unique_id, g.api_user)))
        case vault.ViewsTaken(view_count):
            fields = {"max_views": [f"It has been viewed {view_count} times: choose more, or null for unlimited."]}
        case vault.ExpiryTooLate(latest):
            longest = _duration_text(_policy().max_lifetime)
            fields = {"expires_in": [f"A secret lasts at most {longest} from its creation: until {_iso(latest)}."]}
        case _:
            raise ApiError(410, "gone", GONE_MESSAGE)
    raise ApiError(400, "invalid_fields", "Some fields need fixing.", fields=fields)


@api.delete("/secrets/<secret_id:unique_id>")
@api_auth_required
@api_operation("Delete a secret", responses={200: "SecretDeleted"})
def api_delete_secret(unique_id: str):
    """Delete one of the caller's secrets: its content is erased at once; an ended record is removed."""
    secret = get_owned_secret_or_404(unique_id, g.api_user)
    match vault.delete(db.session, _policy(), unique_id, g.api_user.id, _now()):
        case vault.Deleted():
            db.session.refresh(secret)
            return jsonify(success=True, secret=_secret_json(secret))
        case vault.Removed():
            return jsonify(success=True, secret=None)
        case _:
            abort(404)


@api.get("/secrets/<secret_id:unique_id>/events")
@api_auth_required
@api_operation("List a secret's access events", responses={200: "EventPage"}, query=_page_query)
def api_secret_events(unique_id: str, query: dict):
    """Who tried to open the secret, newest first: time, outcome, browser and network (never the full address)."""
    secret = get_owned_secret_or_404(unique_id, g.api_user)
    statement = db.select(AccessEvent).where(AccessEvent.secret_id == secret.id).order_by(AccessEvent.id.desc())
    page = _paginate(statement, query)
    return jsonify(success=True, events=[_event_json(access) for access in page.items], **_page_json(page))


@api.get("/secrets/<secret_id:unique_id>/qr.png")
@api_auth_required
@api_operation("The share link's QR code, PNG", responses={200: "QrPng", 410: "Gone"})
def api_secret_qr_png(unique_id: str):
    """The QR code of an active secret's link, as PNG."""
    return _qr_png_response(get_active_owned_secret(unique_id, g.api_user))


@api.get("/secrets/<secret_id:unique_id>/qr.svg")
@api_auth_required
@api_operation("The share link's QR code, SVG", responses={200: "QrSvg", 410: "Gone"})
def api_secret_qr_svg(unique_id: str):
    """The QR code of an active secret's link, as SVG."""
    return _qr_svg_response(get_active_owned_secret(unique_id, g.api_user))


@api.post("/secrets/<secret_id:unique_id>/unlock")
@unlock_ip_limit
@unlock_secret_limit
@api_operation(
    "Open a secret with its password",
    responses={200: "Unlocked", 403: "WrongPassword", 410: "Gone", 503: "Busy"},
    body=_unlock_body,
)
def api_unlock_secret(unique_id: str, body: dict):
    """The recipient's door, no sign-in: counts a view, spends tries, destroys and wipes exactly as the page does."""
    return _api_unlock(unique_id, body["password"])


def _api_unlock(unique_id: str, password: str):
    """Unlock through the vault and answer its outcome: the one place where the API unlocks.

    Unlocked 200; wrong password 403 with tries_left; gone, destroyed or its key removed 410; every try left still
    in flight 429; busy 503 with Retry-After.
    """
    if vault.openable(db.session, _keys(), unique_id, _now()) is None:
        abort(404)  # an id that never existed is a 404, as on the page
    clock = current_app.config["CLOCK"]
    match vault.unlock(db.session, _keys(), _policy(), unique_id, password, clock, _visitor()):
        case vault.Unlocked(content, secret):
            current_app.logger.info("secret %s unlocked through the API", secret.id)
            unlocked = {"title": _title_of(secret), "content": content, "view_count": secret.view_count}
            unlocked |= {"max_views": secret.max_views, "expires_at": _iso(secret.expires_at)}
            return jsonify(success=True, secret=unlocked)
        case vault.WrongPassword(left):
            message = f"That password isn't right. {left} {'try' if left == 1 else 'tries'} left before the secret is destroyed."
            raise ApiError(403, "wrong_password", message, tries_left=left)
        case vault.Destroyed():
            raise ApiError(410, "destroyed", DESTROYED_MESSAGE)
        case vault.Busy(retry_after):
            message = "Too many secrets are being unlocked right now. Try again shortly."
            raise ApiError(503, "busy", message, {"Retry-After": str(retry_after)})
        case vault.TriesInFlight():
            raise ApiError(429, "attempts_in_flight", "Other tries on this secret are still running. Try again shortly.")
        case vault.Gone() | vault.KeyRetired():
            raise ApiError(410, "gone", GONE_MESSAGE)


# API calls are limited per token, per signed-in user, or per network for strangers; CSRF is checked in api_auth_required.
limiter.limit(lambda: current_app.config["RATELIMIT_API"], key_func=_api_limit_key)(api)
csrf.exempt(api)


# --- API: the OpenAPI document ---------------------------------------------------------------------------------------


def _error_schema() -> dict:
    reasons = sorted({*ERROR_REASONS.values(), "invalid_json", "invalid_fields", "token_in_query", "wrong_password",
                      "destroyed", "attempts_in_flight", "unavailable"})  # fmt: skip
    details = {
        "code": {"type": "integer", "description": "The HTTP status."},
        "reason": {"type": "string", "enum": reasons, "description": "What went wrong, for scripts."},
        "message": {"type": "string", "description": "What went wrong, for people."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Per field: what to fix (invalid_fields), or the names not accepted (unknown_fields).",
        },
        "tries_left": {"type": "integer", "minimum": 0, "description": "wrong_password: tries before the secret is destroyed."},
    }
    error = {"type": "object", "properties": details, "required": ["code", "reason", "message"]}
    return {**_envelope(False, error=error), "description": "Every refused call answers this, with the HTTP status as code."}


def _envelope(success: bool, **properties) -> dict:
    return {
        "type": "object",
        "properties": {"success": {"const": success}, **properties},
        "required": ["success", *properties],
    }


def _openapi_schemas() -> dict:
    moment = {"type": "string", "format": "date-time"}
    nullable_link = {"type": ["string", "null"], "format": "uri"}
    secret = {
        "type": "object",
        "properties": {
            "id": {
                "type": ["string", "null"],
                "pattern": f"^{SECRET_ID_RE}$",
                "description": "The share id (part of the link); null when the server key that sealed it was removed.",
            },
            "title": {"type": "string"},
            "unavailable": {"type": ["string", "null"], "description": "Why the secret cannot be opened, or null."},
            "status": {"type": "string", "enum": [status.value for status in SecretStatus]},
            "created_at": moment,
            "expires_at": moment,
            "max_views": {"type": ["integer", "null"], "description": "null: unlimited until it expires."},
            "view_count": {"type": "integer"},
            "failed_attempts": {"type": "integer"},
            "blur_level": {"type": "integer"},
            "url": {**nullable_link, "description": "The share link; null once the secret has ended."},
            "link": {**nullable_link, "deprecated": True, "description": "The same as url."},
            "qr_png_url": {**nullable_link, "description": "The QR code as PNG (sign-in needed); null once ended."},
            "qr_svg_url": {**nullable_link, "description": "The QR code as SVG (sign-in needed); null once ended."},
        },
    }
    secret["required"] = list(secret["properties"])
    event = {
        "type": "object",
        "properties": {
            "at": moment,
            "outcome": {"type": "string", "enum": [outcome.value for outcome in AccessOutcome]},
            "user_agent": {"type": "string"},
            "ip_prefix": {"type": "string", "description": "The network (/24 or /48), never the full address."},
        },
        "required": ["at", "outcome", "user_agent", "ip_prefix"],
    }
    paging = {name: {"type": "integer", "minimum": 0} for name in ("page", "per_page", "pages", "total")}
    unlocked = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "content": {"type": "string"},
            "view_count": {"type": "integer"},
            "max_views": {"type": ["integer", "null"]},
            "expires_at": moment,
        },
        "required": ["title", "content", "view_count", "max_views", "expires_at"],
    }
    user = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "username": {"type": "string"}, "email": {"type": "string"}},
        "required": ["id", "username", "email"],
    }
    return {
        "Secret": secret,
        "Event": event,
        "Error": _error_schema(),
        "SecretEnvelope": _envelope(True, secret={"$ref": "#/components/schemas/Secret"}),
        "DeletedEnvelope": _envelope(True, secret={"oneOf": [{"$ref": "#/components/schemas/Secret"}, {"type": "null"}]}),
        "SecretPage": _envelope(True, secrets={"type": "array", "items": {"$ref": "#/components/schemas/Secret"}}, **paging),
        "EventPage": _envelope(True, events={"type": "array", "items": {"$ref": "#/components/schemas/Event"}}, **paging),
        "Unlocked": _envelope(True, secret=unlocked),
        "AuthCheck": _envelope(True, user=user),
    }


def _json_response(description: str, schema: str, headers: dict | None = None) -> dict:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    response = {"description": description, "content": content}
    if headers:
        response["headers"] = headers
    return response


def _openapi_responses() -> dict:
    retry_after = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
    location = {"Location": {"description": "The new secret's API address.", "required": True, "schema": {"type": "string"}}}
    any_body = {"schema": {}}
    return {
        "Secret": _json_response("The secret's state (never its content).", "SecretEnvelope"),
        "SecretCreated": _json_response("Created.", "SecretEnvelope", location),
        "SecretDeleted": _json_response(
            "An active secret is deleted and erased (its record stays until the purge); an ended record is removed "
            "(secret is null).",
            "DeletedEnvelope",
        ),
        "SecretPage": _json_response("A page of secrets, newest first; past the last page it is empty.", "SecretPage"),
        "EventPage": _json_response("A page of access events, newest first.", "EventPage"),
        "Unlocked": _json_response("The right password: the content, and one view counted.", "Unlocked"),
        "AuthCheck": _json_response("The caller is signed in.", "AuthCheck"),
        "OpenApiDocument": {"description": "This document.", "content": {"application/json": {"schema": {"type": "object"}}}},
        "DocsPage": {"description": "The API reference as a web page.", "content": {"text/html": any_body}},
        "QrPng": {"description": "The QR code of the share link.", "content": {"image/png": any_body}},
        "QrSvg": {"description": "The QR code of the share link.", "content": {"image/svg+xml": any_body}},
        "BadRequest": _json_response(
            "invalid_fields (with fields), invalid_json, token_in_query (a token in the URL), or bad_request "
            "(a malformed query, or a missing CSRF header on a cookie session).",
            "Error",
        ),
        "Unauthorized": _json_response("unauthorized: no valid token or session.", "Error"),
        "WrongPassword": _json_response("wrong_password, with tries_left.", "Error"),
        "NotFound": _json_response("not_found: no such secret, or not yours.", "Error"),
        "Gone": _json_response("gone: expired, used up or deleted; destroyed: too many wrong passwords.", "Error"),
        "TooLarge": _json_response("too_large: the body or the query is over the limit.", "Error"),
        "UnsupportedMediaType": _json_response("unsupported_media_type: the body must be application/json.", "Error"),
        "UnknownFields": _json_response("unknown_fields: names this request does not accept (listed in fields).", "Error"),
        "RateLimited": _json_response("rate_limited, or attempts_in_flight on an unlock.", "Error", retry_after),
        "Busy": _json_response(
            "busy: too many unlocks at once (with Retry-After).",
            "Error",
            retry_after,
        ),
    }


def _openapi_operation(endpoint: str, view, rule, method: str) -> dict:
    declared = view.openapi
    auth = getattr(view, "requires_auth", False)
    responses = {400: "BadRequest", 413: "TooLarge", 422: "UnknownFields", 429: "RateLimited", **declared["responses"]}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": f"^{SECRET_ID_RE}$"}}
        for name in sorted(rule.arguments)
    ]
    if rule.arguments:
        responses[404] = "NotFound"
    query = declared["query"]()
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": rule_} for name, rule_ in query["properties"].items()
    ]
    operation = {
        "operationId": endpoint.removeprefix("api."),
        "summary": declared["summary"],
        "description": (view.__doc__ or "").strip(),
        "parameters": parameters,
    }
    if declared["body"]:
        body = declared["body"]()
        operation["requestBody"] = {
            "required": True,
            "description": (declared["body"].__doc__ or "").strip(),
            "content": {"application/json": {"schema": body}},
        }
        responses[415] = "UnsupportedMediaType"
    if auth:
        responses[401] = "Unauthorized"
        cookie = {"cookieAuth": []} if method == "GET" else {"cookieAuth": [], "csrfToken": []}
        operation["security"] = [{"bearerAuth": []}, cookie]
    else:
        operation["security"] = []
    operation["responses"] = {
        str(status): {"$ref": f"#/components/responses/{name}"} for status, name in sorted(responses.items())
    }
    return operation


def _openapi_document() -> dict:
    """Describe every API route from its own declaration (`api_operation`), with the shared shapes."""
    paths: dict[str, dict] = {}
    for rule in current_app.url_map.iter_rules():
        view = current_app.view_functions[rule.endpoint]
        if not hasattr(view, "openapi") or not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _openapi_operation(rule.endpoint, view, rule, method)
    schemes = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token from the Account page."},
        "cookieAuth": {
            "type": "apiKey",
            "in": "cookie",
            "name": current_app.config["SESSION_COOKIE_NAME"],
            "description": "A signed-in browser session.",
        },
        "csrfToken": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRFToken",
            "description": "With a session, anything but GET also needs the page's CSRF token (its csrf-token meta tag).",
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SecureShare API",
            "version": "1",
            "description": "Create, list, change and delete your secrets, and open one with its password.",
        },
        "servers": [{"url": current_app.config["PUBLIC_BASE_URL"] or request.host_url.rstrip("/")}],
        "paths": paths,
        "components": {"schemas": _openapi_schemas(), "responses": _openapi_responses(), "securitySchemes": schemes},
    }


# --- error handlers -----------------------------------------------------------------------------------------------------


def _handle_http_error(error: HTTPException):
    if isinstance(error, SecurityError):
        # An untrusted Host: no URL can be built for it, so answer without the page template.
        return Response(UNTRUSTED_HOST_PAGE, status=400, mimetype="text/html")
    if isinstance(error, CSRFError):
        return _error_response(400, CROSS_SITE_MESSAGE if isinstance(error, CrossSiteRequest) else EXPIRED_FORM_MESSAGE)
    headers = error.get_headers() if error.code in {405, 429, 503} else None
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


def _configure_keys(app: Flask) -> vault.KeyRing:
    """Take SECRET_KEY and ENCRYPTION_KEYS from the environment (in development, generate them once); build the ring.

    :raise SystemExit: when a key is missing in production, or ENCRYPTION_KEYS is malformed or names an id twice.
    """
    settings = app.config
    missing = [name for name in ("SECRET_KEY", "ENCRYPTION_KEYS") if not settings[name]]
    if missing and settings["REQUIRE_KEYS"]:
        raise SystemExit(f"SecureShare will not start: set {' and '.join(missing)} in the environment (see README).")
    # It signs sessions, CSRF tokens and device cookies: a short one could be guessed offline from any of them.
    if settings["REQUIRE_KEYS"] and len(settings["SECRET_KEY"]) < MIN_SECRET_KEY_LENGTH:
        raise SystemExit(
            f"SecureShare will not start: SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters "
            "(python3 -c 'import secrets; print(secrets.token_hex(32))')."
        )
    key_dir = settings["KEY_DIR"]
    if not settings["SECRET_KEY"]:
        make = lambda: secrets.token_hex(32)  # noqa: E731
        settings["SECRET_KEY"] = _read_or_create(Path(key_dir) / "secret_key", make) if key_dir else make()
    if not settings["ENCRYPTION_KEYS"]:
        keys = _read_or_create(Path(key_dir) / "encryption_keys", _new_encryption_key) if key_dir else _new_encryption_key()
        settings["ENCRYPTION_KEYS"] = keys
    cost = vault.KdfCost(settings["KDF_MEMORY_KIB"], settings["KDF_ITERATIONS"], settings["KDF_LANES"])
    try:
        return vault.KeyRing.parse(
            settings["ENCRYPTION_KEYS"], cost, settings["KDF_MAX_CONCURRENT"], settings["KDF_WAIT_SECONDS"]
        )
    except vault.KeyRingError as error:
        raise SystemExit(f"SecureShare will not start: {error}") from None


def _policy_from(settings: dict) -> vault.Policy:
    return vault.Policy(
        max_failed_attempts=settings["SECRET_MAX_FAILED_ATTEMPTS"],
        max_lifetime=settings["SECRET_MAX_EXPIRY"],
        retention=settings["SECRET_RETENTION"],
        purge_batch=settings["PURGE_BATCH_SIZE"],
        qr_dir=Path(settings["QR_DIR"]),
    )


def _refuse_to_start(what_to_fix: str) -> NoReturn:
    raise SystemExit(f"SecureShare will not start: {what_to_fix}")


def _check_public_base_url(value: str | None) -> None:
    """Refuse a PUBLIC_BASE_URL that is not scheme://host[:port]: every link would be built on it."""
    if not value:
        return
    parts = urlsplit(value)
    extra = parts.path or parts.query or parts.fragment or parts.netloc.startswith(".")
    if parts.scheme not in {"http", "https"} or not HOST_RE.fullmatch(parts.netloc) or extra:
        _refuse_to_start("PUBLIC_BASE_URL must be the site's address with scheme and host, like https://secrets.example.org.")


def _check_trusted_hosts(hosts: list[str] | None) -> None:
    for host in hosts or []:
        if not HOST_RE.fullmatch(host):
            _refuse_to_start(f"TRUSTED_HOSTS must list host names like secrets.example.org (or host:port), not {host!r}.")


def _proxy_count(value) -> int:
    """Return PROXY_COUNT as a number of hops, refusing anything but 0 to MAX_PROXY_COUNT."""
    written = str(value).strip()
    if not written.isascii() or not written.isdigit() or int(written) > MAX_PROXY_COUNT:
        _refuse_to_start(f"PROXY_COUNT must be how many reverse proxies stand in front, 0 to {MAX_PROXY_COUNT}.")
    return int(written)


def _check_settings(app: Flask) -> None:
    """Refuse settings that would make every request fail or trust the wrong header, with one line saying why."""
    settings = app.config
    _check_public_base_url(settings["PUBLIC_BASE_URL"])
    _check_trusted_hosts(settings["TRUSTED_HOSTS"])
    settings["PROXY_COUNT"] = _proxy_count(settings["PROXY_COUNT"])


def _configure_proxy(app: Flask) -> None:
    """Trust exactly PROXY_COUNT hops of X-Forwarded-For/-Proto/-Host, so a client cannot forge them."""
    if hops := app.config["PROXY_COUNT"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def _warn_about_per_process_limits(app: Flask) -> None:
    # Not refused: one worker on one host is a valid deployment, and the 5-try limit per secret lives in the
    # database; but with several workers or hosts every budget would multiply (SECURITY.md).
    if app.config["WARN_PER_PROCESS_LIMITS"] and app.config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        app.logger.warning(
            "rate limits are counted per process (memory://): set RATELIMIT_STORAGE_URI=redis://... "
            "when running several workers or hosts"
        )


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
    # The vault logs its lifecycle steps on its own logger: same handlers, same redaction.
    vault.log.handlers[:] = app.logger.handlers
    vault.log.setLevel(logging.INFO)
    vault.log.propagate = False
    werkzeug_logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, _RequestIdFilter) for f in werkzeug_logger.filters):
        werkzeug_logger.addFilter(_RequestIdFilter())


def _register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db)
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
    app.extensions["secureshare"] = {"hasher": hasher, "dummy_hash": hasher.hash(secrets.token_urlsafe(16))}


@login_manager.user_loader
def _load_user(session_token: str) -> User | None:
    """Resolve a session or remember cookie to the user of a live session; a session past its limits ends here.

    Ended sessions have no row, so no cookie (copied, remembered or replayed) brings one back.
    """
    user_session = db.session.execute(
        db.select(UserSession).filter_by(token_hash=token_digest(session_token))
    ).scalar_one_or_none()
    if user_session is None:
        return None
    if not user_session.is_live(_now(), _session_limits(user_session.remember)[1]):
        _end_sessions(UserSession.id == user_session.id)
        g.session_ended = True
        return None
    g.user_session = user_session
    user = user_session.user
    user.session_token = session_token
    return user


def _before_request():
    g.request_id = secrets.token_hex(8)
    if request.endpoint == "static":
        _refuse_qr_folder(request.view_args["filename"])
        return None  # static files need none of the rest
    if request.endpoint in PROBE_ENDPOINTS or request.routing_exception is not None:
        return None  # probes need none of this; a routing error is answered as it is
    _reject_malformed_input()
    return _enforce_session_lifetime()


def _refuse_qr_folder(filename: str) -> None:
    """:raise 404: for any spelling of a path into static/qrcodes (./, x/../, %2e): QR codes go to their owner only."""
    if posixpath.normpath(filename).lstrip("/").split("/")[0] == "qrcodes":
        abort(404)


def _enforce_session_lifetime():
    """Count activity on a live session; tell the person whose session just ran out (the loader ended it)."""
    if current_user.is_authenticated:
        _touch_session(g.user_session, _now())
        return None
    if not g.get("session_ended"):
        return None
    session.clear()
    after_this_request(_forget_remember_cookie)
    flash("You were signed out to keep your account safe. Please sign in again.", "info")
    if _wants_json():
        return _error_response(401, "Session expired. Sign in again.")
    back = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("web.login", next=back))


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
    app.register_error_handler(ApiError, _api_error_response)
    app.register_error_handler(Exception, _handle_unexpected_error)
    app.context_processor(_template_context)


def _template_context() -> dict:
    return {
        "now": _now(),
        "relative_time": relative_time,
        "title_of": _title_of,
        "is_unavailable": _is_unavailable,
        "share_link": _share_link,
        "SecretStatus": SecretStatus,
        "unlock_form_token": unlock_form_token,
    }


def _predates_migrations() -> bool:
    """Tell whether the database was made by init-db before migrations existed: tables, but no alembic_version."""
    tables = set(inspect(db.engine).get_table_names())
    return "user" in tables and "alembic_version" not in tables


def _register_commands(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db():
        """Bring the database up to the newest schema by running the migrations (safe to run again)."""
        try:
            if _predates_migrations():
                flask_migrate.stamp(revision=FIRST_REVISION)
                click.echo(f"Found tables made before migrations: recorded them as revision {FIRST_REVISION}, data kept.")
            flask_migrate.upgrade()
        except OperationalError as error:  # unreachable, wrong credentials: the driver's words, never the URL
            raise click.ClickException(f"The database could not be migrated: {error.orig}") from None
        click.echo("Database ready.")

    @app.cli.command("purge")
    def purge():
        """Expire due secrets, delete records past retention, erase them on disk (run it every minute; any host may)."""
        now = _now()
        report = vault.purge(db.session, app.policy, now)
        click.echo(f"Expired {report.expired}, purged {report.purged}. Ended {_end_stale_sessions(now)} stale sessions.")
        if report.tries_given_back:
            click.echo(f"Gave back the tries held on {report.tries_given_back} secrets by workers that stopped mid-unlock.")

    keys = AppGroup("keys", help="Server keys: what each still protects, and moving labels to the newest.")

    @keys.command("status")
    def keys_status():
        """Per key id: the live secrets it protects and when the last ends, the labels and the two-factor keys it seals."""
        two_factor = _two_factor_keys_by_key_id()
        for use in vault.key_usage(db.session, app.keys, _now()):
            state = "newest" if use.key_id == app.keys.newest_id else "configured" if use.configured else "NOT configured"
            last = f", the last ends {use.last_ends:%Y-%m-%d %H:%M} UTC" if use.last_ends else ""
            click.echo(
                f"{use.key_id} ({state}): {use.live_secrets} live secrets{last}; labels of {use.labels} records; "
                f"two-factor keys of {two_factor.pop(use.key_id, 0)} accounts"
            )
        for key_id, accounts in two_factor.items():  # named by two-factor keys alone: a removed key
            click.echo(f"{key_id} (NOT configured): 0 live secrets; labels of 0 records; two-factor keys of {accounts} accounts")

    @keys.command("rewrap")
    def keys_rewrap():
        """Re-seal every title and share id copy under the newest key (content moves at its next right unlock)."""
        moved, stuck = vault.rewrap(db.session, app.keys)
        click.echo(f"Re-sealed the labels of {moved} records under {app.keys.newest_id}; {stuck} need a removed key.")
        moved, stuck = _rewrap_totp_keys()
        click.echo(f"Re-sealed {moved} two-factor keys under {app.keys.newest_id}; {stuck} need a removed key.")

    app.cli.add_command(keys)


def create_app(config_class=None) -> Flask:
    """Build the SecureShare app from `config_class`, or the class APP_CONFIG names (development by default)."""
    if config_class is None:
        name = os.environ.get("APP_CONFIG", "development")
        if name not in CONFIGS:
            raise SystemExit(f"SecureShare will not start: APP_CONFIG must be one of {', '.join(CONFIGS)}.")
        config_class = CONFIGS[name]
    app = SecureShare(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(config_class)
    app.config.setdefault("CLOCK", utcnow)
    _check_settings(app)  # first: nothing is generated or written for settings that cannot work
    app.keys = _configure_keys(app)
    app.policy = _policy_from(app.config)
    _configure_hosts(app)
    _configure_logging(app)
    _warn_about_per_process_limits(app)
    _configure_proxy(app)
    app.url_map.converters["secret_id"] = SecretIdConverter
    _register_handlers(app)  # first: bad input is refused before CSRF or rate limits read the form
    _register_extensions(app)
    _register_commands(app)
    app.register_blueprint(web)
    app.register_blueprint(api)
    return app


app = create_app()

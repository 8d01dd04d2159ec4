"""SecureShare settings: one class per environment, chosen by APP_CONFIG, values from the environment and `.env`."""

import os
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

# gunicorn never reads .env by itself, so read it before any class below looks at os.environ.
load_dotenv()

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _env_list(name: str) -> list[str] | None:
    """Return a comma-separated environment variable as a list, or None when it is unset or blank."""
    items = [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    return items or None


def _env_int(name: str, default: int) -> int:
    """Return an integer environment variable, or `default` when it is unset."""
    return int(os.environ.get(name, default))


class Config:
    """Settings shared by every environment."""

    # Keys: None here means "the factory decides" (generate in development, refuse in production).
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    ENCRYPTION_KEYS = os.environ.get("ENCRYPTION_KEYS") or None
    KEY_DIR = INSTANCE_DIR

    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'secureshare.db'}"
    # Database errors must not carry row values (hashes, sealed data) into logs.
    SQLALCHEMY_ENGINE_OPTIONS = {"hide_parameters": True}
    PUBLIC_BASE_URL = (os.environ.get("PUBLIC_BASE_URL") or "").rstrip("/") or None
    TRUSTED_HOSTS = _env_list("TRUSTED_HOSTS")
    # Kept as written: create_app checks it and refuses to start with a clear line, not a traceback here.
    PROXY_COUNT = os.environ.get("PROXY_COUNT") or "0"

    LOG_FILE = BASE_DIR / "logs" / "app.log"

    # Hostile input: bodies and multipart forms have hard ceilings; no automatic OPTIONS handlers.
    MAX_CONTENT_LENGTH = 256 * 1024
    MAX_FORM_MEMORY_SIZE = 256 * 1024
    MAX_FORM_PARTS = 50
    PROVIDE_AUTOMATIC_OPTIONS = False

    # CSRF tokens live as long as the session, whose idle and absolute limits the server enforces; an hourly
    # expiry would only turn a slow recipient's unlock into an error page.
    WTF_CSRF_TIME_LIMIT = None
    # Flask-WTF's strict mode demands a same-origin Referer over https, which our Referrer-Policy may withhold;
    # app.py checks Sec-Fetch-Site and Origin instead (SECURITY.md, "CSRF and the referrer").
    WTF_CSRF_SSL_STRICT = False
    # guards.guard_request checks the token itself, after the malformed-input checks, so Flask-WTF's hook stays off.
    WTF_CSRF_CHECK_DEFAULT = False

    # Sessions and cookies.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = timedelta(days=14)
    SESSION_IDLE_TIMEOUT = timedelta(minutes=_env_int("SESSION_IDLE_MINUTES", 60))
    SESSION_ABSOLUTE_LIFETIME = timedelta(hours=_env_int("SESSION_ABSOLUTE_HOURS", 12))
    # "Keep me signed in": the session lasts REMEMBER_COOKIE_DURATION (at most 14 days) and still ends after this
    # long without a visit; the server enforces both, whatever the cookies say.
    REMEMBERED_SESSION_IDLE_TIMEOUT = timedelta(days=_env_int("REMEMBERED_SESSION_IDLE_DAYS", 7))
    # OWASP "device cookie": a browser that signed in to an account keeps its own sign-in budget for it.
    DEVICE_COOKIE_NAME = "device"
    DEVICE_COOKIE_DURATION = timedelta(days=180)

    # Account passwords: argon2-cffi's RFC 9106 low-memory profile (64 MiB, 3 passes, 4 lanes).
    PASSWORD_HASH_MEMORY_KIB = 65536
    PASSWORD_HASH_TIME_COST = 3
    PASSWORD_HASH_PARALLELISM = 4

    # Secret encryption: Argon2id key derivation per secret; never below the OWASP floor (19 MiB, 2 passes).
    KDF_MEMORY_KIB = _env_int("KDF_MEMORY_KIB", 65536)
    KDF_ITERATIONS = _env_int("KDF_ITERATIONS", 2)
    KDF_LANES = 1
    KDF_MAX_CONCURRENT = _env_int("KDF_MAX_CONCURRENT", 2)
    KDF_WAIT_SECONDS = _env_int("KDF_WAIT_SECONDS", 10)

    # Secrets.
    SECRET_MAX_CONTENT_BYTES = 64 * 1024
    SECRET_MIN_EXPIRY = timedelta(minutes=_env_int("SECRET_MIN_EXPIRY_MINUTES", 5))
    SECRET_MAX_EXPIRY = timedelta(days=_env_int("SECRET_MAX_EXPIRY_DAYS", 30))
    SECRET_MAX_FAILED_ATTEMPTS = _env_int("SECRET_MAX_FAILED_ATTEMPTS", 5)
    # Instance policies (docs/configuration.md; shown on /admin): views a new secret starts with (0: unlimited) and the
    # most it may have (0: up to 100, or unlimited); active secrets per account (0: no limit); two-factor for everyone.
    SECRET_DEFAULT_VIEWS = _env_int("SECRET_DEFAULT_VIEWS", 1)
    SECRET_MAX_VIEWS = _env_int("SECRET_MAX_VIEWS", 0)
    ACTIVE_SECRETS_PER_USER = _env_int("ACTIVE_SECRETS_PER_USER", 0)
    REQUIRE_TWO_FACTOR = os.environ.get("REQUIRE_TWO_FACTOR") or "false"
    # Sharing without an account: off unless `on`; smaller and shorter than an account's secrets, few per network.
    ANONYMOUS_SHARING = os.environ.get("ANONYMOUS_SHARING") or "off"
    ANONYMOUS_MAX_CONTENT_BYTES = _env_int("ANONYMOUS_MAX_CONTENT_KB", 8) * 1024
    ANONYMOUS_MAX_EXPIRY = timedelta(hours=_env_int("ANONYMOUS_MAX_EXPIRY_HOURS", 24))
    RATELIMIT_ANONYMOUS = os.environ.get("RATELIMIT_ANONYMOUS") or "3 per hour; 10 per day"
    SECRET_RETENTION = timedelta(days=_env_int("SECRET_RETENTION_DAYS", 30))
    PURGE_BATCH_SIZE = 5000  # records deleted per statement and commit: fewer, larger commits purge faster
    SECRETS_PER_PAGE = 20
    # Attached files: the create forms (page and API) take up to FILE_MAX_BYTES of files in all, at most
    # FILE_MAX_COUNT of them, sealed as they stream in; every other form keeps MAX_CONTENT_LENGTH. Checked at start.
    FILE_MAX_BYTES = os.environ.get("FILE_MAX_BYTES") or str(25 * 1024 * 1024)
    FILE_MAX_COUNT = os.environ.get("FILE_MAX_COUNT") or "10"
    # A recipient's download links work this long after the unlock; a used-up secret's files are kept as long.
    FILE_LINK_MINUTES = 15

    # Rate limits (Flask-Limiter); memory by default, Redis in production.
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    # Several deployments (or test runs) can share one Redis under different prefixes.
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX") or "secureshare"
    RATELIMIT_LOGIN = "10 per minute; 30 per hour; 100 per day"
    RATELIMIT_REGISTER = "5 per hour"
    RATELIMIT_EMAIL_CHANGE = "5 per hour"
    RATELIMIT_CREATE = "30 per hour"
    # Settable so a load or race test can reach the database guard behind them; the 5-try limit per secret
    # is enforced by the database whatever these say.
    RATELIMIT_UNLOCK_IP = os.environ.get("RATELIMIT_UNLOCK_IP") or "20 per minute; 100 per hour"
    RATELIMIT_UNLOCK_SECRET = os.environ.get("RATELIMIT_UNLOCK_SECRET") or "10 per minute"
    RATELIMIT_API = "120 per minute"
    # Asking for a password reset, per network and per spelling typed (never per account: that would say it exists).
    RATELIMIT_PASSWORD_RESET = "5 per hour; 20 per day"  # noqa: S105 - a rate, not a password
    RATELIMIT_VERIFICATION_RESEND = "3 per hour"

    # Email (Flask-Mailman). With MAIL_SERVER set, mail goes out by SMTP; without it development prints each message
    # to the terminal, tests keep them in memory and production sends none. startup.check_mail turns the words below
    # into numbers and booleans, or refuses to start saying which one is wrong.
    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = os.environ.get("MAIL_PORT") or None  # 465 with MAIL_USE_SSL, 587 with MAIL_USE_TLS, else 25
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS") or "false"  # STARTTLS
    MAIL_USE_SSL = os.environ.get("MAIL_USE_SSL") or "false"  # TLS from the first byte
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER") or None
    MAIL_CA_FILE = os.environ.get("MAIL_CA_FILE") or None  # extra CA certificates for the SMTP server's
    MAIL_TIMEOUT = _env_int("MAIL_TIMEOUT", 10)
    # Without a mail server: the console in development (`make run` prints each message and its links).
    MAIL_FALLBACK_BACKEND = "console"
    # required | optional | off; unset: required when MAIL_SERVER is set, optional otherwise (off without any mail).
    EMAIL_VERIFICATION = os.environ.get("EMAIL_VERIFICATION") or None
    PASSWORD_RESET_LIFETIME = timedelta(minutes=30)
    EMAIL_VERIFICATION_LIFETIME = timedelta(hours=48)
    # The outbox: sent and abandoned messages are deleted this long after; a message still failing after
    # OUTBOX_GIVE_UP_HOURS is abandoned (retries back off from 1 minute, doubling, to 1 hour between tries).
    OUTBOX_KEEP_HOURS = _env_int("OUTBOX_KEEP_HOURS", 24)
    OUTBOX_GIVE_UP_HOURS = _env_int("OUTBOX_GIVE_UP_HOURS", 72)
    # Webhooks: never to loopback, private, link-local or reserved addresses unless allowed (internal endpoints).
    WEBHOOK_ALLOW_PRIVATE = os.environ.get("WEBHOOK_ALLOW_PRIVATE") or "false"
    WEBHOOK_CA_FILE = os.environ.get("WEBHOOK_CA_FILE") or None  # extra CA certificates for endpoints'
    WEBHOOK_TIMEOUT = _env_int("WEBHOOK_TIMEOUT", 10)
    WEBHOOKS_PER_ACCOUNT = 5

    # Who may sign up (registration.py): open | domains | invite | closed. ALLOWED_EMAIL_DOMAINS (for `domains`) lists
    # exact domains; `.example.org` or `*.example.org` admits that domain and its subdomains.
    REGISTRATION = os.environ.get("REGISTRATION") or "open"
    ALLOWED_EMAIL_DOMAINS = os.environ.get("ALLOWED_EMAIL_DOMAINS") or ""
    USERS_MAY_INVITE = os.environ.get("USERS_MAY_INVITE") or "false"
    AUDIT_RETENTION_DAYS = _env_int("AUDIT_RETENTION_DAYS", 365)

    SECURITY_CONTACT = os.environ.get("SECURITY_CONTACT") or "mailto:security@example.org"
    SECURITY_POLICY_URL = os.environ.get("SECURITY_POLICY_URL") or None

    HSTS = False
    WARN_PER_PROCESS_LIMITS = False
    REQUIRE_KEYS = False
    REQUIRE_HOSTS = False


# `make run` serves on port 5000, or on `make run PORT=5001`, which it hands on as FLASK_RUN_PORT (the variable
# `flask run --port` reads too).
_RUN_PORT = os.environ.get("FLASK_RUN_PORT") or "5000"


class DevelopmentConfig(Config):
    """Local use: keys are generated once into instance/ so sessions and secrets survive restarts."""

    # The port `make run` serves on; host names are compared without letter case, ports must match.
    TRUSTED_HOSTS = Config.TRUSTED_HOSTS or [f"127.0.0.1:{_RUN_PORT}", f"localhost:{_RUN_PORT}"]


class TestingConfig(Config):
    """Tests: fresh keys per run, an in-memory database, the cheapest hashing the floors allow."""

    TESTING = True
    SECRET_KEY = None
    ENCRYPTION_KEYS = None
    KEY_DIR = None
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    LOG_FILE = None
    TRUSTED_HOSTS = ["localhost", "127.0.0.1"]
    PUBLIC_BASE_URL = None
    RATELIMIT_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    PASSWORD_HASH_MEMORY_KIB = 19456
    PASSWORD_HASH_TIME_COST = 2
    PASSWORD_HASH_PARALLELISM = 1
    KDF_MEMORY_KIB = 19456
    KDF_ITERATIONS = 2
    MAIL_SERVER = None
    MAIL_FALLBACK_BACKEND = "locmem"  # messages kept in memory: app.extensions["mailman"].outbox
    EMAIL_VERIFICATION = "off"  # tests of email verification turn it on


class ProductionConfig(Config):
    """Production: keys must come from the environment; cookies are Secure and carry the __Host- prefix."""

    REQUIRE_KEYS = True
    REQUIRE_HOSTS = True
    KEY_DIR = None
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-session"
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_NAME = "__Host-remember_token"
    DEVICE_COOKIE_NAME = "__Host-device"
    MAIL_FALLBACK_BACKEND = None  # no mail server, no email (and no password reset by email)
    HSTS = True
    WARN_PER_PROCESS_LIMITS = True


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}

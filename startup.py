"""Start-up: settings checked before anything is served, key files, the cores' settings objects, and logging.

Each check refuses to start with one line saying what to fix, never a traceback.
"""

import base64
import ipaddress
import logging
import os
import re
import secrets
import sys
from datetime import timedelta
from logging.handlers import WatchedFileHandler
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from flask import Flask, g, has_request_context
from sqlalchemy.engine import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

import notify
import registration
import vault
from accounts import EmailVerification, Passwords, SessionLimits
from redaction import redact
from schema import utcnow

MIN_SECRET_KEY_LENGTH = 32
MAX_PROXY_COUNT = 5
MAX_REMEMBERED_SESSION = timedelta(days=14)
MAX_VIEWS = 100  # the form's own ceiling
HOST_RE = re.compile(
    r"\.?(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?"
)
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0", ""}
# The From of messages that only the console (`make run`) or the tests' memory receive, when no sender is set.
STAND_IN_SENDER = "SecureShare <secureshare@localhost>"
LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(message)s"


def refuse_to_start(what_to_fix: str) -> NoReturn:
    raise SystemExit(f"SecureShare will not start: {what_to_fix}")


# --- settings -----------------------------------------------------------------------------------------------------


def check_settings(settings: dict) -> None:
    """Refuse settings that would make every request fail or trust the wrong header, with one line saying why."""
    _check_public_base_url(settings["PUBLIC_BASE_URL"])
    _check_trusted_hosts(settings["TRUSTED_HOSTS"])
    settings["PROXY_COUNT"] = _proxy_count(settings["PROXY_COUNT"])
    check_mail(settings)
    settings["REGISTRATION_POLICY"] = registration_policy(settings)
    check_secret_policies(settings)
    if settings["AUDIT_RETENTION_DAYS"] < 1:
        refuse_to_start("AUDIT_RETENTION_DAYS must be a number of days, 1 or more.")
    settings["FILE_MAX_BYTES"] = _whole_number(settings, "FILE_MAX_BYTES", 1, 1024**3, "a number of bytes")
    settings["FILE_MAX_COUNT"] = _whole_number(settings, "FILE_MAX_COUNT", 1, 100, "a number of files")
    settings["FILE_STORAGE_PER_USER"] = _whole_number(
        settings, "FILE_STORAGE_PER_USER", 0, 1024**4, "a number of bytes (0 for no limit)"
    )


def _whole_number(settings: dict, name: str, low: int, high: int, what: str) -> int:
    value = str(settings[name]).strip()
    if not value.isdigit() or not low <= int(value) <= high:
        refuse_to_start(f"{name} must be {what} from {low} to {high}.")
    return int(value)


def check_secret_policies(settings: dict) -> None:
    """Refuse view and secret-count policies that no secret could meet; turn REQUIRE_TWO_FACTOR into a boolean."""
    most = settings["SECRET_MAX_VIEWS"]
    if not 0 <= most <= MAX_VIEWS:
        refuse_to_start(f"SECRET_MAX_VIEWS must be 1 to {MAX_VIEWS}, or 0 for no limit but the form's.")
    if not 0 <= settings["SECRET_DEFAULT_VIEWS"] <= (most or MAX_VIEWS) or (most and not settings["SECRET_DEFAULT_VIEWS"]):
        refuse_to_start(f"SECRET_DEFAULT_VIEWS must be 1 to {most or MAX_VIEWS}" + ("." if most else ", or 0 for unlimited."))
    if settings["ACTIVE_SECRETS_PER_USER"] < 0:
        refuse_to_start("ACTIVE_SECRETS_PER_USER must be a number of secrets, or 0 for no limit.")
    settings["REQUIRE_TWO_FACTOR"] = _yes_or_no(settings, "REQUIRE_TWO_FACTOR")
    settings["ANONYMOUS_SHARING"] = _yes_or_no(settings, "ANONYMOUS_SHARING")
    if not settings["SECRET_MIN_EXPIRY"] <= settings["ANONYMOUS_MAX_EXPIRY"] <= settings["SECRET_MAX_EXPIRY"]:
        refuse_to_start("ANONYMOUS_MAX_EXPIRY_HOURS must lie between the shortest and the longest expiry of a secret.")


def registration_policy(settings: dict) -> registration.RegistrationPolicy:
    """Read REGISTRATION, ALLOWED_EMAIL_DOMAINS and USERS_MAY_INVITE, or refuse to start saying which is wrong."""
    modes = [mode.value for mode in registration.RegistrationMode]
    if settings["REGISTRATION"] not in modes:
        refuse_to_start(f"REGISTRATION must be one of {', '.join(modes)}, not {settings['REGISTRATION']!r}.")
    mode = registration.RegistrationMode(settings["REGISTRATION"])
    try:
        domains = registration.AllowedDomains.parse(settings["ALLOWED_EMAIL_DOMAINS"])
    except registration.DomainListError as error:
        refuse_to_start(str(error))
    if mode == registration.RegistrationMode.DOMAINS and not domains:
        refuse_to_start("REGISTRATION=domains needs ALLOWED_EMAIL_DOMAINS, like example.org or .example.org.")
    # Without confirmed addresses anyone could type one at an allowed domain (check_mail has read it already).
    if mode == registration.RegistrationMode.DOMAINS and settings["EMAIL_VERIFICATION"] != EmailVerification.REQUIRED:
        refuse_to_start("REGISTRATION=domains needs EMAIL_VERIFICATION=required: unconfirmed, any address would do.")
    return registration.RegistrationPolicy(mode, domains, _yes_or_no(settings, "USERS_MAY_INVITE"))


def _check_public_base_url(value: str | None) -> None:
    """Refuse a PUBLIC_BASE_URL that is not scheme://host[:port]: every link would be built on it."""
    if not value:
        return
    parts = urlsplit(value)
    extra = parts.path or parts.query or parts.fragment or parts.netloc.startswith(".")
    if parts.scheme not in {"http", "https"} or not HOST_RE.fullmatch(parts.netloc) or extra:
        refuse_to_start("PUBLIC_BASE_URL must be the site's address with scheme and host, like https://secrets.example.org.")


def _check_trusted_hosts(hosts: list[str] | None) -> None:
    for host in hosts or []:
        if not HOST_RE.fullmatch(host):
            refuse_to_start(f"TRUSTED_HOSTS must list host names like secrets.example.org (or host:port), not {host!r}.")


def _proxy_count(value) -> int:
    """Return PROXY_COUNT as a number of hops, refusing anything but 0 to MAX_PROXY_COUNT."""
    written = str(value).strip()
    if not written.isascii() or not written.isdigit() or int(written) > MAX_PROXY_COUNT:
        refuse_to_start(f"PROXY_COUNT must be how many reverse proxies stand in front, 0 to {MAX_PROXY_COUNT}.")
    return int(written)


def _yes_or_no(settings: dict, name: str) -> bool:
    """Return a true/false setting written as a word (true/false, yes/no, on/off, 1/0), refusing any other."""
    written = str(settings[name]).strip().lower()
    if written not in TRUE_WORDS | FALSE_WORDS:
        refuse_to_start(f"{name} must be true or false, not {settings[name]!r}.")
    return written in TRUE_WORDS


def _readable_file(settings: dict, name: str) -> None:
    if settings[name] and not Path(settings[name]).is_file():
        refuse_to_start(f"{name} must name a file of CA certificates (PEM) that exists, not {settings[name]!r}.")


def _is_this_host(server: str) -> bool:
    try:
        return server == "localhost" or ipaddress.ip_address(server).is_loopback
    except ValueError:
        return False


def check_mail(settings: dict) -> None:
    """Turn the MAIL_*, EMAIL_VERIFICATION and WEBHOOK_* words into values and pick the mail backend, or refuse to start.

    With MAIL_SERVER set mail goes out by SMTP: it needs a sender, both or neither of MAIL_USERNAME and MAIL_PASSWORD,
    and in production TLS (STARTTLS or TLS) unless the server is a relay on this host, and PUBLIC_BASE_URL, since links
    in emails must never be built on a request's Host header (a classic way to steal reset links).
    """
    use_tls, use_ssl = _yes_or_no(settings, "MAIL_USE_TLS"), _yes_or_no(settings, "MAIL_USE_SSL")
    if use_tls and use_ssl:
        refuse_to_start("set MAIL_USE_TLS (STARTTLS, usually port 587) or MAIL_USE_SSL (TLS, usually port 465), not both.")
    settings["MAIL_USE_TLS"], settings["MAIL_USE_SSL"] = use_tls, use_ssl
    port = str(settings["MAIL_PORT"] or (465 if use_ssl else 587 if use_tls else 25)).strip()
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        refuse_to_start(f"MAIL_PORT must be a port number, 1 to 65535, not {settings['MAIL_PORT']!r}.")
    settings["MAIL_PORT"] = int(port)
    _readable_file(settings, "MAIL_CA_FILE")
    _readable_file(settings, "WEBHOOK_CA_FILE")
    settings["WEBHOOK_ALLOW_PRIVATE"] = _yes_or_no(settings, "WEBHOOK_ALLOW_PRIVATE")
    if server := settings["MAIL_SERVER"]:
        _check_smtp(settings, server, use_tls or use_ssl)
    settings["MAIL_BACKEND"] = notify.CheckedSmtpEmailBackend if server else settings["MAIL_FALLBACK_BACKEND"]
    if not server:  # `make run` prints each message: its From line should name a sender, not "None"
        settings["MAIL_DEFAULT_SENDER"] = settings["MAIL_DEFAULT_SENDER"] or STAND_IN_SENDER
    settings["EMAIL_VERIFICATION"] = _email_verification(settings)


def _check_smtp(settings: dict, server: str, encrypted: bool) -> None:
    sender = settings["MAIL_DEFAULT_SENDER"] or ""
    if "@" not in sender or "\n" in sender or "\r" in sender:
        refuse_to_start("set MAIL_DEFAULT_SENDER to the address emails come from, like SecureShare <secrets@example.org>.")
    if bool(settings["MAIL_USERNAME"]) != bool(settings["MAIL_PASSWORD"]):
        refuse_to_start("set both MAIL_USERNAME and MAIL_PASSWORD, or neither.")
    if settings["REQUIRE_KEYS"] and not encrypted and not _is_this_host(server):
        refuse_to_start(
            "MAIL_SERVER needs MAIL_USE_TLS=true (STARTTLS) or MAIL_USE_SSL=true: reset links must not cross the network "
            "in plain text (only a relay on this host may be spoken to without TLS)."
        )
    if settings["REQUIRE_HOSTS"] and not settings["PUBLIC_BASE_URL"]:
        refuse_to_start("set PUBLIC_BASE_URL when MAIL_SERVER is set: links in emails are built on it.")


def _email_verification(settings: dict) -> EmailVerification:
    """EMAIL_VERIFICATION, or its default: required with a mail server, optional with only a stand-in, else off."""
    server, backend = settings["MAIL_SERVER"], settings["MAIL_BACKEND"]
    written = settings["EMAIL_VERIFICATION"] or ("required" if server else "optional" if backend else "off")
    if written not in {mode.value for mode in EmailVerification}:
        refuse_to_start(f"EMAIL_VERIFICATION must be required, optional or off, not {written!r}.")
    if written != "off" and backend is None:
        refuse_to_start(f"EMAIL_VERIFICATION={written} needs a mail server: set MAIL_SERVER (or EMAIL_VERIFICATION=off).")
    return EmailVerification(written)


def trusted_hosts(settings: dict) -> tuple[str, ...] | None:
    """Return the hosts to answer to (host or host:port, any letter case): TRUSTED_HOSTS, else PUBLIC_BASE_URL's;
    None (any host) only where no host is required. Production needs one of the two settings.

    Flask's own check ignores ports and letter case, so it is turned off (TRUSTED_HOSTS None in the config) and
    guards.check_host applies these instead.
    """
    hosts = settings["TRUSTED_HOSTS"] or ([urlsplit(settings["PUBLIC_BASE_URL"]).netloc] if settings["PUBLIC_BASE_URL"] else [])
    if settings["REQUIRE_HOSTS"] and not hosts:
        refuse_to_start("set PUBLIC_BASE_URL or TRUSTED_HOSTS in the environment (see README).")
    settings["TRUSTED_HOSTS"] = None
    return tuple(host.lower() for host in hosts) or None


def configure_proxy(app: Flask) -> None:
    """Trust exactly PROXY_COUNT hops of X-Forwarded-For/-Proto/-Host, so a client cannot forge them."""
    if hops := app.config["PROXY_COUNT"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def keep_sqlite_file_private(settings: dict) -> None:
    """Create a SQLite database file readable by its owner only, and tighten one made before (SQLite's -wal and -shm
    files take the main file's mode); a server database is the operator's to protect."""
    url = make_url(settings["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if not path.parent.is_dir():
        return  # nothing to protect: the database cannot open either, and /readyz says so
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


# --- keys and the cores' settings -------------------------------------------------------------------------------------


def key_ring(settings: dict) -> vault.KeyRing:
    """Take SECRET_KEY and ENCRYPTION_KEYS from the environment (in development, generate them once); build the ring.

    :raise SystemExit: when a key is missing in production, or ENCRYPTION_KEYS is malformed or names an id twice.
    """
    missing = [name for name in ("SECRET_KEY", "ENCRYPTION_KEYS") if not settings[name]]
    if missing and settings["REQUIRE_KEYS"]:
        refuse_to_start(f"set {' and '.join(missing)} in the environment (see README).")
    # It signs sessions, CSRF tokens and device cookies: a short one could be guessed offline from any of them.
    if settings["REQUIRE_KEYS"] and len(settings["SECRET_KEY"]) < MIN_SECRET_KEY_LENGTH:
        refuse_to_start(
            f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters "
            "(python3 -c 'import secrets; print(secrets.token_hex(32))')."
        )
    key_dir = settings["KEY_DIR"]
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _kept_or_new(key_dir, "secret_key", lambda: secrets.token_hex(32))
    if not settings["ENCRYPTION_KEYS"]:
        settings["ENCRYPTION_KEYS"] = _kept_or_new(key_dir, "encryption_keys", _new_encryption_key)
    cost = vault.KdfCost(settings["KDF_MEMORY_KIB"], settings["KDF_ITERATIONS"], settings["KDF_LANES"])
    try:
        slots, wait = settings["KDF_MAX_CONCURRENT"], settings["KDF_WAIT_SECONDS"]
        return vault.KeyRing.parse(settings["ENCRYPTION_KEYS"], cost, slots, wait)
    except vault.KeyRingError as error:
        refuse_to_start(str(error))


def _kept_or_new(key_dir: Path | None, name: str, make) -> str:
    """Return the key kept in `key_dir` (made once, mode 0600), or a fresh one when there is no folder (tests)."""
    if not key_dir:
        return make()
    path = Path(key_dir) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


def _new_encryption_key() -> str:
    return f"k{utcnow():%Y%m%d}:{base64.b64encode(os.urandom(32)).decode()}"


def vault_policy(settings: dict) -> vault.Policy:
    return vault.Policy(
        max_failed_attempts=settings["SECRET_MAX_FAILED_ATTEMPTS"],
        max_lifetime=settings["SECRET_MAX_EXPIRY"],
        retention=settings["SECRET_RETENTION"],
        purge_batch=settings["PURGE_BATCH_SIZE"],
        file_link_window=timedelta(minutes=settings["FILE_LINK_MINUTES"]),
        announce=notify.announce,
    )


def password_hashing(settings: dict) -> Passwords:
    return Passwords(
        settings["PASSWORD_HASH_MEMORY_KIB"], settings["PASSWORD_HASH_TIME_COST"], settings["PASSWORD_HASH_PARALLELISM"]
    )


def session_limits(settings: dict) -> SessionLimits:
    """The sessions' limits; a kept-signed-in session lasts REMEMBER_COOKIE_DURATION, at most 14 days."""
    return SessionLimits(
        lifetime=settings["SESSION_ABSOLUTE_LIFETIME"],
        idle=settings["SESSION_IDLE_TIMEOUT"],
        remembered_lifetime=min(settings["REMEMBER_COOKIE_DURATION"], MAX_REMEMBERED_SESSION),
        remembered_idle=settings["REMEMBERED_SESSION_IDLE_TIMEOUT"],
    )


# --- logging --------------------------------------------------------------------------------------------------------


class RequestLogFilter(logging.Filter):
    """Stamp each record with the request id, and cut share ids out of it (redaction.py: the rule gunicorn uses too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        record.msg, record.args = redact(record.getMessage()), ()
        return True


def configure_logging(app: Flask) -> None:
    """Log to stderr and, when set, to LOG_FILE (0600; WatchedFileHandler: safe to rotate under several workers).

    The app's logger is named "secureshare"; the cores log on its children (secureshare.vault), so their lines
    reach the same handlers through propagation and nothing is re-pointed.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if app.config["LOG_FILE"]:
        handlers.append(_private_file_handler(Path(app.config["LOG_FILE"])))
    for handler in app.logger.handlers:
        handler.close()
    app.logger.handlers.clear()
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(RequestLogFilter())
        app.logger.addHandler(handler)
    app.logger.setLevel(logging.INFO)
    app.logger.propagate = False
    werkzeug_logger = logging.getLogger("werkzeug")  # the development server's request lines
    if not any(isinstance(known, RequestLogFilter) for known in werkzeug_logger.filters):
        werkzeug_logger.addFilter(RequestLogFilter())


class PrivateLogFile(WatchedFileHandler):
    """A log file readable by its owner only (lines name accounts and networks), made so again when a rotation moves
    it away and this handler opens a new one."""

    def _open(self):
        descriptor = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(descriptor, "a", encoding=self.encoding)


def _private_file_handler(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    return PrivateLogFile(path, encoding="utf-8")


def warn_about_per_process_limits(app: Flask) -> None:
    # Not refused: one worker on one host is a valid deployment, and the 5-try limit per secret lives in the
    # database; but with several workers or hosts every budget would multiply (SECURITY.md).
    if app.config["WARN_PER_PROCESS_LIMITS"] and app.config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        app.logger.warning(
            "rate limits are counted per process (memory://): set RATELIMIT_STORAGE_URI=redis://... "
            "when running several workers or hosts"
        )

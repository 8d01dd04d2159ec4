"""Request guards: what every request passes before a view runs, and the headers every answer carries.

Same-origin CSRF, the recipient's form token, malformed input and body limits, and the security headers. One
before-request hook (`guard_request`) runs the checks in a fixed order, so nothing depends on the order in which
extensions registered their own hooks: bad input is refused before CSRF or a rate limit reads the form.
"""

import hashlib
import hmac
import io
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import parse_qsl

from flask import Flask, Request, Response, abort, current_app, g, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadSignature, TimestampSigner
from werkzeug.exceptions import SecurityError

import attachments
import signin
import vault
from api_schema import ApiError, text_is_clean
from extensions import db
from schema import share_id_digest

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# An image opened on its own is shown by the browser's viewer, which styles its own page inline: images get a policy
# that allows that and nothing else (no script, no other source).
IMAGE_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)
# A downloaded file is opened by no page of ours; should a browser render it anyway, it runs nothing and reaches nothing.
DOWNLOAD_CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'; form-action 'none'"
DOWNLOAD_ENDPOINTS = {"web.download_file"}
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
HSTS_VALUE = "max-age=63072000; includeSubDomains"
# Sec-Fetch-Site values of a request our own pages made ("none": typed or bookmarked by the person).
OWN_FETCH_SITES = {"same-origin", "none"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# What a page's form may be sent as; "" is a post with no body (a button with only the session's token is not one).
FORM_MIMETYPES = {"application/x-www-form-urlencoded", "multipart/form-data", ""}
# Probes for a load balancer or orchestrator: no cookies, no rate limits, nothing about the deployment in the body.
PROBE_ENDPOINTS = {"web.healthz", "web.readyz"}
# The forms that take files (up to FILE_MAX_BYTES, sealed as they stream in); every other body keeps its small limit.
UPLOAD_ENDPOINTS = {"web.create_secret", "api.api_create_secret"}
# The recipient's form stays usable this long; after that a reload gives a fresh one.
UNLOCK_FORM_MAX_AGE = timedelta(hours=12)


class CrossSiteRequest(CSRFError):
    """An unsafe request that a browser says came from another site."""


class SameOriginCSRFProtect(CSRFProtect):
    """Flask-WTF's token check, then our own same-origin check in place of its Referer check.

    With Referrer-Policy same-origin a form post carries no Referer to demand, but browsers send Sec-Fetch-Site
    (and Origin), which say where the request came from; SECURITY.md explains the choice.
    """

    def protect(self, apply_exemptions=False):
        super().protect(apply_exemptions)
        if g.get("csrf_valid") and (reason := cross_site_reason()):  # set only where a token was checked
            current_app.logger.info("refused a cross-site request: %s", reason)
            raise CrossSiteRequest()


csrf = SameOriginCSRFProtect()


def csrf_checked_by(check: Callable[[], None]):
    """Give a view its own origin check in place of the session's CSRF token (the recipient's form, the API)."""

    def mark(view):
        view.csrf_check = check
        return view

    return mark


# --- the one before-request hook -------------------------------------------------------------------------------------


def guard_request():
    """Run every check a request must pass, in this order: id, host, the session, malformed input, CSRF."""
    g.request_id = secrets.token_hex(8)
    _check_host()
    _hide_administration()
    if request.endpoint == "static":
        return None  # static files need none of the rest
    if request.endpoint in PROBE_ENDPOINTS or request.routing_exception is not None:
        return None  # probes need none of this; a routing error is answered as it is
    # The session first: counting its activity commits, and an upload's chunks must find nothing else to commit until
    # their secret is created (they wait for it in the open transaction).
    signin.enforce_session_lifetime()
    _prepare_upload()
    _reject_malformed_input()
    _check_csrf()
    return None


def _hide_administration() -> None:
    """:raise 404: for anything under /admin, whatever the method, unless an administrator asks: before routing's own
    answers (a 308 to /admin/, a 405 naming the methods), the CSRF check's 400 and the language menu's 303, which
    would each tell a stranger the pages are there."""
    under_admin = request.path == "/admin" or request.path.startswith("/admin/")
    if under_admin and not (current_user.is_authenticated and current_user.is_admin):
        abort(404)


def _check_csrf() -> None:
    """Check an unsafe request's CSRF token and origin: the session's token, or the view's own check."""
    if request.method not in UNSAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint)
    getattr(view, "csrf_check", csrf.protect)()


def _check_host() -> None:
    """:raise SecurityError: unless the Host header names a trusted host (any letter case) on a trusted port."""
    trusted = current_app.trusted_hosts
    if trusted is not None and not host_is_trusted(request.host, trusted):
        raise SecurityError("untrusted host")


def host_is_trusted(host: str, trusted: tuple[str, ...]) -> bool:
    """Tell whether `host` (name[:port]) matches a trusted entry: the same name in any letter case, or a subdomain of
    a `.name` entry, with the same port written (none for none: browsers leave out the scheme's own port)."""
    name, port = _name_and_port(host.lower())
    for entry in trusted:
        entry_name, entry_port = _name_and_port(entry)
        subdomains = entry_name.startswith(".")
        if port == entry_port and (name == entry_name.lstrip(".") or (subdomains and name.endswith(entry_name))):
            return True
    return False


def _name_and_port(host: str) -> tuple[str, str]:
    name, colon, port = host.rpartition(":")
    return (name, port) if colon and not port.endswith("]") else (host, "")


# --- where a request came from --------------------------------------------------------------------------------------


def _own_origins() -> set[str]:
    """Return this site's origins: the request's scheme and host (as ProxyFix sees them) and PUBLIC_BASE_URL's."""
    origins = {f"{request.scheme}://{request.host}".lower()}
    if public := current_app.config["PUBLIC_BASE_URL"]:
        origins.add(public.lower())
    return origins


def cross_site_reason() -> str | None:
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


# --- the recipient's form token ---------------------------------------------------------------------------------------


class _ClockSigner(TimestampSigner):
    """A timestamp signer that reads the app's clock, so a form's age follows the same 'now' as everything else."""

    def get_timestamp(self) -> int:
        return int(current_app.clock().timestamp())


def _unlock_form_signer(unique_id: str) -> TimestampSigner:
    return _ClockSigner(current_app.secret_key, salt=f"secureshare unlock form|{share_id_digest(unique_id)}")


def unlock_form_token(unique_id: str) -> str:
    """Return the CSRF token of the recipient's form for one secret: signed and bound to the share id, no session.

    An anonymous recipient has nothing to keep, so the page sets no cookie (nor does a link preview or a scanner).
    """
    # A fresh nonce per page, so one form's mark (unlock_form_mark) is never another visitor's.
    return _unlock_form_signer(unique_id).sign(secrets.token_urlsafe(12)).decode()


def unlock_form_mark() -> str:
    """Return a keyed hash of the posted unlock form's token: what the vault keeps to know the form again.

    Keyed with the app's secret, so the database alone cannot tie a mark to a token.
    """
    token = request.form.get("csrf_token", "").encode()
    key = current_app.secret_key
    return hmac.new(key if isinstance(key, bytes) else key.encode(), b"unlock form mark|" + token, hashlib.sha256).hexdigest()


def check_unlock_form() -> None:
    """Refuse an unlock whose form did not come from this secret's page, or that a browser says came from elsewhere.

    The unlock spends no ambient authority (no cookie gives it anything; the password in the body does), so a token
    bound to the share id and a cross-site check stand in for the session-bound token. It runs before the rate
    limits, so a forged post cannot spend the recipient's budget.
    :raise CSRFError: as CSRFProtect would, so the answer is the same page (CrossSiteRequest for another site).
    """
    if reason := cross_site_reason():
        current_app.logger.info("refused a cross-site unlock: %s", reason)
        raise CrossSiteRequest()
    signer = _unlock_form_signer(request.view_args["unique_id"])
    try:
        signer.unsign(request.form.get("csrf_token", ""), max_age=UNLOCK_FORM_MAX_AGE.total_seconds())
    except BadSignature:
        raise CSRFError("The unlock form is missing, stale or for another secret.") from None


# --- malformed input and body limits ----------------------------------------------------------------------------------


def _reject_malformed_input() -> None:
    """Refuse oversized bodies (413), a page form in any other encoding than a form's (415), and invalid UTF-8, NUL
    bytes and lone surrogates in the query or form (400)."""
    if (request.content_length or 0) > request.max_content_length:
        abort(413)  # said up front; Werkzeug would only notice when the body is read
    if request.blueprint != "api" and request.method in UNSAFE_METHODS and request.mimetype not in FORM_MIMETYPES:
        abort(415)  # Flask-WTF would read a JSON body as the form, past every check below
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
        if any(not text_is_clean(key + value) for key, value in pairs):
            abort(400)
    # In multipart forms Werkzeug has already replaced bad bytes by U+FFFD: refuse rather than store a changed text.
    if request.mimetype == "multipart/form-data" and any(
        "\ufffd" in value or not text_is_clean(value) for value in _parsed_form().values()
    ):
        abort(400)


def _parsed_form():
    """Parse the form (files stream into the upload's sink as it goes); a broken file limit is a 413."""
    try:
        return request.form
    except attachments.UploadRefused:
        abort(413)


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


# --- uploads --------------------------------------------------------------------------------------------------------


class UploadRequest(Request):
    """Flask's request, but a file in a form goes to the upload's sink (sealed as it arrives), never to a temporary
    file: Werkzeug's own factory would spool anything over 500 KB to disk, in the clear."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        upload = g.get("upload")
        if upload is None:
            return io.BytesIO()  # a form that takes no files: its body is held to MAX_CONTENT_LENGTH anyway
        return upload.open_file(filename, content_type)


def _prepare_upload() -> None:
    """Give a signed-in owner's create form the files' limit and a sink for its files; refuse a body of unknown size
    (it would have to be held in memory to be measured)."""
    if request.endpoint not in UPLOAD_ENDPOINTS or request.mimetype != "multipart/form-data":
        return
    if not (signin.api_caller() if request.blueprint == "api" else current_user.is_authenticated):
        return  # refused further on; its body keeps the small limit
    if request.content_length is None:
        abort(411)
    settings = current_app.config
    request.max_content_length = settings["FILE_MAX_BYTES"] + settings["MAX_CONTENT_LENGTH"]
    g.upload = attachments.Upload(db.session, settings["FILE_MAX_BYTES"], settings["FILE_MAX_COUNT"])


def finish_upload() -> vault.Attached | None:
    """Seal the last chunks and descriptions of the request's files; None when it brought none.

    :raise attachments.EmptyFile: for a chosen file with no bytes.
    """
    upload = g.get("upload")
    return None if upload is None else upload.finish()


# --- API callers ----------------------------------------------------------------------------------------------------


def api_auth_required(view):
    """Require a caller and hand it to the view as `caller`; a cookie caller must also send the CSRF token."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        caller = signin.api_caller()
        if caller is None:
            raise ApiError(401, "unauthorized", "Sign in or send an API token.")
        if signin.bearer_token() is None and request.method not in {"GET", "HEAD"}:
            csrf.protect()  # a cookie is ambient, a bearer token is not
        return view(*args, caller=caller, **kwargs)

    wrapped.requires_auth = True  # read by the OpenAPI document
    return wrapped


# --- security headers ---------------------------------------------------------------------------------------------------


def install_security_headers(app: Flask) -> None:
    """Set the security headers on every answer: static files may be cached, nothing else is, nor indexed."""
    static = dict(SECURITY_HEADERS)
    if app.config["HSTS"]:
        static["Strict-Transport-Security"] = HSTS_VALUE
    page = {**static, "Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}

    @app.after_request
    def _set_security_headers(response: Response) -> Response:
        response.headers.update(static if request.endpoint == "static" else page)
        if request.endpoint in DOWNLOAD_ENDPOINTS:
            response.headers["Content-Security-Policy"] = DOWNLOAD_CONTENT_SECURITY_POLICY
        elif response.mimetype.startswith("image/"):
            response.headers["Content-Security-Policy"] = IMAGE_CONTENT_SECURITY_POLICY
        if g.get("request_id"):
            response.headers["X-Request-ID"] = g.request_id
        return response

"""Rate limits (Flask-Limiter): sign-in and every other password or code guess, sign-up, creating and unlocking
secrets, and the API. Which budget a guess spends is decided in accounts.py; this wires the budgets to the routes."""

from flask import current_app, g, request
from flask_limiter import Limiter
from flask_login import current_user

import accounts
import signin
from extensions import db
from schema import TokenPurpose, User, canonical


def _client_network() -> str:
    return accounts.client_network(request.remote_addr)


limiter = Limiter(key_func=_client_network)  # one address, or one IPv6 /64


@limiter.request_filter
def _is_page_read() -> bool:
    """Every limit on a page is for its POST (tests/security/test_rate_limits.py holds them to it), so reading a page is
    not checked at all: resolving the POST limits only to drop them was a tenth of the recipient's page. The API's
    limit counts every method, and so does a limit an operator sets on everything (Flask-Limiter's own settings)."""
    settings = current_app.config
    every_request_limited = settings.get("RATELIMIT_DEFAULT") or settings.get("RATELIMIT_APPLICATION")
    return request.method in ("GET", "HEAD") and request.blueprint != "api" and not every_request_limited


def _setting(name: str):
    return lambda: current_app.config[name]


# --- guesses of passwords and codes -------------------------------------------------------------------------------


def _guessed_user() -> User | None:
    """Return the account a password or code is being tried on in this request, when it resolves to one."""
    if "guessed_user" not in g:  # cached: three limits and their exemptions ask for it
        g.guessed_user = _resolve_guessed_user()
    return g.guessed_user


def _resolve_guessed_user() -> User | None:
    if request.endpoint == "web.login":
        return accounts.find_user_for_login(db.session, _typed_login())
    if request.endpoint == "web.login_code":
        pending = signin.pending_login()
        return db.session.get(User, pending["user"]) if pending else None
    if request.endpoint == "web.reset_password":
        link = accounts.find_link(db.session, request.view_args["token"], TokenPurpose.PASSWORD_RESET, current_app.clock())
        return db.session.get(User, link.user_id) if link else None
    return current_user._get_current_object() if current_user.is_authenticated else None


def _typed_login() -> str:
    return (request.form.get("login") or "").strip()


def _guess_account_key() -> str:
    if request.endpoint == "web.login":
        return accounts.login_guess_key(_typed_login(), current_app.secret_key)
    return accounts.account_guess_key(getattr(_guessed_user(), "id", None))


def _trusted_device_nonce() -> str | None:
    return signin.trusted_device_nonce(_guessed_user())


def _from_trusted_device() -> bool:
    return _trusted_device_nonce() is not None


def _from_unknown_device() -> bool:
    return not _from_trusted_device()


def _device_key() -> str:
    return accounts.guess_device_key(_trusted_device_nonce(), current_app.secret_key)


# Password and code guesses (sign-in, its code step and every re-authentication) share one budget per spelling typed
# at sign-in (per account after the password) and per network for unknown devices; a trusted device has a budget of
# its own, so guessers cannot lock the owner out.
# The back-off is the rate string's longer windows (10 a minute, then 30 an hour, then 100 a day). No meta limits:
# Flask-Limiter checks those before `exempt_when`, so unknown devices' breaches would refuse trusted ones too.
_guess_rate = _setting("RATELIMIT_LOGIN")
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


# --- sign-up, password reset, secrets, the API ---------------------------------------------------------------------------

register_limit = limiter.limit(_setting("RATELIMIT_REGISTER"), methods=["POST"])
# Like sign-up, an email change says whether an address has an account: as few answers a day per account as sign-up
# gives a network, whatever device it comes from.
email_change_limit = limiter.limit(
    _setting("RATELIMIT_EMAIL_CHANGE"), key_func=lambda: f"user:{current_user.id}", methods=["POST"]
)


def _reset_login_key() -> str:
    """Key reset requests on the spelling typed, never the account: a 429 must not say that an account exists."""
    return "reset:" + accounts.short_digest(canonical(_typed_login()), current_app.secret_key)


_reset_rate = _setting("RATELIMIT_PASSWORD_RESET")
RESET_REQUEST_LIMITS = (
    limiter.shared_limit(_reset_rate, scope="reset-network", methods=["POST"]),
    limiter.shared_limit(_reset_rate, scope="reset-login", key_func=_reset_login_key, methods=["POST"]),
)


def throttle_reset_requests(view):
    for limit in RESET_REQUEST_LIMITS:
        view = limit(view)
    return view


def _creator_key() -> str:
    """Key per-user limits on the account (by row id, which survives sign-outs), page or API alike; a visitor sharing
    without an account on their network."""
    user = signin.api_caller() if request.path.startswith("/api/") else current_user
    return f"user:{user.id}" if getattr(user, "is_authenticated", False) else "network:" + _client_network()


verification_resend_limit = limiter.limit(
    _setting("RATELIMIT_VERIFICATION_RESEND"), key_func=lambda: f"verify:{current_user.id}", methods=["POST"]
)

# Sharing without an account: a tight budget per network, on top of the one above.
anonymous_create_limit = limiter.shared_limit(
    _setting("RATELIMIT_ANONYMOUS"),
    scope="create-anonymous",
    key_func=_client_network,
    methods=["POST"],
    exempt_when=lambda: current_user.is_authenticated,
)

# One budget for creating secrets, shared by the page and the API.
create_limit = limiter.shared_limit(_setting("RATELIMIT_CREATE"), scope="create-secret", key_func=_creator_key, methods=["POST"])


def _unlock_limits_key() -> str:
    return "unlock:" + accounts.short_digest(request.view_args["unique_id"], current_app.secret_key)


def _a_password_was_tried(_response) -> bool:
    """Spend the secret's budget only on a real try: a body with no password must not lock its recipient out."""
    return g.get("password_tried", False)


def note_a_password_try() -> None:
    """Say that this request tries a password on a secret (its per-secret budget is spent after the answer)."""
    g.password_tried = True


# One budget per address and one per secret for unlocking, shared by the page and the API: two doors, one lock.
unlock_ip_limit = limiter.shared_limit(_setting("RATELIMIT_UNLOCK_IP"), scope="unlock-ip", methods=["POST"])
unlock_secret_limit = limiter.shared_limit(
    _setting("RATELIMIT_UNLOCK_SECRET"),
    scope="unlock-secret",
    key_func=_unlock_limits_key,
    methods=["POST"],
    deduct_when=_a_password_was_tried,
)


def _api_limit_key() -> str:
    """Key the API budget on the resolved caller (token, else user, else network), never on a header it can vary."""
    user = signin.api_caller()
    if (token_id := signin.api_token_id()) is not None:
        return f"api:token:{token_id}"
    return f"api:user:{user.id}" if user is not None else "api:network:" + _client_network()


def limit_the_api(api) -> None:
    """API calls are limited per token, per signed-in user, or per network for strangers."""
    limiter.limit(_setting("RATELIMIT_API"), key_func=_api_limit_key)(api)

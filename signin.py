"""Who is asking: the browser's server-side session (through Flask-Login), its device cookie, an API token, and the
proof of re-authentication that account changes ask for. The decisions live in accounts.py; this is their Flask side."""

from datetime import datetime

from flask import Response, after_this_request, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user

import accounts
import audit
import notify
from extensions import db, login_manager
from forms import ReauthForm
from schema import User, UserSession

PENDING_LOGIN = "pending_login"  # the session entry of a sign-in awaiting its code
PENDING_TOTP_KEY = "pending_totp"  # the session entry holding the key being enrolled, sealed
LOGIN_CODE_SECONDS = 5 * 60


def _now() -> datetime:
    return current_app.clock()


# --- browser sessions ---------------------------------------------------------------------------------------------


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    """Resolve a session or remember cookie to the user of a live session; a session past its limits ends here."""
    found = accounts.resolve_session(db.session, session_token, current_app.session_limits, _now())
    if isinstance(found, accounts.TimedOut):
        g.session_timed_out = True  # Flask-Login calls this loader; enforce_session_lifetime tells the person
        return None
    if found is None or found.user.disabled:  # disabling deletes its sessions; this holds against a race
        return None
    user = found.user
    user.session_token, user.current_session = session_token, found
    return user


def current_session() -> UserSession | None:
    return getattr(current_user, "current_session", None)


def start_session(user: User, remember: bool = False) -> None:
    """Sign `user` in on a brand-new server-side session (nothing from before survives: no fixation)."""
    device = accounts.device_name(request.user_agent.string or "")
    network = accounts.ip_prefix(request.remote_addr, v6_prefix=64)
    token = accounts.open_session(db.session, user, remember, current_app.session_limits, device, network, _now())
    session.clear()
    # Flask-WTF caches this request's CSRF token in g; it belonged to the cleared session, so a page rendered
    # now (the recovery codes after turning two-factor on) must get the new session's token.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    user.session_token = token
    login_user(user, remember=remember)


def restart_sessions(user: User) -> None:
    """End every session of `user` and the trust of every device, this browser's included (a copied cookie dies too),
    then keep this browser signed in and trusted, on a fresh session kept signed in only if this one was."""
    remember = current_session().remember
    accounts.end_sessions(db.session, UserSession.user_id == user.id)
    accounts.forget_devices(db.session, user)
    start_session(user, remember=remember)
    trust_this_device(user)


def sign_out_here() -> None:
    """End this browser's session row and clear its session and remember cookies."""
    if (user_session := current_session()) is not None:
        accounts.end_sessions(db.session, UserSession.id == user_session.id)
    logout_user()
    session.clear()
    after_this_request(forget_remember_cookie)


def forget_remember_cookie(response: Response) -> Response:
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


def enforce_session_lifetime() -> None:
    """Count activity on a live session; tell the person whose session just ran out (the loader ended it).

    The request goes on signed out: a page anyone may see (the home page, a share link) is shown, and one that needs
    an account asks for a sign-in (ask_to_sign_in), as it would have without the old cookie.
    """
    if current_user.is_authenticated:
        accounts.touch_session(db.session, current_session(), _now())
        return
    if not g.get("session_timed_out"):
        return
    session.clear()
    after_this_request(forget_remember_cookie)
    flash(gettext("You were signed out to keep your account safe. Please sign in again."), "info")


@login_manager.unauthorized_handler
def ask_to_sign_in() -> Response:
    """Send a signed-out visitor of an account's page to sign in, and back to this page after (as Flask-Login does)."""
    if not g.get("session_timed_out"):  # a session that just ran out has said so already
        flash(gettext("Please sign in to continue."), "info")
    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))


# --- signing in -------------------------------------------------------------------------------------------------------


def begin_code_step(user: User, remember: bool, target: str | None) -> None:
    """Remember a sign-in whose password was right, until its code comes (at most LOGIN_CODE_SECONDS)."""
    session.clear()
    session[PENDING_LOGIN] = {"user": user.id, "remember": remember, "next": target, "at": _now().timestamp()}


def pending_login() -> dict | None:
    """Return the half-finished sign-in awaiting its code, while it is young enough."""
    pending = session.get(PENDING_LOGIN)
    if not isinstance(pending, dict) or _now().timestamp() - pending.get("at", 0) > LOGIN_CODE_SECONDS:
        return None
    return pending


def drop_pending_login() -> None:
    session.pop(PENDING_LOGIN, None)


def security_event(user: User, kind: str, detail: str = "", **context) -> None:
    """Tell the owner by email and write the audit log, both stored by the commit of the change the caller makes next
    (so a change that fails leaves neither). Never the secret values themselves: a token's name, a device's name."""
    notify.tell(user, kind, **context)
    actor = audit.Actor.of(user, accounts.ip_prefix(request.remote_addr))
    audit.record(db.session, actor, f"security.{kind}", user.username, _now(), detail[:200])


def complete_login(user: User, remember: bool) -> None:
    """Sign `user` in; a browser that never signed in to the account before (or since its devices were forgotten)
    makes a notice to the owner, stored with the sign-in."""
    if trusted_device_nonce(user) is None:
        user_agent, network = request.user_agent.string or "", accounts.ip_prefix(request.remote_addr)
        # The email names the device in the owner's language (notify renders it so); the audit log keeps English.
        security_event(user, "new_device", accounts.device_name(user_agent), user_agent=user_agent, network=network, at=_now())
    user.last_login_at = _now()
    db.session.commit()
    start_session(user, remember=remember)
    trust_this_device(user)
    current_app.logger.info("signed in %s", user.username)


# --- device cookies -------------------------------------------------------------------------------------------------


def _device_cookie() -> accounts.DeviceCookie:
    return accounts.DeviceCookie(current_app.secret_key)


def trusted_device_nonce(user: User | None) -> str | None:
    """Return this browser's device nonce for an account, when it signed in to it since its devices were last forgotten."""
    if user is None:
        return None
    return _device_cookie().nonce_for(request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"]), user)


def trust_this_device(user: User) -> None:
    """Give this browser a device cookie for `user` (OWASP device cookies): it keeps a sign-in budget of its own."""
    settings = current_app.config
    value = _device_cookie().with_account(request.cookies.get(settings["DEVICE_COOKIE_NAME"]), user)

    @after_this_request
    def _set_device_cookie(response: Response) -> Response:
        response.set_cookie(
            settings["DEVICE_COOKIE_NAME"],
            value,
            max_age=int(settings["DEVICE_COOKIE_DURATION"].total_seconds()),
            secure=settings["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        return response


# --- re-authentication and two-factor enrolment ----------------------------------------------------------------------


def reauthenticate(form: ReauthForm, user: User) -> bool:
    """Check the password, then (when two-factor is on) the code; put what failed next to its field."""
    if not current_app.passwords.check(user, form.current_password.data):
        form.current_password.errors.append(gettext("That isn't your current password."))
        return False
    return second_factor_ok(form, user)


def second_factor_ok(form, user: User) -> bool:
    """Check the form's code when two-factor is on (True when it is off); put what failed next to the field."""
    if not user.two_factor_on:
        return True
    if not form.code.data:
        form.code.errors.append(gettext("Enter the code from your authenticator app, or a recovery code."))
        return False
    if not accept_code(user, form.code.data):
        form.code.errors.append(gettext("That code didn't work. Use the newest code, or a recovery code you haven't used."))
        return False
    return True


def accept_code(user: User, code: str) -> bool:
    """Accept an authenticator or recovery code; tell the owner when recovery codes run low."""
    if not accounts.accept_second_factor(db.session, current_app.keys, user, code, _now()):
        return False
    if not accounts.is_recovery_code(code):
        return True
    if (left := accounts.recovery_codes_left(db.session, user)) <= accounts.RECOVERY_CODES_LOW:
        notify.tell(user, "recovery_codes_low", left=left)
        db.session.commit()
    return True


def pending_totp_key() -> str:
    """Return the key this session is enrolling, making one the first time, so a reload shows the same QR code.

    It lives sealed in this session only, bound to its server-side row: another session, or this one after a password
    change, an email change or "sign out everywhere", starts over with a new key, so a thief who saw one learns nothing.
    """
    session_id = current_session().id
    if (key := accounts.open_pending_key(current_app.keys, session_id, session.get(PENDING_TOTP_KEY))) is not None:
        return key
    key = accounts.new_totp_key()
    session[PENDING_TOTP_KEY] = accounts.seal_pending_key(current_app.keys, session_id, key)
    return key


def drop_pending_totp_key() -> None:
    session.pop(PENDING_TOTP_KEY, None)


# --- API callers ------------------------------------------------------------------------------------------------------


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def api_caller() -> User | None:
    """Return the caller: a live Bearer token's owner, else the signed-in user (a cookie session).

    Resolved once per request: the API's rate limit keys on the same answer the route acts on.
    """
    if "api_caller" not in g:
        g.api_token = accounts.resolve_api_token(db.session, bearer_token(), _now())
        if g.api_token is not None:
            g.api_caller = g.api_token.user
        elif bearer_token() is None and current_user.is_authenticated:
            g.api_caller = current_user._get_current_object()
        else:
            g.api_caller = None
    return g.api_caller


def api_token_id() -> int | None:
    api_caller()
    return g.api_token.id if g.api_token is not None else None

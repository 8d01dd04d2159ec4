"""SecureShare's routes: each turns a request into a call of a core (vault.py, accounts.py) and the outcome into a
page or JSON. Also the one outcome-to-answer mapping, the error handlers and create_app."""

import io
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from urllib.parse import quote, urlsplit

import segno
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    after_this_request,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import force_locale, get_locale, gettext, lazy_gettext, ngettext, refresh
from flask_limiter import RateLimitExceeded
from flask_login import current_user, login_required, logout_user
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from sqlalchemy import func, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.routing import BaseConverter

import accounts
import administration
import api_schema
import attachments
import audit
import commands
import forms
import guards
import i18n
import notify
import preferences
import registration
import signin
import startup
import vault
import webhooks
from api_schema import ApiError, api_operation
from config import CONFIGS, INSTANCE_DIR
from extensions import db, login_manager, mail, migrate
from guards import api_auth_required, csrf
from ratelimits import (
    anonymous_create_limit,
    create_limit,
    email_change_limit,
    limit_the_api,
    limiter,
    note_a_password_try,
    register_limit,
    throttle_guesses,
    throttle_reset_requests,
    unlock_ip_limit,
    unlock_secret_limit,
    verification_resend_limit,
)
from schema import (
    SHARE_ID_PATTERN,
    AccessEvent,
    AuditEvent,
    Invitation,
    Secret,
    SecretStatus,
    TokenPurpose,
    User,
    UserSession,
    new_token,
    token_digest,
    utcnow,
)
from timetext import duration_text, exact_time, relative_time, size_text

# Messages are lazy: each is written in the language of the answer it ends up in (the API's is always English).
_ = lazy_gettext
UNAVAILABLE_TITLE = _("Unavailable: its server key was removed")
UNKNOWN_TITLE = _("(title unavailable: its server key was removed)")
DESTROYED_MESSAGE = _("That was the last allowed try, so the secret has been destroyed for safety.")
GONE_MESSAGE = _(
    "This secret is no longer available: it expired, was viewed as often as allowed, was destroyed after too many "
    "wrong passwords, or was deleted."
)
EXPIRED_FORM_MESSAGE = _("This form has expired or came from elsewhere. Reload the page and try again.")
CROSS_SITE_MESSAGE = _(
    "This form was sent from another website, so nothing was changed. Open SecureShare yourself and try again."
)
LIMIT_STORE_DOWN_MESSAGE = _("SecureShare can't take this request right now. Nothing was changed; try again in a minute.")
TWO_FACTOR_REQUIRED_MESSAGE = "This SecureShare requires two-factor sign-in. Set it up on your Account page first."  # API only
UNVERIFIED_MESSAGE = _(
    "Confirm your email address first: open the link we sent to it, or ask for a new one on the Account page."
)
DISABLED_MESSAGE = _("This account is disabled. Ask the administrator of this SecureShare to enable it.")
WRONG_LOGIN_MESSAGE = _("That username or email and password don't match. Check them and try again.")
UNTRUSTED_HOST_PAGE = (
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Bad request · SecureShare</title>"
    "<h1>This address isn't served here</h1><p>Check the link you were given.</p></html>"
)
ERROR_TEXT = {
    400: (_("That request didn't work"), _("Something in it wasn't right. Go back, check the form and try again.")),
    401: (_("Please sign in"), _("You need to be signed in for this.")),
    403: (_("Not allowed"), _("You don't have access to this page.")),
    404: (_("Page not found"), _("There's nothing at this address. Check the link you were given.")),
    405: (_("Not allowed"), _("This page can't be used that way.")),
    410: (
        _("This secret is no longer available"),
        _(
            "It expired, was viewed as many times as allowed, was destroyed after too many wrong passwords, or was "
            "deleted. Ask the sender to share it again."
        ),
    ),
    413: (_("That was too much"), _("What you sent is larger than SecureShare accepts. Shorten it and try again.")),
    415: (_("That request didn't work"), _("This page takes its own form only. Go back and send the form again.")),
    429: (_("Too many tries"), _("Please wait a little, then try again.")),
    500: (_("Something went wrong on our side"), _("Nothing you did caused this. Please try again in a moment.")),
    503: (_("SecureShare is busy"), _("Too many secrets are being unlocked right now. Try again in a few seconds.")),
}
QUERY_TOKEN_NAMES = {"token", "access_token", "api_key"}
QR_MIMETYPES = {"png": "image/png", "svg": "image/svg+xml"}

web = Blueprint("web", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


class SecretIdConverter(BaseConverter):
    """Match share ids only, so a malformed id is a 404 from routing, before any database query."""

    regex = SHARE_ID_PATTERN


class LinkTokenConverter(BaseConverter):
    """Match the 256-bit tokens of links sent by email (schema.new_token), so anything else is a 404 from routing."""

    regex = r"[A-Za-z0-9_-]{43}"


class SecureShare(Flask):
    """Flask, plus what create_app builds once from the settings and hands to every core call."""

    keys: vault.KeyRing
    policy: vault.Policy
    passwords: accounts.Passwords
    session_limits: accounts.SessionLimits
    secret_limits: forms.SecretLimits
    clock: vault.Clock
    trusted_hosts: tuple[str, ...] | None
    request_class = guards.UploadRequest

    @cached_property
    def name(self) -> str:
        # The app's logger is named after this; the cores log on its children (secureshare.vault).
        return "secureshare"


# --- the one outcome-to-answer mapping ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a vault call did not go through, for a person (status, message) and for a script (reason, details)."""

    status: int
    reason: str
    message: str
    details: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


def wrong_password_message(tries_left: int) -> str:
    return ngettext(
        "That password isn't right. %(num)d try left before the secret is destroyed.",
        "That password isn't right. %(num)d tries left before the secret is destroyed.",
        tries_left,
    )


def refusal_of(outcome) -> Refusal:
    """Map a vault outcome that refuses a request to its answer, the same for the pages and the API."""
    match outcome:
        case vault.WrongPassword(left):
            return Refusal(403, "wrong_password", wrong_password_message(left), {"tries_left": left})
        case vault.Destroyed():
            return Refusal(410, "destroyed", DESTROYED_MESSAGE)
        case vault.Busy(retry_after):
            message = gettext("Too many secrets are being unlocked right now. Try again shortly.")
            return Refusal(503, "busy", message, headers={"Retry-After": str(retry_after)})
        case vault.TriesInFlight():
            message = gettext("Other tries on this secret are still running. Try again shortly.")
            return Refusal(429, "attempts_in_flight", message)
        case vault.Gone() | vault.KeyRetired():
            return Refusal(410, "gone", GONE_MESSAGE)
    raise TypeError(f"unexpected outcome {outcome!r}")


class Refused(Exception):
    """A vault outcome that ends the request; answered by _answer_refused as a page or as JSON."""

    def __init__(self, outcome):
        super().__init__(outcome)
        self.refusal = refusal_of(outcome)


# --- helpers: the app's cores, links and QR codes -----------------------------------------------------------------------


def _now() -> datetime:
    return current_app.clock()


def _keys() -> vault.KeyRing:
    return current_app.keys


def _visitor() -> vault.Visitor:
    return vault.Visitor(user_agent=request.user_agent.string or "", ip_prefix=accounts.ip_prefix(request.remote_addr))


def _user() -> User:
    return current_user._get_current_object()


def _title_of(secret: Secret) -> str:
    """Return the title for the owner's pages, even when the content's key was removed (the owner must tell which
    secret to send again); only a removed label key hides it."""
    return vault.title_of(_keys(), secret) or str(UNKNOWN_TITLE)


def _is_unavailable(secret: Secret) -> bool:
    return vault.key_retired(_keys(), secret)


def _with_share_ids(secrets: list[Secret]) -> list[Secret]:
    """Open the share ids of listed secrets for the owner's links (None where its key was removed)."""
    for secret in secrets:
        secret.unique_id = vault.share_id_of(_keys(), secret)
    return secrets


def _expire_owned_due(owner_id: int) -> None:
    """Erase the owner's secrets whose time is up before listing them; a failure here never fails the page."""
    try:
        vault.expire_due(db.session, _now(), owner_id, current_app.policy.announce)
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("could not expire due secrets; the purge will")


def _public_url(endpoint: str, **values) -> str:
    """Return the full URL of `endpoint`: on PUBLIC_BASE_URL when set, else on this (trusted) host."""
    return _public_url_of(url_for(endpoint, **values))


def _public_url_of(path: str) -> str:
    return (current_app.config["PUBLIC_BASE_URL"] or request.host_url.rstrip("/")) + path


def _share_link(secret: Secret) -> str:
    """Return the full link to the secret, the one its QR code holds."""
    return _public_url("web.view_secret", unique_id=secret.unique_id)


def _make_qr(secret: Secret) -> segno.QRCode:
    return segno.make(_share_link(secret), error="m", micro=False)


def _qr_response(secret: Secret, kind: str) -> Response:
    """The secret's QR code as PNG or SVG, drawn in memory on each request: no image of a link is ever on disk, so
    none can outlive its secret. ?download=1 makes it a download."""
    buffer = io.BytesIO()
    _make_qr(secret).save(buffer, kind=kind, scale=8, border=4, **({"xmldecl": False} if kind == "svg" else {}))
    buffer.seek(0)
    return send_file(
        buffer,
        mimetype=QR_MIMETYPES[kind],
        as_attachment=bool(request.args.get("download")),
        download_name=f"secureshare-qr.{kind}",
        max_age=0,
    )


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
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or int(raw) < 1:
        abort(400, gettext("Ask for a page number from 1 to 999999."))
    return int(raw)


def _secret_form(form_class: type[forms.SecretSettingsForm], **kwargs) -> forms.SecretSettingsForm:
    return form_class(limits=current_app.secret_limits, **kwargs)


def _safe_next(target: str | None) -> str | None:
    """Return `target` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in target):
        return None  # a line break cannot be put in a Location header (a 500), and browsers drop tabs from URLs
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


# --- account routes -------------------------------------------------------------------------------------------------


@web.get("/")
def index():
    """Landing page: what SecureShare does, and the way in."""
    return render_template("index.html")


REGISTRATION_REFUSALS = {
    registration.Refusal.CLOSED: _("Sign-up is closed on this SecureShare. Ask its administrator to make you an account."),
    registration.Refusal.INVITATION_NEEDED: _(
        "This SecureShare takes new accounts by invitation only. Ask someone who has an account here for an invitation link."
    ),
    registration.Refusal.INVITATION_DEAD: _(
        "This invitation link doesn't work any more: it was used already, has expired or was withdrawn. "
        "Ask whoever sent it for a new one."
    ),
    registration.Refusal.OTHER_ADDRESS: _("This invitation is for another email address. Use the address it was sent to."),
}


def _registration() -> registration.RegistrationPolicy:
    return current_app.config["REGISTRATION_POLICY"]


@web.route("/register", methods=["GET", "POST"])
@register_limit
def register():
    """Create an account and sign in with it, when the registration mode lets this visitor in."""
    return _sign_up(None)


@web.route("/invite/<link_token:token>", methods=["GET", "POST"])
@register_limit
def accept_invitation(token: str):
    """Create an account with an invitation link: single use, until it expires, perhaps for one address only."""
    return _sign_up(token)


def _sign_up(token: str | None):
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    invitation = registration.find_invitation(db.session, token) if token else None
    refusal = registration.page_refusal(_registration(), invitation, token is not None, _now())
    if refusal is not None:
        status = 410 if refusal == registration.Refusal.INVITATION_DEAD else 403 if request.method == "POST" else 200
        return render_template("register.html", form=None, refusal=str(REGISTRATION_REFUSALS[refusal])), status
    form = forms.RegisterForm()
    username, email = form.username.data, form.email.data
    if (
        form.validate_on_submit()
        and _address_may_sign_up(form, invitation)
        and forms.mark_taken(form, accounts.taken_fields(db.session, username, email))
    ):
        claim = partial(_claim_invitation, invitation) if invitation else None
        match accounts.register(db.session, current_app.passwords, username, email, form.password.data, claim):
            case accounts.Taken(fields):
                forms.mark_taken(form, fields)
            case accounts.NotClaimed():
                message = str(REGISTRATION_REFUSALS[registration.Refusal.INVITATION_DEAD])
                return render_template("register.html", form=None, refusal=message), 410
            case user:
                return _welcome(user, form.time_zone.data)
    return render_template("register.html", form=form, invitation=invitation), 400 if form.errors else 200


def _domains_in_words(domains: registration.AllowedDomains) -> str:
    return domains.described(gettext("%(domain)s or any of its subdomains"), get_locale())


def _address_may_sign_up(form: forms.RegisterForm, invitation) -> bool:
    """Put why the address may not sign up (another invitation's, a domain not allowed) next to it."""
    match registration.address_refusal(_registration(), invitation, form.email.data):
        case None:
            return True
        case registration.Refusal.DOMAIN:
            allowed = _domains_in_words(_registration().domains)
            form.email.errors.append(
                gettext(
                    "Only addresses at %(domains)s can sign up here. Ask an administrator for an invitation.", domains=allowed
                )
            )
        case refusal:
            form.email.errors.append(REGISTRATION_REFUSALS[refusal])
    return False


def _claim_invitation(invitation, user: User) -> bool:
    """Spend the invitation on the new account and record it, in the account's own transaction."""
    if not registration.use_invitation(db.session, invitation, user, _now()):
        return False
    detail = audit.invitation_detail(invitation.id)
    audit.record(db.session, _network_actor(user), "invitation.used", user.username, _now(), detail)
    return True


def _network_actor(user: User) -> audit.Actor:
    return audit.Actor.of(user, accounts.ip_prefix(request.remote_addr))


def _welcome(user: User, time_zone: str | None):
    current_app.logger.info("registered user %s (%s)", user.id, user.username)
    # The language this page was in, and the zone the browser told the form (static/js/app.js).
    user.language, user.time_zone = str(get_locale()), time_zone
    _send_verification_link(user, user.email)
    user.last_login_at = _now()  # signed in from here
    db.session.commit()
    signin.start_session(user)
    signin.trust_this_device(user)
    flash(gettext("Welcome to SecureShare. Your account is ready."), "success")
    return redirect(url_for("web.dashboard"))


@web.post("/account/language")
@login_required
def choose_language():
    """The language menu of a signed-in user: save the choice on the account and show the page again."""
    return _save_foot_menu_pick(forms.LanguageMenuForm(), i18n.LANGUAGE_MENU)


@web.post("/account/theme")
@login_required
def choose_theme():
    """The theme menu of a signed-in user: save the choice on the account and show the page again."""
    return _save_foot_menu_pick(forms.ThemeMenuForm(), preferences.THEME_MENU)


def _save_foot_menu_pick(form: forms.FootMenuForm, menu: preferences.FootMenu):
    if not form.validate_on_submit():
        menu.refuse()
    setattr(_user(), menu.column, form[menu.parameter].data)
    db.session.commit()
    return redirect(_safe_next(form.next.data) or url_for("web.dashboard"), 303)


@web.route("/login", methods=["GET", "POST"])
@throttle_guesses
def login():
    """Sign in with a username or email and a password; with two-factor on, the code comes next."""
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = forms.LoginForm()
    if form.validate_on_submit():
        user = accounts.find_user_for_login(db.session, form.login.data)
        if not current_app.passwords.check(user, form.password.data):
            # Never log what was typed for an unknown account: it may be a password in the wrong box.
            current_app.logger.info("sign-in failed for %s", user.username if user else "an unknown account")
            form.password.errors.append(WRONG_LOGIN_MESSAGE)
        elif user.disabled:  # said only after the right password: a stranger learns nothing about the account
            form.password.errors.append(DISABLED_MESSAGE)
        else:
            return _after_password(user, form.password.data, form.remember.data)
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form, signed_out=request.args.get("signed_out")), status


def _after_password(user: User, password: str, remember: bool):
    """Finish a sign-in whose password was right: at once, or after the code when two-factor is on."""
    if current_app.passwords.needs_rehash(user):
        accounts.set_password(db.session, current_app.passwords, user, password)
    target = _safe_next(request.args.get("next"))
    if user.two_factor_on:
        signin.begin_code_step(user, remember, target)
        return redirect(url_for("web.login_code"))
    signin.complete_login(user, remember)
    return redirect(target or url_for("web.dashboard"))


def _recovery_code_used_message(left: int) -> str:
    return ngettext(
        "You signed in with a recovery code, which now no longer works. You have %(num)d recovery code left: make "
        "new ones on the two-factor page if you are running low.",
        "You signed in with a recovery code, which now no longer works. You have %(num)d recovery codes left: make "
        "new ones on the two-factor page if you are running low.",
        left,
    )


@web.route("/login/code", methods=["GET", "POST"])
@throttle_guesses
def login_code():
    """The second sign-in step: a code from the authenticator app, or a recovery code."""
    pending = signin.pending_login()
    user = db.session.get(User, pending["user"]) if pending else None
    if user is None or not user.two_factor_on or user.disabled:
        signin.drop_pending_login()
        flash(gettext("Please sign in again."), "info")
        return redirect(url_for("web.login"))
    form = forms.LoginCodeForm()
    if form.validate_on_submit():
        if signin.accept_code(user, form.code.data):
            signin.complete_login(user, pending["remember"])
            if accounts.is_recovery_code(form.code.data):
                left = accounts.recovery_codes_left(db.session, user)
                flash(_recovery_code_used_message(left), "warning")
            return redirect(pending["next"] or url_for("web.dashboard"))
        current_app.logger.info("sign-in code refused for %s", user.username)
        form.code.errors.append(
            gettext("That code didn't work. Use the newest code from your app, or a recovery code you haven't used.")
        )
    status = 400 if request.method == "POST" else 200
    return render_template("login_code.html", form=form), status


@web.post("/logout")
@login_required
def logout():
    """Sign out this browser only: its session ends on the server and its session cookies are cleared by name."""
    username = current_user.username
    signin.sign_out_here()
    current_app.logger.info("signed out %s", username)
    response = redirect(url_for("web.login", signed_out=1))
    # Not "cookies": that would also drop the device cookie, which keeps the owner's own sign-in budget.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _password_form(**kwargs) -> forms.ChangePasswordForm:
    return forms.ChangePasswordForm(account_words=[current_user.username, current_user.email], **kwargs)


def _locale_form(**kwargs) -> forms.LanguageAndTimeZoneForm:
    user = _user()
    current = {"language": i18n.language_of(user), "time_zone": i18n.time_zone_of(user)}
    return forms.LanguageAndTimeZoneForm(data=current, prefix="locale", **kwargs)


def _render_account(status: int = 200, **page_forms):
    user = _user()
    defaults = _account_notice_choices(user).columns()
    page_forms = {
        "password_form": _password_form(formdata=None),
        "email_form": forms.ChangeEmailForm(formdata=None, prefix="email"),
        "delete_form": forms.ReauthForm(formdata=None, prefix="delete"),
        "notifications_form": forms.NotificationDefaultsForm(formdata=None, data=defaults, prefix="notify"),
        "locale_form": _locale_form(formdata=None),
        "resend_form": forms.EmptyForm(),
        **page_forms,
    }
    summary = {
        "session_count": len(user.sessions),
        "token_count": len(user.api_tokens),
        "webhook_count": len(webhooks.endpoints_of(db.session, user.id)),
        "recovery_left": accounts.recovery_codes_left(db.session, user),
        "pending_email": accounts.pending_email(db.session, user, _now()),
        "may_invite": _may_invite(user),
    }
    return render_template("account.html", **summary, **page_forms), status


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
    form = _password_form()
    user = _user()
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        signin.security_event(user, "password_changed", tokens_kept=form.keep_tokens.data)
        accounts.set_password(db.session, current_app.passwords, user, form.password.data)
        signin.restart_sessions(user)
        message = gettext("Password changed. Every other device has been signed out.")
        if not form.keep_tokens.data:
            accounts.revoke_api_tokens(db.session, user)
            message = gettext("Password changed. Every other device has been signed out, and your API tokens no longer work.")
        current_app.logger.info("password changed for %s", user.username)
        flash(message, "success")
        return redirect(url_for("web.account"))
    return _render_account(400, password_form=form)


@web.post("/account/email")
@login_required
@email_change_limit
@throttle_guesses
def change_email():
    """Change the email address, checked for uniqueness as at sign-up."""
    form = forms.ChangeEmailForm(prefix="email")
    user = _user()
    if (
        form.validate_on_submit()
        and signin.reauthenticate(form, user)  # first: only the owner may learn whether an address is taken
        and forms.mark_taken(form, accounts.taken_fields(db.session, email=form.email.data))
    ):
        if _verification() != accounts.EmailVerification.OFF:
            return _ask_to_confirm_new_email(user, form.email.data)
        signin.security_event(user, "email_changed", new_address=form.email.data)  # to the old address, before it changes
        if accounts.change_email(db.session, user, form.email.data):
            signin.drop_pending_totp_key()  # a two-factor enrolment starts over with a new key
            current_app.logger.info("email changed for %s", user.username)
            flash(gettext("Email changed."), "success")
            return redirect(url_for("web.account"))
        forms.mark_taken(form, ("email",))  # taken by another account meanwhile
    return _render_account(400, email_form=form)


def _ask_to_confirm_new_email(user: User, new_address: str):
    """Send a link to the new address and a notice to the old one; the address changes when the link is opened."""
    _send_verification_link(user, new_address)
    notify.tell(user, "email_change_requested", new_address=new_address)
    db.session.commit()
    current_app.logger.info("email change asked for %s", user.username)
    hours = duration_text(current_app.config["EMAIL_VERIFICATION_LIFETIME"])
    message = gettext(
        "We sent a link to %(address)s. Your email changes when you open it (within %(lifetime)s).",
        address=new_address,
        lifetime=hours,
    )
    flash(message, "success")
    return redirect(url_for("web.account"))


def _verification() -> accounts.EmailVerification:
    return current_app.config["EMAIL_VERIFICATION"]


def _send_verification_link(user: User, address: str) -> None:
    """Queue a link that confirms `address` for `user` (nothing when verification is off)."""
    if _verification() == accounts.EmailVerification.OFF:
        return
    lifetime = current_app.config["EMAIL_VERIFICATION_LIFETIME"]
    token = accounts.issue_link(db.session, user, TokenPurpose.VERIFY_EMAIL, lifetime, _now(), email=address)
    page = notify.link("web.verify_email", token=token)
    notify.email(address, "verify_email", deliver_by=_now() + lifetime, user=user, link=page, lifetime=lifetime)


@web.post("/account/email/verification")
@login_required
@verification_resend_limit
def resend_verification():
    """Send a fresh link to confirm the account's address (3 an hour)."""
    user = _user()
    if not user.email_verified and _verification() != accounts.EmailVerification.OFF:
        _send_verification_link(user, user.email)
        db.session.commit()
        flash(gettext("We sent a new link to %(address)s. Open it to confirm your address.", address=user.email), "success")
    return redirect(url_for("web.account"))


@web.route("/email/verify/<link_token:token>", methods=["GET", "POST"])
def verify_email(token: str):
    """Confirm an address with the link sent to it: GET asks (mail scanners open links), POST confirms."""
    link = accounts.find_link(db.session, token, TokenPurpose.VERIFY_EMAIL, _now())
    if link is None:
        return render_template("link_dead.html", purpose="verify"), 410
    form = forms.EmptyForm()
    if form.validate_on_submit():
        match accounts.confirm_email(db.session, link, _now()):
            case None:
                return render_template("link_dead.html", purpose="verify"), 410
            case accounts.Taken():
                flash(gettext("That address now belongs to another account, so it can't be yours too."), "error")
            case user:
                current_app.logger.info("email confirmed for %s", user.username)
                flash(gettext("Thank you: %(address)s is confirmed.", address=user.email), "success")
                return redirect(url_for("web.account" if current_user.is_authenticated else "web.login"))
    return render_template("verify_email.html", form=form, address=link.email), 400 if request.method == "POST" else 200


@web.post("/account/notifications")
@login_required
def notification_defaults():
    """Choose what new secrets tell by email (each secret's own choice can differ)."""
    form = forms.NotificationDefaultsForm(prefix="notify")
    if not form.validate_on_submit():
        return _render_account(400, notifications_form=form)
    accounts.set_notice_defaults(db.session, _user(), _notice_choices(form))
    flash(gettext("Saved. New secrets start with these notifications."), "success")
    return redirect(url_for("web.account"))


@web.post("/account/locale")
@login_required
def language_and_time_zone():
    """Choose the account's language and time zone, for its pages, printed cards and emails."""
    form = _locale_form()
    if not form.validate_on_submit():
        return _render_account(400, locale_form=form)
    user = _user()
    user.language, user.time_zone = form.language.data, form.time_zone.data
    db.session.commit()
    refresh()  # the answer below is already in the new language
    flash(gettext("Saved. Pages, cards and emails now use %(language)s and %(zone)s time.",
                  language=i18n.LANGUAGES[user.language], zone=user.time_zone), "success")
    return redirect(url_for("web.account"))


def _notice_choices(form) -> vault.NoticeChoices:
    return vault.NoticeChoices(form.notify_opened.data, form.notify_destroyed.data, form.notify_unopened.data)


# --- account routes: password reset by email ---------------------------------------------------------------------------


@web.route("/password/reset", methods=["GET", "POST"])
@throttle_reset_requests
def request_password_reset():
    """Ask for a reset link. The answer is the same, word for word and in time, whether or not an account matches:
    the look-up and the email happen after it has gone out."""
    if current_user.is_authenticated:
        return redirect(url_for("web.account"))
    form = forms.PasswordResetRequestForm()
    if notify.mail_enabled() and form.validate_on_submit():
        notify.after_response(partial(_mail_reset_link, form.login.data))
        return render_template("password_reset_request.html", form=None)
    return render_template("password_reset_request.html", form=form), 400 if form.errors else 200


def _mail_reset_link(login: str) -> None:
    """After the answer: email a reset link when `login` names an account whose address may get one (at most
    RESET_LINKS_PER_HOUR an hour: more are answered alike, but not sent)."""
    user = accounts.find_user_for_login(db.session, login)
    now = _now()
    if user is None or user.disabled or not accounts.email_usable(user, _verification()):
        return
    if accounts.recent_links(db.session, user, TokenPurpose.PASSWORD_RESET, now) >= accounts.RESET_LINKS_PER_HOUR:
        current_app.logger.info("reset link not sent to %s: enough this hour", user.username)
        return
    lifetime = current_app.config["PASSWORD_RESET_LIFETIME"]
    token = accounts.issue_link(db.session, user, TokenPurpose.PASSWORD_RESET, lifetime, now)
    page = notify.link("web.reset_password", token=token)
    words = {"user": user, "link": page, "lifetime": lifetime}
    message = notify.email(user.email, "password_reset", deliver_by=now + lifetime, **words)
    db.session.commit()
    current_app.logger.info("reset link queued for %s", user.username)
    notify.deliver([message.id])


@web.route("/password/reset/<link_token:token>", methods=["GET", "POST"])
@throttle_guesses
def reset_password(token: str):
    """Choose a new password with a reset link, and a code when two-factor is on. Every session ends, every device is
    forgotten and every API token is revoked; the person then signs in with the new password (OWASP)."""
    link = accounts.find_link(db.session, token, TokenPurpose.PASSWORD_RESET, _now())
    if link is None:
        return render_template("link_dead.html", purpose="reset"), 410
    user = db.session.get(User, link.user_id)
    form = forms.ResetPasswordForm(account_words=[user.username, user.email])
    if form.validate_on_submit() and signin.second_factor_ok(form, user):
        signin.security_event(user, "password_reset_done")
        if not accounts.reset_password(db.session, current_app.passwords, link, form.password.data):
            return render_template("link_dead.html", purpose="reset"), 410
        if current_user.is_authenticated:
            logout_user()  # its session row is gone: this browser signs in afresh, like every other
        session.clear()
        current_app.logger.info("password reset for %s", user.username)
        flash(gettext("Your password is changed and every device is signed out. Sign in with your new password."), "success")
        return redirect(url_for("web.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("password_reset.html", form=form, user=user), status


@web.post("/account/delete")
@login_required
@throttle_guesses
def delete_account():
    """Delete the account and everything it owns."""
    form = forms.ReauthForm(prefix="delete")
    user = _user()
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        vault.delete_account(db.session, user)
        logout_user()
        session.clear()
        after_this_request(signin.forget_remember_cookie)
        current_app.logger.info("deleted user %s", user.id)
        flash(gettext("Your account and all its secrets are deleted."), "success")
        return redirect(url_for("web.index"))
    return _render_account(400, delete_form=form)


def _render_sessions(status: int = 200, everywhere_form: forms.ReauthForm | None = None):
    here = signin.current_session()
    listed = accounts.sessions_of(db.session, current_user.id, here.id)
    everywhere_form = everywhere_form or forms.ReauthForm(formdata=None, prefix="everywhere")
    context = {"sessions": listed, "here": here, "form": forms.EmptyForm(), "everywhere_form": everywhere_form}
    return render_template("account_sessions.html", **context), status


@web.get("/account/sessions")
@login_required
def account_sessions():
    """Where you're signed in: every live session of this account, this one first."""
    return _render_sessions()


@web.post("/account/sessions")
@login_required
@throttle_guesses
def sign_out_everywhere():
    """End every other session and device trust of this account and revoke its API tokens, with the password (and a
    code): a copied session cookie alone must not lock the owner out. This browser stays signed in."""
    user = _user()
    form = forms.ReauthForm(prefix="everywhere")
    if not (form.validate_on_submit() and signin.reauthenticate(form, user)):
        return _render_sessions(400, form)
    signin.restart_sessions(user)
    accounts.revoke_api_tokens(db.session, user)
    current_app.logger.info("signed out everywhere: %s", user.username)
    flash(gettext("Every other device has been signed out, and your API tokens no longer work."), "success")
    return redirect(url_for("web.account_sessions"))


def _change_after_reauthentication(user: User, change, done: str, back: str, **words):
    """Make a change a copied cookie alone must not make, once the password (and a code) is right; until then (or on
    a GET) the confirmation page, with `words` for its heading, lead, form action and button."""
    form = forms.ReauthForm()
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        change()
        flash(done, "success")
        return redirect(back)
    page = render_template("account_confirm.html", form=form, back=back, **words)
    return page, 400 if request.method == "POST" else 200


@web.route("/account/sessions/<int(max=2147483647):session_id>/end", methods=["GET", "POST"])
@login_required
@throttle_guesses
def end_session(session_id: int):
    """Sign out one session of this account: this one at once; another after the password (and a code).

    :raise 404: when it does not exist or belongs to someone else.
    """
    if session_id == signin.current_session().id:
        if request.method == "GET":
            return redirect(url_for("web.account_sessions"))
        signin.sign_out_here()  # guard_request has checked the token
        return redirect(url_for("web.login", signed_out=1))
    user = _user()
    target = accounts.session_of(db.session, user, session_id) or abort(404)
    device = i18n.session_device_words(target.device)
    return _change_after_reauthentication(
        user,
        lambda: accounts.end_sessions(db.session, UserSession.id == target.id),
        gettext("Signed out %(device)s.", device=device),
        url_for("web.account_sessions"),
        heading=gettext("Sign out %(device)s?", device=device),
        lead=gettext("It will have to sign in again with your password."),
        action=url_for("web.end_session", session_id=target.id),
        button=gettext("Sign it out"),
    )


# --- account routes: two-factor -------------------------------------------------------------------------------------


def _totp_qr_data_uri(user: User, key: str) -> str:
    """Return the enrolment QR code as an SVG data: URI (drawn in memory, never written to disk)."""
    return segno.make(accounts.provisioning_uri(key, user.username), error="m", micro=False).svg_data_uri(scale=5, border=4)


def _render_two_factor(status: int = 200, **context):
    user = _user()
    if user.two_factor_on:
        context.setdefault("reauth_form", forms.ReauthForm(formdata=None))
        context.setdefault("disable_form", forms.ReauthForm(formdata=None, prefix="off"))
        recovery_left = accounts.recovery_codes_left(db.session, user)
        return render_template("account_two_factor.html", recovery_left=recovery_left, **context), status
    key = signin.pending_totp_key()
    context.setdefault("form", forms.TwoFactorForm(formdata=None))
    context["otpauth"] = accounts.provisioning_uri(key, user.username)  # opens the authenticator app on the same phone
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
    user = _user()
    if user.two_factor_on:
        return redirect(url_for("web.two_factor"))
    form = forms.TwoFactorForm()
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        key = signin.pending_totp_key()
        step = accounts.matching_totp_step(key, form.code.data.replace(" ", ""), _now())
        if step is None:
            form.code.errors.append(gettext("That code didn't work. Check the app shows SecureShare, then type the newest code."))
        elif not accounts.turn_on_two_factor(db.session, _keys(), user, key, step, _now()):
            return redirect(url_for("web.two_factor"))
        else:
            signin.drop_pending_totp_key()
            signin.restart_sessions(user)
            current_app.logger.info("two-factor on for %s", user.username)
            flash(gettext("Two-factor sign-in is on. Every other device has been signed out."), "success")
            return _render_two_factor(recovery_codes=accounts.new_recovery_codes(db.session, user))
    return _render_two_factor(400, form=form)


@web.post("/account/two-factor/recovery-codes")
@login_required
@throttle_guesses
def new_recovery_codes():
    """Replace the recovery codes (the old ones stop working); shown once."""
    form = forms.ReauthForm()
    user = _user()
    if not user.two_factor_on:
        return redirect(url_for("web.two_factor"))
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        current_app.logger.info("new recovery codes for %s", user.username)
        signin.security_event(user, "recovery_codes_new")
        return _render_two_factor(recovery_codes=accounts.new_recovery_codes(db.session, user))
    return _render_two_factor(400, reauth_form=form)


@web.post("/account/two-factor/disable")
@login_required
@throttle_guesses
def disable_two_factor():
    """Turn two-factor off: the key and the recovery codes are erased."""
    form = forms.ReauthForm(prefix="off")
    user = _user()
    if not user.two_factor_on:
        return redirect(url_for("web.two_factor"))
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        signin.security_event(user, "two_factor_off")
        accounts.turn_off_two_factor(db.session, user)
        current_app.logger.info("two-factor off for %s", user.username)
        flash(gettext("Two-factor sign-in is off. Your recovery codes no longer work."), "success")
        return redirect(url_for("web.account"))
    return _render_two_factor(400, disable_form=form)


# --- account routes: API tokens ---------------------------------------------------------------------------------------


def _render_tokens(status: int = 200, **context):
    context.setdefault("form", forms.CreateTokenForm(formdata=None))
    tokens = accounts.api_tokens_of(db.session, _user())
    return render_template("account_tokens.html", tokens=tokens, **context), status


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
    form = forms.CreateTokenForm()
    user = _user()
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        lifetime = forms.TOKEN_LIFETIMES[form.lifetime.data]
        signin.security_event(user, "api_token_created", form.name.data, name=form.name.data)
        token = accounts.issue_api_token(db.session, user, form.name.data, lifetime, _now())
        current_app.logger.info("API token issued for %s", user.username)
        return _render_tokens(new_api_token=token, new_token_name=form.name.data)
    return _render_tokens(400, form=form)


@web.route("/account/tokens/<int(max=2147483647):token_id>/revoke", methods=["GET", "POST"])
@login_required
@throttle_guesses
def revoke_api_token(token_id: int):
    """Revoke one API token of this account, after the password (and a code).

    :raise 404: when it does not exist or belongs to someone else.
    """
    user = _user()
    token = accounts.api_token_of(db.session, user, token_id) or abort(404)
    name = token.name
    return _change_after_reauthentication(
        user,
        lambda: accounts.revoke_api_token(db.session, token),
        gettext("Token “%(name)s” revoked. Scripts using it now get “not signed in”.", name=name),
        url_for("web.account_tokens"),
        heading=gettext("Revoke the token “%(name)s”?", name=name),
        lead=gettext("Scripts that use it will get “not signed in” from then on. This can't be undone."),
        action=url_for("web.revoke_api_token", token_id=token.id),
        button=gettext("Revoke it"),
    )


# --- account routes: invitations ---------------------------------------------------------------------------------------


def _may_invite(user: User) -> bool:
    return registration.may_invite(_registration(), user)


def _render_invitations(status: int = 200, **context):
    context.setdefault("form", forms.InvitationForm(formdata=None))
    context.setdefault("invitations", registration.invitations_of(db.session, _user()))
    words = {"action_form": forms.EmptyForm(), "may_invite": _may_invite(_user())}
    return render_template("account_invitations.html", **words, **context), status


@web.get("/account/invitations")
@login_required
def account_invitations():
    """Invitation links: make one (shown once), see which were used, withdraw one.

    :raise 404: when this account may not invite (sign-up closed, or only administrators invite).
    """
    if not _may_invite(_user()):
        abort(404)
    return _render_invitations()


@web.post("/account/invitations")
@login_required
@throttle_guesses
def create_invitation():
    """Make an invitation link after re-authentication; only its digest is kept, so it is shown once."""
    user = _user()
    if not _may_invite(user):
        abort(404)
    form = forms.InvitationForm()
    if not (form.validate_on_submit() and signin.reauthenticate(form, user)):
        return _render_invitations(400, form=form)
    lifetime = registration.INVITATION_LIFETIMES[form.lifetime.data]
    invitation, token = registration.invite(db.session, user, form.email.data or None, lifetime, _now())
    db.session.flush()
    detail = audit.invitation_detail(invitation.id, form.email.data or None)
    audit.record(db.session, _network_actor(user), "invitation.created", "", _now(), detail)
    db.session.commit()
    current_app.logger.info("invitation %s made by %s", invitation.id, user.username)
    return _render_invitations(new_link=_public_url("web.accept_invitation", token=token), new_invitation=invitation)


@web.post("/account/invitations/<int(max=2147483647):invitation_id>/withdraw")
@login_required
def withdraw_invitation(invitation_id: int):
    """End an unused invitation of this account now (an administrator may end anyone's).

    :raise 404: when it does not exist or is someone else's.
    """
    user = _user()
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or not (invitation.created_by_id == user.id or user.is_admin):
        abort(404)
    if registration.withdraw(db.session, invitation, _now()):
        audit.record(db.session, _network_actor(user), "invitation.withdrawn", "", _now(), audit.invitation_detail(invitation.id))
        flash(gettext("Invitation withdrawn: its link no longer works."), "success")
    db.session.commit()
    return redirect(url_for("web.account_invitations"))


# --- account routes: webhooks -----------------------------------------------------------------------------------------------


def _render_webhooks(status: int = 200, **context):
    context.setdefault("form", forms.WebhookForm(formdata=None))
    endpoints = webhooks.endpoints_of(db.session, current_user.id)
    return render_template("account_webhooks.html", endpoints=endpoints, action_form=forms.EmptyForm(), **context), status


@web.get("/account/webhooks")
@login_required
def account_webhooks():
    """Webhooks: HTTPS addresses that receive your secrets' events as signed JSON."""
    return _render_webhooks()


@web.post("/account/webhooks")
@login_required
@throttle_guesses
def add_webhook():
    """Add an endpoint after re-authentication (it will hear of every secret's events); its signing secret is shown once."""
    form = forms.WebhookForm()
    user = _user()
    settings = current_app.config
    if form.validate_on_submit() and signin.reauthenticate(form, user):
        if len(webhooks.endpoints_of(db.session, user.id)) >= settings["WEBHOOKS_PER_ACCOUNT"]:
            form.url.errors.append(gettext("You have %(num)d already: remove one first.", num=settings["WEBHOOKS_PER_ACCOUNT"]))
        elif problem := webhooks.url_problem(form.url.data, settings["WEBHOOK_ALLOW_PRIVATE"]):
            form.url.errors.append(gettext(problem))
        else:
            endpoint, secret = webhooks.add_endpoint(db.session, _keys(), user.id, form.url.data, _now())
            current_app.logger.info("webhook %s added for %s", endpoint.id, user.username)
            return _render_webhooks(new_secret=secret, new_host=endpoint.host)
    return _render_webhooks(400, form=form)


def _owned_endpoint_or_404(endpoint_id: int):
    """:raise 404: when the endpoint does not exist or belongs to someone else."""
    return webhooks.endpoint_of(db.session, current_user.id, endpoint_id) or abort(404)


@web.post("/account/webhooks/<int:endpoint_id>/test")
@login_required
def test_webhook(endpoint_id: int):
    """Send a `ping` event to one endpoint now."""
    endpoint = _owned_endpoint_or_404(endpoint_id)
    notify.ping_webhook(endpoint.id, current_user.username)
    db.session.commit()
    flash(gettext("A test event is on its way to %(host)s. Reload this page to see how it went.", host=endpoint.host), "success")
    return redirect(url_for("web.account_webhooks"))


@web.post("/account/webhooks/<int:endpoint_id>/delete")
@login_required
def delete_webhook(endpoint_id: int):
    """Remove one endpoint; events waiting for it are dropped."""
    endpoint = _owned_endpoint_or_404(endpoint_id)
    host = endpoint.host
    webhooks.remove_endpoint(db.session, endpoint)
    flash(gettext("Removed the webhook to %(host)s. It gets no more events.", host=host), "success")
    return redirect(url_for("web.account_webhooks"))


# --- secret routes ------------------------------------------------------------------------------------------------------


def _dashboard_totals(owner_id: int) -> dict[str, int]:
    rows = db.session.execute(
        db.select(Secret.status, func.count()).where(Secret.owner_id == owner_id).group_by(Secret.status)
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
    totals = _dashboard_totals(current_user.id)
    page = db.paginate(
        query, page=_page_number(), per_page=current_app.config["SECRETS_PER_PAGE"], error_out=False, count=False
    )
    page.total = totals[status] if status else sum(totals.values())  # the totals already counted them, from an index
    _with_share_ids(page.items)
    return render_template("dashboard.html", page=page, totals=totals, status=status)


@web.get("/dashboard/<int:number>")
@login_required
def secret_by_number(number: int):
    """Secret number N of the owner: the link in notification emails, which never carry a share id.

    :raise 404: when it does not exist (any more), belongs to someone else, or its share id's key was removed.
    """
    secret = db.first_or_404(db.select(Secret).filter_by(id=number, owner_id=current_user.id))
    share_id = vault.share_id_of(_keys(), secret) or abort(404)
    return redirect(url_for("web.secret_detail", unique_id=share_id))


def _may_create_secrets(user: User) -> bool:
    return accounts.may_create_secrets(user, _verification())


@web.route("/create", methods=["GET", "POST"])
@anonymous_create_limit
@create_limit
def create_secret():
    """Create a secret; on success the owner lands on its share page. Signed out, with ANONYMOUS_SHARING on, the same
    form makes a smaller, shorter secret without an account."""
    if not current_user.is_authenticated:
        return _create_anonymously() if current_app.config["ANONYMOUS_SHARING"] else login_manager.unauthorized()
    user = _user()
    if not _may_create_secrets(user):
        status = 403 if request.method == "POST" else 200
        return render_template("create_secret.html", form=None, resend_form=forms.EmptyForm()), status
    defaults = {**_account_notice_choices(user).columns(), "max_views": current_app.secret_limits.default_views}
    form = _secret_form(forms.CreateSecretForm, data=defaults)
    if (
        form.validate_on_submit()
        and _room_for_another(user, form.title)
        and (attached := _finished_upload(form)) is not None
        and _room_for_files(user, attached, form.files)
    ):
        secret = _create_secret(form, user, attached or None)
        flash(gettext("Your secret is ready to share."), "success")
        return redirect(url_for("web.secret_detail", unique_id=secret.unique_id))
    db.session.rollback()  # whatever the upload sealed goes with the form that failed
    return render_template("create_secret.html", form=form), 400 if form.errors else 200


def _finished_upload(form: forms.CreateSecretForm) -> vault.Attached | bool | None:
    """Finish sealing the request's files: what they are, False for none, None (with the form's error) for an empty one."""
    try:
        return guards.finish_upload() or False
    except attachments.EmptyFile as empty:
        form.files.errors.append(gettext("%(name)s is empty: choose a file with something in it.", name=empty.name))
        return None


def _secrets_left(user: User) -> int | None:
    """How many more active secrets `user` may make under ACTIVE_SECRETS_PER_USER; None: no limit."""
    most = current_app.config["ACTIVE_SECRETS_PER_USER"]
    return max(most - vault.active_count(db.session, user.id, _now()), 0) if most else None


def _too_many_message() -> str:
    most = current_app.config["ACTIVE_SECRETS_PER_USER"]
    return ngettext(
        "You have %(num)d active secret, the most this SecureShare allows. Delete it, or wait until it ends.",
        "You have %(num)d active secrets, the most this SecureShare allows. Delete one, or wait until one ends.",
        most,
    )


def _storage_refusal(user: User, attached: vault.Attached | None) -> str | None:
    """Say why `attached` would take `user` past FILE_STORAGE_PER_USER, or None when it fits."""
    most = current_app.config["FILE_STORAGE_PER_USER"]
    if not most or not attached:
        return None
    kept = vault.active_file_bytes(db.session, user.id, _now())
    if kept + attached.total_bytes <= most:
        return None
    # The API's callers read it in English: the API always answers in English (i18n.select_language).
    return gettext(
        "Your active secrets hold %(kept)s of files, and this SecureShare keeps at most %(most)s per account. "
        "Delete a secret with files, or wait until one ends.",
        kept=size_text(kept),
        most=size_text(most),
    )


def _bytes_or_no_limit(most: int) -> str:
    return size_text(most) if most else gettext("No limit")


def _room_for_files(user: User, attached: vault.Attached | bool, field) -> bool:
    """Put the storage limit next to `field` when the files would take `user` past it."""
    if refusal := _storage_refusal(user, attached or None):
        field.errors.append(refusal)
        return False
    return True


def _room_for_another(user: User, field) -> bool:
    """Put the active-secrets limit next to `field` when `user` has reached it."""
    if _secrets_left(user) == 0:
        field.errors.append(_too_many_message())
        return False
    return True


def _account_notice_choices(user: User) -> vault.NoticeChoices:
    return vault.NoticeChoices(user.notify_opened, user.notify_destroyed, user.notify_unopened)


def _create_secret(form: forms.CreateSecretForm, owner: User, attached: vault.Attached | None = None) -> Secret:
    """Store a new secret from a validated form, sealed; the API's forms leave the notifications to the account.

    :raise Refused: (503) when no key derivation could start in time.
    """
    notices = _notice_choices(form) if "notify_opened" in form else _account_notice_choices(owner)
    return _stored_secret(form, owner, notices, attached)


def _stored_secret(form, owner: User | None, notices: vault.NoticeChoices, attached=None, manage_digest=None) -> Secret:
    """:raise Refused: (503) when no key derivation could start in time."""
    settings = form.data
    match vault.create(
        db.session, _keys(), owner.id if owner else None, settings["title"], settings["content"], settings["password"],
        form.lifetime(), settings["max_views"], settings["blur_level"], _now(), notices, attached, manage_digest,
    ):  # fmt: skip
        case vault.Created(secret):
            current_app.logger.info("secret %s created by %s", secret.id, owner.username if owner else "a visitor")
            return secret
        case outcome:
            raise Refused(outcome)


# --- sharing without an account -------------------------------------------------------------------------------------------


def _anonymous_limits() -> forms.SecretLimits:
    limits, settings = current_app.secret_limits, current_app.config
    return replace(
        limits,
        content_bytes=min(limits.content_bytes, settings["ANONYMOUS_MAX_CONTENT_BYTES"]),
        max_lifetime=min(limits.max_lifetime, settings["ANONYMOUS_MAX_EXPIRY"]),
    )


def _create_anonymously():
    """A visitor's secret; its private manage page then shows the share link and its QR code. A redirect, not the
    POST's own answer: a reload must neither share a second secret nor lose the links."""
    limits = _anonymous_limits()
    form = forms.AnonymousSecretForm(limits=limits, data={"max_views": limits.default_views})
    if not form.validate_on_submit():
        return render_template("create_secret.html", form=form, anonymous=limits), 400 if form.errors else 200
    manage_token = new_token()
    _stored_secret(form, None, vault.NO_NOTICES, manage_digest=token_digest(manage_token))
    flash(gettext("Your secret is ready to share."), "success")
    return redirect(url_for("web.manage_anonymous", token=manage_token), 303)


def _anonymous_secret_or_404(token: str) -> Secret:
    """:raise 404: unless `token` is the manage link of a secret shared without an account."""
    secret = db.first_or_404(db.select(Secret).filter_by(manage_digest=token_digest(token), owner_id=None))
    secret.unique_id = vault.share_id_of(_keys(), secret)
    return secret


@web.get("/manage/<link_token:token>")
def manage_anonymous(token: str):
    """A secret shared without an account, for whoever holds its private manage link: its state, and a way to delete it."""
    secret = _anonymous_secret_or_404(token)
    sharing = {}
    if secret.unique_id is not None and secret.is_available(_now()):
        sharing = {"link": _share_link(secret), "qr": _make_qr(secret).svg_data_uri(scale=6, border=4)}
    manage_link = _public_url("web.manage_anonymous", token=token)
    return render_template(
        "anonymous_manage.html", secret=secret, token=token, form=forms.EmptyForm(), manage_link=manage_link, **sharing
    )


@web.post("/manage/<link_token:token>/delete")
def delete_anonymous(token: str):
    """Delete a secret shared without an account: its content is erased at once and its link stops working."""
    secret = _anonymous_secret_or_404(token)
    secret_id = secret.id  # read now: deleting an ended record removes its row, and the object with it
    if secret.unique_id is not None:
        vault.delete(db.session, secret.unique_id, None, _now())
        current_app.logger.info("secret %s deleted by its manage link", secret_id)
    flash(gettext("Secret deleted. Its link no longer works."), "success")
    return redirect(url_for("web.manage_anonymous", token=token))


@web.get("/secrets/<secret_id:unique_id>")
@login_required
def secret_detail(unique_id: str):
    """The owner's page for one secret: share link, QR code, state and access events."""
    _expire_owned_due(current_user.id)
    return render_template("secret_detail.html", secret=get_owned_secret_or_404(unique_id))


def _changes(form: forms.EditSecretForm) -> vault.Changes:
    return vault.Changes(
        title=form.title.data,
        blur_level=form.blur_level.data,
        max_views=form.max_views.data,
        lifetime=form.lifetime(),
        current_password=form.current_password.data or None,
        content=form.content.data or None,
        password=form.password.data or None,
        notices=_notice_choices(form) if "notify_opened" in form else None,
    )


def _edit(unique_id: str, owner: User, form: forms.EditSecretForm) -> vault.EditOutcome:
    return vault.edit(db.session, _keys(), current_app.policy, unique_id, owner.id, _changes(form), current_app.clock, _visitor())


def _times(count: int) -> str:  # the API's words: English
    return f"{count} {'time' if count == 1 else 'times'}"


def _expiry_too_late_message(latest: datetime) -> str:
    longest = duration_text(current_app.policy.max_lifetime)
    return gettext(
        "A secret lasts at most %(longest)s from its creation: until %(latest)s. Choose a shorter time.",
        longest=longest,
        latest=exact_time(latest),
    )


@web.route("/secrets/<secret_id:unique_id>/edit", methods=["GET", "POST"])
@login_required
def edit_secret(unique_id: str):
    """Change a secret's title, blur, expiry and views; replace its content or password with the current one.

    Checking the current password spends a try like an unlock, so a stolen account cannot guess freely.
    """
    secret = get_active_owned_secret(unique_id)
    current = {
        "title": _title_of(secret),
        "blur_level": secret.blur_level,
        "max_views": secret.max_views,
        **vault.NoticeChoices(secret.notify_opened, secret.notify_destroyed, secret.notify_unopened).columns(),
    }
    form = _secret_form(forms.EditSecretForm, data=current)
    if form.validate_on_submit():
        match _edit(unique_id, _user(), form):
            case vault.Saved():
                current_app.logger.info("secret %s edited", secret.id)
                flash(gettext("Changes saved."), "success")
                return redirect(url_for("web.secret_detail", unique_id=unique_id))
            case vault.WrongPassword():
                form.current_password.errors.append(gettext("That isn't the current password of this secret."))
            case vault.ViewsTaken(view_count):
                form.max_views.errors.append(
                    ngettext(
                        "It has been viewed %(num)d time: choose more, or leave it blank.",
                        "It has been viewed %(num)d times: choose more, or leave it blank.",
                        view_count,
                    )
                )
            case vault.ExpiryTooLate(latest):
                form.expiration.errors.append(_expiry_too_late_message(latest))
            case outcome:
                raise Refused(outcome)
    status = 400 if request.method == "POST" else 200
    max_tries = current_app.policy.max_failed_attempts
    return render_template("edit_secret.html", form=form, secret=secret, max_tries=max_tries), status


@web.route("/secrets/<secret_id:unique_id>/delete", methods=["GET", "POST"])
@login_required
def delete_secret(unique_id: str):
    """Ask, then delete: an active secret is erased and its record kept until the purge; an ended record goes."""
    secret = get_owned_secret_or_404(unique_id)
    if request.method == "POST":  # guard_request has checked the token
        current_app.logger.info("secret %s deleted", secret.id)
        match vault.delete(db.session, unique_id, current_user.id, _now()):
            case vault.Deleted():
                flash(gettext("Secret deleted. Its link no longer works."), "success")
            case vault.Removed():
                flash(gettext("Record removed."), "success")
            case vault.Gone():
                abort(404)
        return redirect(url_for("web.dashboard"))
    return render_template("delete_secret.html", secret=secret, form=forms.EmptyForm())


@web.get("/secrets/<secret_id:unique_id>/card")
@login_required
def secret_card(unique_id: str):
    """A printable card: QR code, title, expiry and where to get the password (never the secret or password)."""
    show_title = request.args.get("title") == "1"  # off by default: a found card should not say what it opens
    return render_template("secret_card.html", secret=get_active_owned_secret(unique_id), show_title=show_title)


@web.get("/secrets/<secret_id:unique_id>/qr.png")
@login_required
def secret_qr_png(unique_id: str):
    """The QR code as PNG."""
    return _qr_response(get_active_owned_secret(unique_id), "png")


@web.get("/secrets/<secret_id:unique_id>/qr.svg")
@login_required
def secret_qr_svg(unique_id: str):
    """The QR code as SVG, drawn on request."""
    return _qr_response(get_active_owned_secret(unique_id), "svg")


def _abort_unless_openable(unique_id: str) -> None:
    """:raise 404: when there is no such secret; :raise 410: when it has ended, expired or lost its key."""
    match vault.openable(db.session, _keys(), unique_id, _now()):
        case None:
            abort(404)
        case False:
            abort(410)


def _unlock(unique_id: str, password: str, form_mark: str | None = None) -> vault.Outcome:
    note_a_password_try()
    return vault.unlock(
        db.session, _keys(), current_app.policy, unique_id, password, current_app.clock, _visitor(), form_mark
    )


@web.route("/view/<secret_id:unique_id>", methods=["GET", "POST"])
@guards.csrf_checked_by(guards.check_unlock_form)
@unlock_ip_limit
@unlock_secret_limit
def view_secret(unique_id: str):
    """GET (and HEAD) shows only the password form and writes nothing; POST unlocks."""
    _abort_unless_openable(unique_id)
    form = forms.UnlockForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("view_secret.html", form=form), status
    match _unlock(unique_id, form.password.data, guards.unlock_form_mark()):
        case vault.Unlocked(content, secret, files_key, replayed):
            current_app.logger.info("secret %s %s", secret.id, "shown again" if replayed else "unlocked")
            files = _files_with_links(unique_id, secret, files_key)
            return render_template(
                "view_secret.html", form=None, secret=secret, content=content, title=_title_of(secret), files=files,
                replayed=replayed, form_token=request.form["csrf_token"],
            )
        case vault.WrongPassword(left):
            form.password.errors.append(wrong_password_message(left))
            return render_template("view_secret.html", form=form), 403
        case outcome:
            raise Refused(outcome)


@web.post("/view/<secret_id:unique_id>/destroy")
@guards.csrf_checked_by(guards.check_unlock_form)
@unlock_ip_limit
def destroy_by_recipient(unique_id: str):
    """"I have it: destroy it now": the form that unlocked the secret (within vault.REPLAY_WINDOW) ends it."""
    match vault.end_by_recipient(db.session, unique_id, guards.unlock_form_mark(), _now(), _visitor()):
        case vault.EndedByRecipient():
            current_app.logger.info("a secret was ended by its recipient")
            return render_template("view_secret.html", form=None, ended=True)
        case outcome:
            raise Refused(outcome)


@web.get("/favicon.ico")
@limiter.exempt
def favicon():
    """Browsers ask for it on pages without an icon link, such as an image opened on its own."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@dataclass(frozen=True)
class FileLink:
    name: str
    size: int
    url: str


def _files_with_links(unique_id: str, secret: Secret, files_key: bytes | None) -> list[FileLink] | None:
    """The unlocked secret's files with download links bound to this unlock; None when they do not open."""
    if files_key is None:
        return []
    try:
        files = attachments.list_files(db.session, unique_id, files_key)
    except attachments.Tampered:
        current_app.logger.error("secret %s: its files do not open as sealed", secret.id)
        return None
    token = attachments.link_token(_keys(), unique_id, files_key, _now() + current_app.policy.file_link_window)
    return [
        FileLink(file.name, file.size, url_for("web.download_file", unique_id=unique_id, token=token, position=file.position))
        for file in files
    ]


@web.get("/view/<secret_id:unique_id>/files/<string(maxlength=200):token>/<int(max=1000):position>")
def download_file(unique_id: str, token: str, position: int):
    """Stream one attached file, opened chunk by chunk, always as a download that cannot run in our origin.

    :raise 404: for a link that is forged, for another secret, or expired; :raise 410: when the files are erased.
    """
    files_key = attachments.key_of_link(_keys(), unique_id, token, _now())
    if files_key is None:
        abort(404)
    secret = db.session.execute(Secret.by_share_id(unique_id)).scalar_one_or_none()
    if secret is None or (secret.status == SecretStatus.ACTIVE and secret.is_expired(_now())):
        abort(410)  # expired: the purge is about to erase them
    if db.session.get(User, secret.owner_id).disabled:
        abort(410)  # a disabled account's secrets are not opened, their files included, until it is enabled again
    try:
        files = attachments.list_files(db.session, unique_id, files_key)
    except attachments.Tampered:
        current_app.logger.error("secret %s: its files do not open as sealed", secret.id)
        abort(410)
    if position >= len(files):
        abort(410 if not files else 404)
    file = files[position]
    chunks = attachments.open_chunks(db.session, unique_id, files_key, file)
    response = Response(stream_with_context(_stopping_if_tampered(chunks, secret.id)), mimetype=attachments.DEFAULT_TYPE)
    response.headers["Content-Length"] = str(file.size)
    response.headers["Content-Disposition"] = _attachment_disposition(file.name)
    return response


def _stopping_if_tampered(chunks, secret_id: int):
    """Stop a download whose chunk fails to open: the body falls short of its Content-Length, so the client knows."""
    try:
        yield from chunks
    except attachments.Tampered:
        current_app.logger.error("secret %s: a file chunk did not open; the download was cut short", secret_id)


def _attachment_disposition(name: str) -> str:
    """`attachment`, with the name in ASCII for old clients and in full (RFC 5987) for the rest."""
    plain = "".join(char for char in name if char.isascii() and char not in '"\\') or "file"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


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
    """Readiness: the database answers `SELECT 1` and the rate-limit store (Redis) answers; 503 (never a 500) when
    either does not."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("readiness check: the database is unreachable")
        return jsonify(status="unavailable"), 503
    if limiter.enabled and not limiter.storage.check():
        current_app.logger.warning("readiness check: the rate-limit store is unreachable")
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok")


# --- API ------------------------------------------------------------------------------------------------------------------


@api.before_request
def _refuse_token_in_query():
    """A token in a URL lands in logs, proxies and histories: refuse it before anything reads it."""
    if QUERY_TOKEN_NAMES & {name.lower() for name in request.args}:
        raise ApiError(400, "token_in_query", "Send the token in the Authorization header, never in the URL.")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _secret_json(secret: Secret) -> dict:
    unavailable = _is_unavailable(secret)
    active = secret.status == SecretStatus.ACTIVE and not unavailable
    link = _share_link(secret) if active else None
    return api_schema.SECRET.build(
        id=secret.unique_id,
        title=_title_of(secret),
        unavailable=str(UNAVAILABLE_TITLE) if unavailable else None,
        status=secret.status,
        created_at=_iso(secret.created_at),
        expires_at=_iso(secret.expires_at),
        max_views=secret.max_views,
        view_count=secret.view_count,
        failed_attempts=secret.failed_attempts,
        blur_level=secret.blur_level,
        url=link,
        link=link,
        qr_png_url=_public_url("api.api_secret_qr_png", unique_id=secret.unique_id) if active else None,
        qr_svg_url=_public_url("api.api_secret_qr_svg", unique_id=secret.unique_id) if active else None,
        file_count=secret.file_count,
        file_bytes=secret.file_bytes,
    )


def _event_json(access: AccessEvent) -> dict:
    return api_schema.EVENT.build(
        at=_iso(access.at), outcome=access.outcome, user_agent=access.user_agent, ip_prefix=access.ip_prefix
    )


def _paginate(statement, query: dict):
    most = api_schema.MAX_PER_PAGE
    return db.paginate(statement, page=query["page"], per_page=query["per_page"], max_per_page=most, error_out=False)


@api.get("/openapi.json")
@api_operation("This document", responses={200: "OpenApiDocument"})
def openapi_document():
    """The OpenAPI 3.1 description of every API route, built from the routes' own declarations."""
    return jsonify(api_schema.openapi_document())


@api.get("/docs")
@api_operation("This API, as a page to read", responses={200: "DocsPage"})
def docs():
    """The API reference, rendered from the OpenAPI document by our own template: the reference in English, like the
    API's messages, in a frame (menu, footer) in the reader's language."""
    with force_locale(i18n.DEFAULT_LANGUAGE):
        spec = api_schema.openapi_document()  # the form labels it quotes would otherwise be translated
    common = api_schema.reasons_by_status(api_schema.COMMON_REASONS)
    return render_template("api_docs.html", spec=spec, reasons=api_schema.REASONS, common_answers=common)


@api.get("/auth/check")
@api_auth_required
@api_operation("Check the token or session", responses={200: "AuthCheck"})
def auth_check(caller: User):
    """Tell a script whether its session or token is signed in, and as whom."""
    return jsonify(success=True, user=api_schema.USER.build(id=caller.id, username=caller.username, email=caller.email))


@api.get("/secrets")
@api_auth_required
@api_operation(
    "List your secrets", responses={200: "SecretPage"}, query=api_schema.list_query, example={"status": "active", "per_page": 10}
)
def api_list_secrets(caller: User, query: dict):
    """The caller's secrets, newest first; never their content."""
    _expire_owned_due(caller.id)
    statement = db.select(Secret).where(Secret.owner_id == caller.id).order_by(Secret.id.desc())
    if query.get("status"):
        statement = statement.where(Secret.status == query["status"])
    page = _paginate(statement, query)
    secrets = [_secret_json(secret) for secret in _with_share_ids(page.items)]
    return jsonify(success=True, secrets=secrets, **api_schema.page_json(page))


@api.post("/secrets")
@api_auth_required
@create_limit
@api_operation(
    "Create a secret",
    responses={201: "SecretCreated"},
    reasons=("email_unverified", "two_factor_required", "too_many_secrets", "invalid_fields", "storage_full", "busy",
             "length_required"),  # the last one: a multipart body without its length
    body=api_schema.create_body,
    files=True,
    example={"title": "Deploy key", "content": "correct-horse-battery-staple", "password": "open-sesame-42",
             "expires_in": 3600, "max_views": 1, "blur_level": 10},
)  # fmt: skip
def api_create_secret(caller: User, body: dict):
    """Create a secret; answer 201 with its link, QR code addresses and expiry, and its address in Location.
    Under EMAIL_VERIFICATION=required an account whose address is not confirmed gets 403 `email_unverified`.
    With files, send multipart/form-data: the JSON fields as the part `secret`, each file as a part `files`."""
    if not _may_create_secrets(caller):
        raise ApiError(403, "email_unverified", UNVERIFIED_MESSAGE)
    if current_app.config["REQUIRE_TWO_FACTOR"] and not caller.two_factor_on:
        raise ApiError(403, "two_factor_required", TWO_FACTOR_REQUIRED_MESSAGE)
    if _secrets_left(caller) == 0:
        raise ApiError(403, "too_many_secrets", _too_many_message())
    try:
        attached = guards.finish_upload()
    except attachments.EmptyFile as empty:
        raise ApiError(400, "invalid_fields", "Some fields need fixing.", fields={"files": [f"{empty.name} is empty."]}) from None
    if refusal := _storage_refusal(caller, attached):
        raise ApiError(413, "storage_full", refusal)
    defaults = {"max_views": current_app.secret_limits.default_views}
    form = api_schema.api_form(forms.ApiCreateSecretForm, {**defaults, **body}, files_attached=attached is not None)
    secret = _create_secret(form, caller, attached)
    location = url_for("api.api_get_secret", unique_id=secret.unique_id)
    return jsonify(success=True, secret=_secret_json(secret)), 201, {"Location": location}


@api.get("/secrets/<secret_id:unique_id>")
@api_auth_required
@api_operation("Read a secret's state", responses={200: "Secret"})
def api_get_secret(caller: User, unique_id: str):
    """One of the caller's secrets: its state and link, never its content."""
    _expire_owned_due(caller.id)
    return jsonify(success=True, secret=_secret_json(get_owned_secret_or_404(unique_id, caller)))


@api.patch("/secrets/<secret_id:unique_id>")
@api_auth_required
@api_operation(
    "Change a secret's settings",
    responses={200: "Secret"},
    reasons=("gone", "invalid_fields"),
    body=api_schema.edit_body,
    example={"title": "Deploy key (staging)", "max_views": 3, "expires_in": 7200},
)
def api_edit_secret(caller: User, unique_id: str, body: dict):
    """Change the title, blur, expiry (expires_in) or views of an active secret, as its edit page does."""
    secret = get_active_owned_secret(unique_id, caller)
    current = {"title": _title_of(secret), "blur_level": secret.blur_level, "max_views": secret.max_views}
    match _edit(unique_id, caller, api_schema.api_form(forms.ApiEditSecretForm, {**current, **body})):
        case vault.Saved(saved):
            current_app.logger.info("secret %s edited by API", saved.id)
            return jsonify(success=True, secret=_secret_json(get_owned_secret_or_404(unique_id, caller)))
        case vault.ViewsTaken(view_count):
            fields = {"max_views": [f"It has been viewed {_times(view_count)}: choose more, or null for unlimited."]}
        case vault.ExpiryTooLate(latest):
            longest = duration_text(current_app.policy.max_lifetime)
            fields = {"expires_in": [f"A secret lasts at most {longest} from its creation: until {_iso(latest)}."]}
        case outcome:
            raise Refused(outcome)
    raise ApiError(400, "invalid_fields", "Some fields need fixing.", fields=fields)


@api.delete("/secrets/<secret_id:unique_id>")
@api_auth_required
@api_operation("Delete a secret", responses={200: "SecretDeleted"})
def api_delete_secret(caller: User, unique_id: str):
    """Delete one of the caller's secrets: its content is erased at once; an ended record is removed."""
    secret = get_owned_secret_or_404(unique_id, caller)
    match vault.delete(db.session, unique_id, caller.id, _now()):
        case vault.Deleted():
            db.session.refresh(secret)
            return jsonify(success=True, secret=_secret_json(secret))
        case vault.Removed():
            return jsonify(success=True, secret=None)
        case _:
            abort(404)


@api.get("/secrets/<secret_id:unique_id>/events")
@api_auth_required
@api_operation(
    "List a secret's access events", responses={200: "EventPage"}, query=api_schema.page_query, example={"per_page": 20}
)
def api_secret_events(caller: User, unique_id: str, query: dict):
    """Who tried to open the secret, newest first: time, outcome, browser and network (never the full address)."""
    secret = get_owned_secret_or_404(unique_id, caller)
    statement = db.select(AccessEvent).where(AccessEvent.secret_id == secret.id).order_by(AccessEvent.id.desc())
    page = _paginate(statement, query)
    return jsonify(success=True, events=[_event_json(access) for access in page.items], **api_schema.page_json(page))


@api.get("/secrets/<secret_id:unique_id>/qr.png")
@api_auth_required
@api_operation("The share link's QR code, PNG", responses={200: "QrPng"}, reasons=("gone",))
def api_secret_qr_png(caller: User, unique_id: str):
    """The QR code of an active secret's link, as PNG."""
    return _qr_response(get_active_owned_secret(unique_id, caller), "png")


@api.get("/secrets/<secret_id:unique_id>/qr.svg")
@api_auth_required
@api_operation("The share link's QR code, SVG", responses={200: "QrSvg"}, reasons=("gone",))
def api_secret_qr_svg(caller: User, unique_id: str):
    """The QR code of an active secret's link, as SVG."""
    return _qr_response(get_active_owned_secret(unique_id, caller), "svg")


@api.post("/secrets/<secret_id:unique_id>/unlock")
@unlock_ip_limit
@unlock_secret_limit
@api_operation(
    "Open a secret with its password",
    responses={200: "Unlocked"},
    reasons=("wrong_password", "files_tampered", "gone", "destroyed", "attempts_in_flight", "busy"),
    body=api_schema.unlock_body,
    example={"password": "open-sesame-42"},
)
def api_unlock_secret(unique_id: str, body: dict):
    """The recipient's door, no sign-in: counts a view, spends tries, destroys and wipes exactly as the page does."""
    if vault.openable(db.session, _keys(), unique_id, _now()) is None:
        abort(404)  # an id that never existed is a 404, as on the page
    match _unlock(unique_id, body["password"]):
        case vault.Unlocked(content, secret, files_key):
            current_app.logger.info("secret %s unlocked through the API", secret.id)
            files = _files_with_links(unique_id, secret, files_key)
            if files is None:
                raise ApiError(409, "files_tampered", "The attached files could not be opened: they were changed.")
            unlocked = api_schema.UNLOCKED.build(
                files=[{"name": file.name, "size": file.size, "url": _public_url_of(file.url)} for file in files],
                title=_title_of(secret),
                content=content,
                view_count=secret.view_count,
                max_views=secret.max_views,
                expires_at=_iso(secret.expires_at),
            )
            return jsonify(success=True, secret=unlocked)
        case outcome:
            raise Refused(outcome)


# --- administration: /admin, for administrators only ------------------------------------------------------------------------

admin = Blueprint("admin", __name__, url_prefix="/admin")
AUDIT_FILTER_ACTIONS = ("", *audit.ACTIONS)


@admin.before_request
def _administrators_only():
    """:raise 404: for anyone but a signed-in administrator, signed-out visitors included (the pages' existence is
    nobody else's business)."""
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(404)


def _keyset_id(name: str) -> int | None:
    """Return ?after= or ?before= as a row id. :raise 400: unless it is a whole number in the database's range."""
    raw = request.args.get(name, "")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > 2147483647:
        abort(400, gettext("Use the page's own links to move between pages."))
    return int(raw)


@admin.get("/")
def overview():
    """The instance in figures (counts only) and the policies it runs with."""
    figures = administration.figures(db.session, _now())
    return render_template("admin_overview.html", figures=figures, policies=_policies_in_words())


def _registration_in_words(policy: registration.RegistrationPolicy) -> str:
    if policy.mode == registration.RegistrationMode.DOMAINS:
        return gettext("Addresses at %(domains)s, or an invitation", domains=_domains_in_words(policy.domains))
    return {
        registration.RegistrationMode.OPEN: gettext("Anyone may sign up"),
        registration.RegistrationMode.INVITE: gettext("By invitation only"),
        registration.RegistrationMode.CLOSED: gettext("Closed: accounts are made on the command line"),
    }[policy.mode]


def _policies_in_words() -> list[tuple[str, str, str]]:
    """The instance's policies as the operator set them, for the overview: (what it is, its setting, its value)."""
    policy, settings, limits = _registration(), current_app.config, current_app.secret_limits
    no_limit = gettext("No limit")
    return [
        (gettext("Sign-up"), "REGISTRATION", _registration_in_words(policy)),
        (
            gettext("Who may invite"),
            "USERS_MAY_INVITE",
            gettext("Every account") if policy.users_may_invite else gettext("Administrators"),
        ),
        (
            gettext("Two-factor sign-in"),
            "REQUIRE_TWO_FACTOR",
            gettext("Required for everyone") if settings["REQUIRE_TWO_FACTOR"] else gettext("Optional"),
        ),
        (gettext("Longest expiry"), "SECRET_MAX_EXPIRY_DAYS", duration_text(current_app.policy.max_lifetime)),
        (
            gettext("Views a new secret starts with"),
            "SECRET_DEFAULT_VIEWS",
            str(limits.default_views) if limits.default_views else gettext("Unlimited"),
        ),
        (
            gettext("Most views"),
            "SECRET_MAX_VIEWS",
            str(limits.max_views) if limits.max_views else gettext("Up to %(num)d, or unlimited", num=100),
        ),
        (
            gettext("Active secrets per account"),
            "ACTIVE_SECRETS_PER_USER",
            str(settings["ACTIVE_SECRETS_PER_USER"]) if settings["ACTIVE_SECRETS_PER_USER"] else no_limit,
        ),
        (gettext("Files kept per account"), "FILE_STORAGE_PER_USER", _bytes_or_no_limit(settings["FILE_STORAGE_PER_USER"])),
        (
            gettext("Audit log kept"),
            "AUDIT_RETENTION_DAYS",
            duration_text(timedelta(days=settings["AUDIT_RETENTION_DAYS"])),
        ),
    ]


@admin.get("/users")
def users():
    """Accounts, newest first, 50 a page (keyset: as fast on the last page as the first), searched by the start of a
    username or email address. Never a secret's title, content or link, nor a token."""
    search = request.args.get("q", "")[:254]
    rows = administration.users_page(db.session, _now(), search, _keyset_id("after"))
    more = len(rows) == administration.USERS_PAGE_SIZE
    return render_template("admin_users.html", rows=rows, search=search, next_after=rows[-1].id if more else None)


def _other_user_or_404(user_id: int) -> User:
    """Return the account an administrator acts on.

    :raise 404: when there is none, or it is the administrator's own (their own account is changed on its own page).
    """
    target = db.get_or_404(User, user_id)
    if target.id == current_user.id:
        abort(404)
    return target


ADMIN_CHANGES = {
    # action: (what it does, its heading, its lead, its button, what is flashed); %(name)s is the account's username
    "disable": (
        administration.disable,
        _("Disable %(name)s?"),
        _(
            "They are signed out everywhere and their API tokens stop working. Their secrets can't be opened until you "
            "enable the account again (recipients see that the secret is unavailable)."
        ),
        _("Disable the account"),
        _("Disabled %(name)s."),
    ),
    "enable": (
        administration.enable,
        _("Enable %(name)s?"),
        _("They can sign in again, and their secrets that haven't expired can be opened again."),
        _("Enable the account"),
        _("Enabled %(name)s."),
    ),
    "reset-two-factor": (
        administration.reset_two_factor,
        _("Turn off two-factor sign-in for %(name)s?"),
        _(
            "Do this only for someone who lost both their authenticator app and their recovery codes, once you are sure "
            "it's them. They are signed out everywhere, then sign in with their password alone. They are told by email."
        ),
        _("Turn it off"),
        _("Two-factor sign-in is off for %(name)s. They were told by email where email is set up."),
    ),
    "delete": (
        administration.delete_user,
        _("Delete %(name)s and all their secrets?"),
        _("Every secret of theirs is erased and its link stops working at once. This can't be undone."),
        _("Delete the account"),
        _("Deleted %(name)s and erased their secrets."),
    ),
}


@admin.route(f"/users/<int(max=2147483647):user_id>/<any({', '.join(map(repr, ADMIN_CHANGES))}):action>", methods=["GET", "POST"])
@throttle_guesses
def change_user(user_id: int, action: str):
    """Disable, enable, delete or reset the two-factor sign-in of an account, after the administrator's password (and
    a code); each change is written to the audit log with it.

    :raise 404: when there is no such account, or it is the administrator's own.
    """
    me = _user()
    target = _other_user_or_404(user_id)
    change, heading, lead, button, done = ADMIN_CHANGES[action]
    username = target.username

    def make_change() -> None:
        if action == "reset-two-factor" and target.two_factor_on:
            notify.tell(target, "two_factor_reset")  # committed with the change
        change(db.session, target, _network_actor(me), _now())
        current_app.logger.info("administrator %s: %s %s", me.username, action, username)

    return _change_after_reauthentication(
        me,
        make_change,
        done % {"name": username},
        url_for("admin.users", q=username),
        heading=heading % {"name": username},
        lead=lead,
        action=url_for("admin.change_user", user_id=user_id, action=action),
        button=button,
        undoes_harm=action == "enable",  # the one change that gives something back: not a red button
    )


@admin.get("/invitations")
def invitations():
    """Every invitation, newest first: whom it is for, who made it, whether it was used; and a form to make one."""
    return _render_invitations(show_all=True, invitations=registration.invitations_of(db.session, None))


def _event_in_words(event: AuditEvent) -> tuple[str, str, str]:
    """An audit event's action, actor and detail in the page's language; a code or detail of no known shape as stored
    (a device's or a token's name)."""
    action = gettext(audit.ACTIONS[event.action]) if event.action in audit.ACTIONS else event.action
    actor = gettext("Command line") if event.actor == audit.CLI_ACTOR else event.actor  # a username no one may take
    message = audit.detail_message(event.action, event.detail or "")
    return action, actor, gettext(message[0], **message[1]) if message else event.detail


@admin.get("/audit")
def audit_log():
    """The audit log, newest first, filtered by action and by a username (who acted, or to whom)."""
    action = request.args.get("action", "")
    if action not in AUDIT_FILTER_ACTIONS:
        abort(400, gettext("Choose an action from the list."))
    name = request.args.get("name", "").strip()[:32]
    events = audit.events(db.session, action, name, _keyset_id("before"))
    more = len(events) == audit.PAGE_SIZE
    return render_template(
        "admin_audit.html",
        rows=[(event, *_event_in_words(event)) for event in events],
        action=action,
        name=name,
        actions=[(code, gettext(words)) for code, words in audit.ACTIONS.items()],
        next_before=events[-1].id if more else None,
    )


# --- error handlers ------------------------------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error_response(code: int, message: str | None = None, headers: dict | None = None, reason: str | None = None) -> Response:
    title, words = ERROR_TEXT.get(code, ERROR_TEXT[500])
    if _wants_json():
        reason = reason or api_schema.ERROR_REASONS.get(code, "server_error")
        with force_locale(i18n.DEFAULT_LANGUAGE):  # English even from /api/docs, whose frame is in the reader's language
            response = api_schema.api_error_response(ApiError(code, reason, message or words))
    else:
        # As plain text: a lazy message would reach the page unescaped (its __html__ trusts it).
        words = str(message or words)
        page = render_template("error.html", code=code, title=str(title), message=words, request_id=g.get("request_id"))
        response = Response(page)
    response.status_code = code
    for name, value in (headers or {}).items():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _answer_refused(error: Refused):
    refusal = error.refusal
    if _wants_json():
        return api_schema.api_error_response(
            ApiError(refusal.status, refusal.reason, refusal.message, refusal.headers, **refusal.details)
        )
    return _error_response(refusal.status, refusal.message, refusal.headers)


def _handle_http_error(error: HTTPException):
    if isinstance(error, SecurityError):
        # An untrusted Host: no URL can be built for it, so answer without the page template.
        return Response(UNTRUSTED_HOST_PAGE, status=400, mimetype="text/html")
    if isinstance(error, CSRFError):
        return _error_response(400, CROSS_SITE_MESSAGE if isinstance(error, guards.CrossSiteRequest) else EXPIRED_FORM_MESSAGE)
    headers = dict(error.get_headers()) if error.code in {405, 429, 503} else None
    # Our own abort() messages are written for people; Werkzeug's stock texts and the limiter's rates are not shown.
    custom = error.description != type(error).description and not isinstance(error, RateLimitExceeded)
    return _error_response(error.code or 500, error.description if custom else None, headers)


def _handle_limit_store_down(_error: RedisError):
    """Without its counters a limited request cannot be let through safely: refuse it, plainly, and log why once."""
    current_app.logger.error("the rate-limit store is unreachable: refusing the requests it counts")
    return _error_response(503, LIMIT_STORE_DOWN_MESSAGE, {"Retry-After": "30"}, reason="unavailable")


def _handle_unexpected_error(_error: Exception):
    db.session.rollback()
    current_app.logger.exception("unhandled error")
    return _error_response(500)


# --- instance policies: two-factor for everyone -------------------------------------------------------------------------

# Where an account without two-factor may still go under REQUIRE_TWO_FACTOR: setting it up, signing out, and what a
# recipient does (opening a secret someone sent them).
TWO_FACTOR_SETUP_ENDPOINTS = {"web.two_factor", "web.enable_two_factor", "web.logout", "web.view_secret", "web.verify_email"}


def _lead_to_two_factor_setup():
    """Under REQUIRE_TWO_FACTOR, send a signed-in account without two-factor to its set-up page first (the API refuses
    creating secrets instead: a script cannot set it up)."""
    if not current_app.config["REQUIRE_TWO_FACTOR"] or not current_user.is_authenticated or current_user.two_factor_on:
        return None
    if request.blueprint == "api" or request.endpoint in TWO_FACTOR_SETUP_ENDPOINTS | guards.PROBE_ENDPOINTS | {"static"}:
        return None
    flash(gettext("This SecureShare requires two-factor sign-in. Set it up to continue."), "info")
    return redirect(url_for("web.two_factor"))


# --- create_app ------------------------------------------------------------------------------------------------------------


def _template_context() -> dict:
    return {
        "now": _now(),
        "relative_time": relative_time,
        "duration_text": duration_text,
        "exact_time": exact_time,
        "size_text": size_text,
        **i18n.template_helpers(),
        **preferences.template_helpers(),
        "title_of": _title_of,
        "is_unavailable": _is_unavailable,
        "share_link": _share_link,
        "SecretStatus": SecretStatus,
        "mail_enabled": notify.mail_enabled(),
        "verification": current_app.config["EMAIL_VERIFICATION"].value,
        "unlock_form_token": lambda: guards.unlock_form_token(request.view_args["unique_id"]),
        "replay_minutes": int(vault.REPLAY_WINDOW.total_seconds() // 60),
    }


def _build_cores(app: SecureShare) -> None:
    """Build, once, what the cores are handed on every call: keys, policies, limits and the clock."""
    settings = app.config
    app.clock = settings.get("CLOCK", utcnow)
    app.keys = startup.key_ring(settings)
    app.policy = startup.vault_policy(settings)
    app.passwords = startup.password_hashing(settings)
    app.session_limits = startup.session_limits(settings)
    app.secret_limits = forms.SecretLimits(
        settings["SECRET_MAX_CONTENT_BYTES"],
        settings["SECRET_MIN_EXPIRY"],
        settings["SECRET_MAX_EXPIRY"],
        max_views=settings["SECRET_MAX_VIEWS"] or None,
        default_views=settings["SECRET_DEFAULT_VIEWS"] or None,
    )


def _register_extensions(app: SecureShare) -> None:
    db.init_app(app)
    migrate.init_app(app, db)
    csrf.init_app(app)  # its own hook is off (WTF_CSRF_CHECK_DEFAULT): guard_request calls it in order
    limiter.init_app(app)
    mail.init_app(app)
    i18n.babel.init_app(app, locale_selector=i18n.select_language, timezone_selector=i18n.select_time_zone)
    i18n.install_template_gettext(app)
    login_manager.init_app(app)


def _register_handlers(app: SecureShare) -> None:
    app.before_request(guards.guard_request)
    # After the guards (the host is checked first); the only place the menus' cookies are set.
    app.before_request(partial(preferences.apply_picks, (i18n.LANGUAGE_MENU, preferences.THEME_MENU)))
    app.before_request(_lead_to_two_factor_setup)  # after the language: its flash speaks it
    guards.install_security_headers(app)
    app.after_request(notify.send_after_response)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(ApiError, api_schema.api_error_response)
    app.register_error_handler(Refused, _answer_refused)
    app.register_error_handler(RedisError, _handle_limit_store_down)
    app.register_error_handler(Exception, _handle_unexpected_error)
    app.context_processor(_template_context)
    for command in commands.COMMANDS:
        app.cli.add_command(command)


def create_app(config_class=None) -> SecureShare:
    """Build the SecureShare app from `config_class`, or the class APP_CONFIG names (development by default)."""
    if config_class is None:
        name = os.environ.get("APP_CONFIG", "development")
        if name not in CONFIGS:
            startup.refuse_to_start(f"APP_CONFIG must be one of {', '.join(CONFIGS)}.")
        config_class = CONFIGS[name]
    app = SecureShare(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(config_class)
    startup.check_settings(app.config)  # first: nothing is generated or written for settings that cannot work
    startup.keep_sqlite_file_private(app.config)
    _build_cores(app)
    app.trusted_hosts = startup.trusted_hosts(app.config)
    startup.configure_logging(app)
    startup.warn_about_per_process_limits(app)
    startup.configure_proxy(app)
    app.url_map.converters["secret_id"] = SecretIdConverter
    app.url_map.converters["link_token"] = LinkTokenConverter
    _register_extensions(app)
    _register_handlers(app)
    app.register_blueprint(web)
    app.register_blueprint(api)
    app.register_blueprint(admin)
    return app


limit_the_api(api)

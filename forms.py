"""SecureShare's forms (WTForms). Validators get what they need passed in and query nothing: a route checks what
needs the database (is that email free?) and puts the answer next to the field."""

import re
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext, lazy_gettext, lazy_ngettext
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    MultipleFileField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import AnyOf, DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional, StopValidation

import i18n
import preferences
from accounts import password_feedback
from audit import CLI_ACTOR
from schema import canonical
from timetext import duration_text

# Labels and messages are lazy: each is written in the language of the page that shows it.
_ = lazy_gettext
USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
MAX_EMAIL_LENGTH = 254
EXPIRATION_PRESETS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
EXPIRATION_CHOICES = [
    SelectChoice("1h", _("1 hour")),
    SelectChoice("24h", _("24 hours")),
    SelectChoice("7d", _("7 days")),
    SelectChoice("custom", _("Custom")),
]
CUSTOM_UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}
CUSTOM_UNIT_CHOICES = [SelectChoice("minutes", _("minutes")), SelectChoice("hours", _("hours")), SelectChoice("days", _("days"))]
TOKEN_LIFETIMES = {"30d": timedelta(days=30), "90d": timedelta(days=90), "365d": timedelta(days=365), "never": None}
TOKEN_LIFETIME_CHOICES = [
    SelectChoice("30d", _("30 days")),
    SelectChoice("90d", _("90 days")),
    SelectChoice("365d", _("1 year")),
    SelectChoice("never", _("Never")),
]
NOTIFY_OPENED_CHOICES = [
    SelectChoice("never", _("Don't tell me")),
    SelectChoice("first", _("The first time")),
    SelectChoice("every", _("Every time")),
]
PASSWORDS_DIFFER = _("The passwords don't match.")
TAKEN_MESSAGES = {
    # The form must say this much for a person to recover; sign-in never reveals which accounts exist.
    "username": _("That username is taken. Try another."),
    "email": _("That email already has an account. Sign in instead."),
}


@dataclass(frozen=True)
class SecretLimits:
    """What a secret may hold and how long it may last, from the settings."""

    content_bytes: int
    min_lifetime: timedelta
    max_lifetime: timedelta
    max_views: int | None = None  # None: up to 100, or unlimited
    default_views: int | None = None  # what a new secret starts with; None: unlimited


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _fits_once_canonical(_form, field) -> None:
    # NFKC can make one character many (U+FDFA is 18): the stored canonical spelling must fit as well.
    if field.data and len(canonical(field.data)) > MAX_EMAIL_LENGTH:
        raise ValidationError(_("That address is too long."))


def _email_field(label: str) -> StringField:
    return StringField(
        label,
        filters=[_strip],
        validators=[
            InputRequired(_("Enter your email address.")),
            Length(max=MAX_EMAIL_LENGTH),
            Email(_("Enter a valid email address.")),
            _fits_once_canonical,
        ],
    )


def _code_field(label: str, required: bool) -> StringField:
    presence = InputRequired(_("Enter the code.")) if required else Optional()
    return StringField(label, filters=[_strip], validators=[presence, Length(max=32, message=_("That code is too long."))])


def mark_taken(form: FlaskForm, fields: list[str]) -> bool:
    """Put "already taken" next to each of `fields` (found by the route); return whether the form is still valid."""
    for name in fields:
        form[name].errors = [*form[name].errors, TAKEN_MESSAGES[name]]
    return not fields


def _known_zone_or_none(value: str | None) -> str | None:
    return value if value in i18n.TIME_ZONES else None


def _browser_time_zone_field() -> HiddenField:
    # static/js/app.js fills it with the browser's zone; anything that is not a zone we know is left out, unsaid:
    # nobody typed it, and the Account page changes it.
    return HiddenField(filters=[_known_zone_or_none], render_kw={"data-browser-time-zone": ""})


class FootMenuForm(FlaskForm):
    """A menu at the foot of every page, for a signed-in user (the choice is saved on the account); `next` is the
    page it was sent from."""

    next = StringField(validators=[Optional(), Length(max=2048)])


class LanguageMenuForm(FootMenuForm):
    lang = SelectField(choices=[SelectChoice(code, name) for code, name in i18n.LANGUAGES.items()])


class ThemeMenuForm(FootMenuForm):
    theme = SelectField(choices=[SelectChoice(code, name) for code, name in preferences.THEMES.items()])


# --- accounts ------------------------------------------------------------------------------------------------------


class NewPasswordMixin:
    """A new account password (12-128 characters) that zxcvbn must score at 3 or more."""

    password = PasswordField(
        _("Password"),
        validators=[
            InputRequired(_("Choose a password.")),
            Length(min=12, max=128, message=_("Use 12 to 128 characters.")),
        ],
    )
    confirm = PasswordField(
        _("Repeat password"), validators=[InputRequired(_("Repeat the password.")), EqualTo("password", PASSWORDS_DIFFER)]
    )

    def password_context(self) -> list[str]:
        return []

    def validate_password(self, field) -> None:
        feedback = password_feedback(field.data, self.password_context(), gettext)
        if feedback:
            raise ValidationError(_("Too easy to guess. %(advice)s", advice=feedback))


class RegisterForm(NewPasswordMixin, FlaskForm):
    username = StringField(
        _("Username"),
        filters=[_strip],
        validators=[InputRequired(_("Choose a username.")), Length(min=3, max=32, message=_("Use 3 to 32 characters."))],
    )
    email = _email_field(_("Email"))
    time_zone = _browser_time_zone_field()

    def password_context(self) -> list[str]:
        return [self.username.data or "", self.email.data or ""]

    def validate_username(self, field) -> None:
        if not USERNAME_RE.fullmatch(field.data):
            raise ValidationError(_("Use only letters, digits, dots, dashes and underscores."))
        if canonical(field.data) == CLI_ACTOR:
            # The audit log names the command line so: an account of that name would pass for the operator there.
            raise ValidationError(_("That username is reserved. Choose another."))


def account_problem(username: str, email: str, password: str) -> str | None:
    """Say what is wrong with an account made outside a page (`flask users create`), by the sign-up form's own rules."""
    typed = MultiDict({"username": username, "email": email, "password": password, "confirm": password})
    form = RegisterForm(formdata=typed, meta={"csrf": False})
    if form.validate():
        return None
    return " ".join(f"{form[name].label.text}: {errors[0]}" for name, errors in form.errors.items())


class PasswordResetRequestForm(FlaskForm):
    login = StringField(
        _("Username or email"), filters=[_strip], validators=[InputRequired(_("Enter your username or email.")), Length(max=254)]
    )


class ResetPasswordForm(NewPasswordMixin, FlaskForm):
    """A new password through a reset link, and the second factor when two-factor is on (the route asks for it)."""

    code = _code_field(_("Code from your authenticator app, or a recovery code"), required=False)

    def __init__(self, *args, account_words: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.account_words = account_words
        self.password.label.text = _("New password")
        self.confirm.label.text = _("Repeat new password")

    def password_context(self) -> list[str]:
        return self.account_words


class NotificationsMixin:
    """What the owner is told about a secret by email; the account page sets what new secrets start with."""

    notify_opened = SelectField(_("Tell me when it's opened"), choices=NOTIFY_OPENED_CHOICES, default="first")
    notify_destroyed = BooleanField(_("Tell me if wrong passwords destroy it"), default=True)
    notify_unopened = BooleanField(_("Tell me if it expires without being opened"), default=True)


class LanguageAndTimeZoneForm(FlaskForm):
    """The account's language and time zone: its pages, printed cards and emails use them."""

    language = SelectField(_("Language"), choices=[SelectChoice(code, name) for code, name in i18n.LANGUAGES.items()])
    time_zone = SelectField(
        _("Time zone"),
        choices=[SelectChoice(zone, zone.replace("_", " ")) for zone in i18n.ZONE_CHOICES],
        validate_choice=False,
        validators=[AnyOf(i18n.TIME_ZONES, message=_("Choose a time zone from the list."))],
    )


class NotificationDefaultsForm(NotificationsMixin, FlaskForm):
    pass


class LoginForm(FlaskForm):
    login = StringField(_("Username or email"), filters=[_strip], validators=[InputRequired(_("Enter your username or email."))])
    password = PasswordField(_("Password"), validators=[InputRequired(_("Enter your password.")), Length(max=128)])
    remember = BooleanField(_("Keep me signed in for 14 days"))


class LoginCodeForm(FlaskForm):
    code = _code_field(_("Code from your authenticator app, or a recovery code"), required=True)


class ReauthForm(FlaskForm):
    """Proof that the person at the keyboard owns the account: the password, and a code when two-factor is on."""

    current_password = PasswordField(
        _("Current password"), validators=[InputRequired(_("Enter your current password.")), Length(max=128)]
    )
    code = _code_field(_("Code from your authenticator app, or a recovery code"), required=False)


class TwoFactorForm(ReauthForm):
    """Turning two-factor on: the password (so a stolen session cannot lock the owner out) and a code of the new key."""

    code = _code_field(_("Code from your authenticator app"), required=True)


class ChangePasswordForm(NewPasswordMixin, ReauthForm):
    keep_tokens = BooleanField(_("Keep my API tokens working"))

    def __init__(self, *args, account_words: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.account_words = account_words  # the username and email: a new password must not be built from them
        self.password.label.text = _("New password")
        self.confirm.label.text = _("Repeat new password")

    def password_context(self) -> list[str]:
        return self.account_words


class ChangeEmailForm(ReauthForm):
    email = _email_field(_("New email"))


class CreateTokenForm(ReauthForm):
    name = StringField(
        _("Name"), filters=[_strip], validators=[DataRequired(_("Name the token after the script that uses it.")), Length(max=64)]
    )
    lifetime = SelectField(_("Expires after"), choices=TOKEN_LIFETIME_CHOICES, default="90d")


class WebhookForm(ReauthForm):
    url = StringField(
        _("Address"),
        filters=[_strip],
        validators=[InputRequired(_("Enter the https:// address that should receive the events.")), Length(max=2000)],
    )


INVITATION_LIFETIME_CHOICES = [SelectChoice("1d", _("1 day")), SelectChoice("7d", _("7 days")), SelectChoice("30d", _("30 days"))]


class InvitationForm(ReauthForm):
    email = StringField(
        _("For one address only (optional)"),
        filters=[_strip],
        validators=[Optional(), Length(max=MAX_EMAIL_LENGTH), Email(_("Enter a valid email address.")), _fits_once_canonical],
    )
    lifetime = SelectField(_("Expires after"), choices=INVITATION_LIFETIME_CHOICES, default="7d")


class EmptyForm(FlaskForm):
    """A form with only a CSRF token, for POST-only buttons."""


# --- secrets --------------------------------------------------------------------------------------------------------


def _content_or_files(form, field) -> None:
    """The content may be left empty when a file is attached."""
    if not (field.data or "").strip() and not form.has_files():
        raise StopValidation(_("Write the secret to share, or attach a file."))


def _validate_content_size(form, field) -> None:
    limit = form.limits.content_bytes
    if field.data and len(field.data.encode("utf-8")) > limit:
        raise ValidationError(_("Keep it under %(size)d KB.", size=limit // 1024))


class SecretSettingsForm(FlaskForm):
    """Settings an owner picks when creating a secret and may change later."""

    title = StringField(
        _("Title"),
        filters=[_strip],
        validators=[
            DataRequired(_("Give it a title, so you both know what it is.")),
            Length(max=100, message=_("Use at most 100 characters.")),
        ],
    )
    expiration = SelectField(_("Expires after"), choices=EXPIRATION_CHOICES, default="24h")
    custom_amount = IntegerField(_("Custom time"), validators=[Optional()])
    custom_unit = SelectField(_("Unit"), choices=CUSTOM_UNIT_CHOICES, default="hours")
    blur_level = IntegerField(
        _("Blur"),
        default=10,
        validators=[InputRequired(_("Choose a blur level.")), NumberRange(min=0, max=20, message=_("Choose 0 to 20."))],
    )
    max_views = IntegerField(
        _("Maximum views"), validators=[Optional(), NumberRange(min=1, max=100, message=_("Choose 1 to 100, or leave it blank."))]
    )

    def __init__(self, *args, limits: SecretLimits, **kwargs):
        super().__init__(*args, **kwargs)
        self.limits = limits

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # Optional() ends the custom amount's checks when it is left out: ask for it here, so lifetime() has a number.
        if self.expiration.data == "custom" and self.custom_amount.data is None and not self.custom_amount.errors:
            self.custom_amount.errors.append(_("Enter how long it should last."))
            return False
        # Likewise a blank number of views (unlimited), which a SECRET_MAX_VIEWS cap refuses.
        if self.limits.max_views is not None and self.max_views.data is None and not self.max_views.errors:
            self.max_views.errors.append(self.views_cap_message())
            return False
        return valid

    def validate_expiration(self, field) -> None:
        preset = EXPIRATION_PRESETS.get(field.data)
        if preset is not None and preset > self.limits.max_lifetime:
            longest = duration_text(self.limits.max_lifetime)
            raise ValidationError(_("This SecureShare keeps secrets at most %(longest)s. Choose less.", longest=longest))

    def validate_max_views(self, field) -> None:
        if self.limits.max_views is not None and field.data > self.limits.max_views:
            raise ValidationError(self.views_cap_message())

    def views_cap_message(self) -> str:
        most = self.limits.max_views
        return lazy_ngettext(
            "This SecureShare allows at most %(num)d view: choose 1 to %(num)d.",
            "This SecureShare allows at most %(num)d views: choose 1 to %(num)d.",
            most,
        )

    def validate_custom_amount(self, field) -> None:
        if self.expiration.data != "custom" or field.data is None:
            return  # not wanted, not a number (already said), or left out (validate() says so)
        # Compare whole seconds as Python ints: a huge amount would overflow a float or a timedelta first.
        seconds = field.data * int(CUSTOM_UNITS.get(self.custom_unit.data, CUSTOM_UNITS["hours"]).total_seconds())
        low, high = self.limits.min_lifetime, self.limits.max_lifetime
        if not int(low.total_seconds()) <= seconds <= int(high.total_seconds()):
            raise ValidationError(_("Choose between %(low)s and %(high)s.", low=duration_text(low), high=duration_text(high)))

    def lifetime(self) -> timedelta | None:
        """Return the chosen lifetime, or None when the owner keeps the current expiry."""
        if self.expiration.data == "custom":
            return self.custom_amount.data * CUSTOM_UNITS[self.custom_unit.data]
        return EXPIRATION_PRESETS.get(self.expiration.data)


def _secret_password_field(label: str, required: bool) -> PasswordField:
    presence = InputRequired(_("Choose a password for this secret.")) if required else Optional()
    return PasswordField(label, validators=[presence, Length(min=8, max=128, message=_("Use 8 to 128 characters."))])


class CreateSecretForm(NotificationsMixin, SecretSettingsForm):
    content = TextAreaField(_("Secret"), validators=[_content_or_files, _validate_content_size])
    # Never read here: the upload's sink has sealed each file as it arrived (guards.UploadRequest).
    files = MultipleFileField(_("Files"))

    def __init__(self, *args, files_attached: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.files_attached = files_attached  # the API's files come beside its JSON, not in a field

    def has_files(self) -> bool:
        return self.files_attached or (self.files is not None and any(upload.filename for upload in self.files.data or []))
    password = _secret_password_field(_("Password for this secret"), required=True)
    confirm = PasswordField(
        _("Repeat password"), validators=[InputRequired(_("Repeat the password.")), EqualTo("password", PASSWORDS_DIFFER)]
    )


class EditSecretForm(NotificationsMixin, SecretSettingsForm):
    expiration = SelectField(
        _("Expires"), choices=[SelectChoice("keep", _("Keep the current expiry")), *EXPIRATION_CHOICES], default="keep"
    )
    current_password = PasswordField(_("Current password of this secret"), validators=[Optional()])
    content = TextAreaField(_("New secret"), validators=[Optional(), _validate_content_size])
    password = _secret_password_field(_("New password"), required=False)
    confirm = PasswordField(_("Repeat new password"), validators=[EqualTo("password", PASSWORDS_DIFFER)])

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if (self.content.data or self.password.data) and not self.current_password.data:
            self.current_password.errors.append(_("Enter the current password to replace the secret or its password."))
            return False
        return valid


class UnlockForm(FlaskForm):
    """The recipient's password. Its CSRF token is not the session's: guards.check_unlock_form checks it."""

    class Meta:
        csrf = False

    password = PasswordField(_("Password"), validators=[InputRequired(_("Enter the password you were given.")), Length(max=128)])


class ApiExpiryMixin:
    """`expires_in`, in seconds: the API's simple way to set an expiry (its bounds are checked by the API schema)."""

    expires_in = IntegerField("Expires in (seconds)", validators=[Optional()])

    def validate_expires_in(self, field) -> None:
        if field.data is not None and self.expiration.raw_data:
            raise ValidationError("Send either expires_in or expiration, not both.")  # the API's only: English

    def lifetime(self) -> timedelta | None:
        if self.expires_in.data is not None:
            return timedelta(seconds=self.expires_in.data)
        return super().lifetime()


class ApiNotificationsLeftOut:
    """Secrets made by the API are told about as the account's defaults say (the account page sets them)."""

    notify_opened = notify_destroyed = notify_unopened = None


class AnonymousSecretForm(ApiNotificationsLeftOut, CreateSecretForm):
    """The create form for a visitor without an account: nobody to notify, no files (the limits are smaller, see
    app.py)."""

    files = None


class ApiCreateSecretForm(ApiNotificationsLeftOut, ApiExpiryMixin, CreateSecretForm):
    files = None
    # A script types nothing, so the confirmation is optional; when it is sent it must match.
    confirm = PasswordField(_("Repeat password"), validators=[Optional(), EqualTo("password", PASSWORDS_DIFFER)])


class ApiEditSecretForm(ApiNotificationsLeftOut, ApiExpiryMixin, EditSecretForm):
    """The edit form's settings; the API never replaces the content or the password."""

"""SecureShare's messages, the Flask side: emails rendered from templates/email/ and webhook calls built from a
secret's events, queued in the outbox (outbox.py) with the change that caused them, and tried as soon as the answer
has gone out; `flask --app app mail deliver` retries what is left.

What other rooms call (each only adds rows to db.session: the caller's commit sends them on their way):
    notify.tell(user, "password_changed", **context)   a notice to the account's address (templates/email/<kind>.txt)
    notify.email(address, "verify_email", **context)    any email, to any address
    notify.announce(session, notice)                     the vault's hook: a secret's event to its owner
"""

import json
import smtplib
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import partial

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_mailman import EmailMessage
from flask_mailman.backends import smtp
from sqlalchemy import inspect
from sqlalchemy.orm import Session

import accounts
import api_schema
import i18n
import outbox
import timetext
import vault
import webhooks
from extensions import db, mail
from schema import OutboxMessage, Secret, User, WebhookEndpoint

OPENED_CHOICES = ("never", "first", "every")
# A secret's events as webhook event names; emails follow each secret's own choices, webhooks get every event.
WEBHOOK_EVENTS = {"opened": "secret.opened", "destroyed": "secret.destroyed", "expired": "secret.expired_unopened"}
PING_EVENT = "ping"


# --- sending over SMTP --------------------------------------------------------------------------------------------------------


class _StartTlsChecked(smtplib.SMTP):
    """smtplib's SMTP whose STARTTLS checks the server's certificate: without a context, smtplib checks nothing."""

    def __init__(self, context, *args, **kwargs):
        self._checked_context = context
        super().__init__(*args, **kwargs)

    def starttls(self, context=None):
        return super().starttls(context=context or self._checked_context)


class CheckedSmtpEmailBackend(smtp.EmailBackend):
    """Flask-Mailman's SMTP backend with the server's certificate and name checked for STARTTLS as for TLS, against the
    system's CAs plus MAIL_CA_FILE (Flask-Mailman hands starttls no context, so it would take any certificate)."""

    @property
    def ssl_context(self):
        return outbox.tls_context(current_app.config["MAIL_CA_FILE"])

    @property
    def connection_class(self):
        return smtplib.SMTP_SSL if self.use_ssl else partial(_StartTlsChecked, self.ssl_context)


def mail_enabled() -> bool:
    return current_app.config["MAIL_BACKEND"] is not None


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def _send_email(payload: dict) -> None:
    """Send one email now.

    :raise outbox.NotDelivered: with the server's refusal or the connection's failure, naming the domain only.
    """
    domain = _domain_of(payload["to"])
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    try:
        with mail.get_connection() as connection:  # closed whatever happens, a refused message too
            EmailMessage(payload["subject"], payload["body"], sender, [payload["to"]], connection=connection).send()
    except smtplib.SMTPRecipientsRefused:
        raise outbox.NotDelivered(f"the mail server refused the recipient at {domain}", retry=False) from None
    except smtplib.SMTPResponseException as error:
        raise outbox.NotDelivered(f"the mail server answered {error.smtp_code} for a message to {domain}") from None
    except (smtplib.SMTPException, OSError) as error:
        raise outbox.NotDelivered(f"{type(error).__name__} while sending to {domain}") from None


def send_test_email(address: str) -> None:
    """Send a test message at once, outside the outbox (`flask mail test`); raise NotDelivered on failure."""
    _send_email(_rendered_email(address, "mail_test"))


# --- rendering -------------------------------------------------------------------------------------------------------------


def _site_url() -> str:
    """Return the site's address for links in messages: PUBLIC_BASE_URL, never a request's Host header when it is set;
    without it (development, tests) this request's trusted host, or the first trusted host outside a request."""
    if base := current_app.config["PUBLIC_BASE_URL"]:
        return base
    if has_request_context():
        return request.host_url.rstrip("/")
    return f"http://{(current_app.trusted_hosts or ('localhost',))[0]}"


def link(endpoint: str, **values) -> str:
    """Return the full address of a page, for a message (built without a request: the purge sends some)."""
    return _site_url() + current_app.url_map.bind("localhost").build(endpoint, values)


def _rendered_email(address: str, kind: str, **context) -> dict:
    """Render templates/email/<kind>.txt: its `subject` block and its whole text, in the language and time zone of the
    account it is for (`user`), whoever's request caused it; without one, in this request's language."""
    template = current_app.jinja_env.get_template(f"email/{kind}.txt")
    values = {
        "site": _site_url(),
        "account_link": link("web.account"),
        "exact_time": timetext.exact_time,
        "duration_text": timetext.duration_text,
        "device_words": i18n.device_words,
        **context,
    }
    user = context.get("user")
    with i18n.speaking_to(user) if user is not None else nullcontext():
        subject = "".join(template.blocks["subject"](template.new_context(values))).strip()
        return {"to": address, "subject": subject, "body": template.render(values)}


# --- queueing --------------------------------------------------------------------------------------------------------------


def _queued(row) -> None:
    """Remember a row this request queued, so it is tried once the answer has gone out."""
    if has_request_context():
        g.setdefault("outbox_rows", []).append(row)


def _keys() -> vault.KeyRing:
    return current_app.keys


def email(
    address: str, kind: str, deliver_by: datetime | None = None, session: Session | None = None, **context
) -> OutboxMessage | None:
    """Queue an email (None when this site sends none); `deliver_by` drops it once the link it carries has died."""
    if not mail_enabled():
        return None
    payload = _rendered_email(address, kind, **context)
    message = outbox.enqueue(session or db.session, _keys(), outbox.EMAIL, kind, payload, current_app.clock(), deliver_by)
    _queued(message)
    return message


def tell(user: User, kind: str, session: Session | None = None, **context) -> OutboxMessage | None:
    """Queue a notice to the account's address, when it may get mail (confirmed, or verification off)."""
    if not accounts.email_usable(user, current_app.config["EMAIL_VERIFICATION"]):
        return None
    return email(user.email, kind, session=session, user=user, **context)


def _call_webhooks(session: Session, user_id: int, event: str, data: dict, now: datetime) -> None:
    """Queue one call per endpoint of the user."""
    for endpoint in webhooks.endpoints_of(session, user_id):
        body = {"event": event, "occurred_at": now.isoformat(), "data": data}
        message = outbox.enqueue(session, _keys(), outbox.WEBHOOK, event, body, now, endpoint_id=endpoint.id)
        _queued(message)


def ping_webhook(endpoint_id: int, username: str) -> None:
    """Queue a test call to one endpoint."""
    now = current_app.clock()
    body = {"event": PING_EVENT, "occurred_at": now.isoformat(), "data": {"username": username}}
    _queued(outbox.enqueue(db.session, _keys(), outbox.WEBHOOK, PING_EVENT, body, now, endpoint_id=endpoint_id))


# --- a secret's events: the vault's announcer ----------------------------------------------------------------------------------


def _emails_owner(secret: Secret, notice: vault.Notice) -> bool:
    """Tell whether the secret's own choices want this event emailed to its owner."""
    match notice.event:
        case "opened":
            return secret.notify_opened == "every" or (secret.notify_opened == "first" and secret.view_count == 1)
        case "destroyed":
            return secret.notify_destroyed
        case "expired":
            return secret.notify_unopened
    return False


def _secret_facts(secret: Secret, title: str | None) -> dict:
    """What a message says about a secret: its owner's title, number and counts; never its content or link."""
    return api_schema.WEBHOOK_SECRET.build(
        number=secret.id,
        title=title,
        status=secret.status,
        view_count=secret.view_count,
        max_views=secret.max_views,
        failed_attempts=secret.failed_attempts,
        expires_at=secret.expires_at.isoformat(),
    )


def announce(session: Session, notice: vault.Notice) -> None:
    """Queue what the owner asked to hear of a secret's event, in the vault's transaction (it commits them).

    A failure here is logged and swallowed: a notice must never stop a secret from ending.
    """
    try:
        _announce(session, notice)
    except Exception:
        current_app.logger.exception("could not queue the %s notice of secret %s", notice.event, notice.secret_id)


def _announce(session: Session, notice: vault.Notice) -> None:
    secret = session.get(Secret, notice.secret_id, populate_existing=True)
    if secret.owner_id is None:
        return  # shared without an account: nobody to tell
    if notice.event == "expired" and secret.view_count:
        return  # only an expiry nobody saw coming is news
    facts = _secret_facts(secret, vault.title_of(_keys(), secret))
    visitor = notice.visitor or vault.Visitor()
    if _emails_owner(secret, notice):
        context = {"secret": facts, "at": notice.at, "user_agent": visitor.user_agent, "network": visitor.ip_prefix}
        tell(  # in the owner's language, not the recipient's whose unlock caused it
            secret.owner,
            f"secret_{notice.event}",
            session=session,
            page=link("web.secret_by_number", number=secret.id),
            **context,
        )
    device = accounts.device_name(visitor.user_agent)  # in English, as the API's words
    seen_by = api_schema.WEBHOOK_VISITOR.build(device=device, network=visitor.ip_prefix) if notice.visitor else None
    data = {"secret": facts, "visitor": seen_by}
    _call_webhooks(session, secret.owner_id, WEBHOOK_EVENTS[notice.event], data, notice.at)


# --- delivering ----------------------------------------------------------------------------------------------------------------


def _call_policy() -> webhooks.CallPolicy:
    settings = current_app.config
    return webhooks.CallPolicy(settings["WEBHOOK_ALLOW_PRIVATE"], settings["WEBHOOK_CA_FILE"], settings["WEBHOOK_TIMEOUT"])


def _call_webhook(message: outbox.Message) -> None:
    """Sign and send one webhook call, noting its outcome on the endpoint for its owner."""
    endpoint = db.session.get(WebhookEndpoint, message.endpoint_id)
    found = webhooks.opened(_keys(), endpoint) if endpoint is not None else None
    if found is None:
        raise outbox.NotDelivered("its endpoint is gone or its server key was removed", retry=False)
    url, secret = found
    body = json.dumps({"delivery": message.id, **message.payload}).encode()
    now = current_app.clock()
    headers = {
        webhooks.SIGNATURE_HEADER: webhooks.signature(secret, int(now.timestamp()), body),
        webhooks.EVENT_HEADER: message.kind,
        webhooks.DELIVERY_HEADER: str(message.id),
        "User-Agent": "SecureShare-Webhooks",
    }
    try:
        webhooks.post(_call_policy(), url, body, headers)
    except outbox.NotDelivered as refusal:
        webhooks.record_outcome(db.session, endpoint.id, refusal.reason, now)
        raise
    webhooks.record_outcome(db.session, endpoint.id, "delivered", now)


def _transport(message: outbox.Message) -> None:
    if message.channel == outbox.EMAIL:
        _send_email(message.payload)
    else:
        _call_webhook(message)


def schedule() -> outbox.Schedule:
    settings = current_app.config
    return outbox.Schedule(
        give_up=timedelta(hours=settings["OUTBOX_GIVE_UP_HOURS"]), keep=timedelta(hours=settings["OUTBOX_KEEP_HOURS"])
    )


def deliver(ids: list[int]) -> outbox.DeliveryReport:
    """Deliver these queued messages, where still due."""
    return outbox.deliver(db.session, _keys(), schedule(), _transport, current_app.clock, ids)


def _deliver_in_background(app: Flask, ids: list[int]) -> None:
    with app.app_context():
        try:
            deliver(ids)
        except Exception:
            app.logger.exception("delivering messages %s failed; `flask mail deliver` will retry them", ids)


def after_response(job: Callable[[], None]) -> None:
    """Run `job` in the app's context once this answer has gone out (how long it takes never shows in the answer)."""
    app = current_app._get_current_object()
    g.setdefault("after_response_jobs", []).append(partial(_in_app_context, app, job))


def _in_app_context(app: Flask, job: Callable[[], None]) -> None:
    with app.app_context():
        try:
            job()
        except Exception:
            app.logger.exception("a job after the answer failed")


def send_after_response(response: Response) -> Response:
    """After-request hook: once the answer has gone out, run the jobs and try the messages this request committed.

    A message of a request that failed was rolled back with it: it has no row, and nothing is sent.
    """
    committed = [inspect(row).identity[0] for row in g.pop("outbox_rows", []) if inspect(row).has_identity]
    app = current_app._get_current_object()
    for job in g.pop("after_response_jobs", []):
        response.call_on_close(job)
    if committed:
        response.call_on_close(partial(_deliver_in_background, app, committed))
    return response

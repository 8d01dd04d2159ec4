"""Commands for operators: `flask --app app init-db | purge | keys status | keys rewrap | mail test | mail deliver |
users list | create | promote | demote | disable | enable | delete | reset-two-factor`."""

import shutil
from datetime import timedelta
from functools import partial
from pathlib import Path

import click
import flask_migrate
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

import accounts
import administration
import audit
import forms
import notify
import outbox
import vault
import webhooks
from extensions import db

FIRST_REVISION = "0001"  # migrations/versions/0001_initial_schema.py: the schema init-db made before migrations
OLD_QR_FOLDER = "qrcodes"  # under static/: QR images of share links, kept there before revision 0004


def _predates_migrations() -> bool:
    """Tell whether the database was made by init-db before migrations existed: tables, but no alembic_version."""
    tables = set(inspect(db.engine).get_table_names())
    return "user" in tables and "alembic_version" not in tables


@click.command("init-db")
@with_appcontext
def init_db():
    """Bring the database up to the newest schema by running the migrations (safe to run again)."""
    try:
        if _predates_migrations():
            flask_migrate.stamp(revision=FIRST_REVISION)
            click.echo(f"Found tables made before migrations: recorded them as revision {FIRST_REVISION}, data kept.")
        flask_migrate.upgrade()
    except OperationalError as error:  # unreachable, wrong credentials: the driver's words, never the URL
        raise click.ClickException(f"The database could not be migrated: {error.orig}") from None
    if (old_qr_folder := Path(current_app.static_folder) / OLD_QR_FOLDER).exists():
        shutil.rmtree(old_qr_folder)
        click.echo("Removed the QR images earlier versions kept in static/qrcodes (they are drawn in memory now).")
    click.echo("Database ready.")


@click.command("purge")
@with_appcontext
def purge():
    """Expire due secrets, delete records past retention, erase them on disk (run it every minute; any host may)."""
    now = current_app.clock()
    report = vault.purge(db.session, current_app.policy, now)
    stale = accounts.end_stale_sessions(db.session, current_app.session_limits, now)
    accounts.delete_expired_links(db.session, now)
    dropped = audit.purge(db.session, timedelta(days=current_app.config["AUDIT_RETENTION_DAYS"]), now)
    click.echo(f"Expired {report.expired}, purged {report.purged}. Ended {stale} stale sessions. Dropped {dropped} audit events.")
    if report.tries_given_back:
        click.echo(f"Gave back the tries held on {report.tries_given_back} secrets by workers that stopped mid-unlock.")


keys = AppGroup("keys", help="Server keys: what each still protects, and moving labels to the newest.")


@keys.command("status")
def keys_status():
    """Per key id: the live secrets it protects and when the last ends, the labels and the two-factor keys it seals."""
    ring = current_app.keys
    two_factor = accounts.two_factor_keys_by_key_id(db.session)
    endpoints = webhooks.endpoints_by_key_id(db.session)
    messages = outbox.sealed_by_key_id(db.session)
    uses = {use.key_id: use for use in vault.key_usage(db.session, ring, current_app.clock())}
    for key_id in [*uses, *sorted((set(two_factor) | set(endpoints) | set(messages)) - set(uses))]:
        use = uses.get(key_id, vault.KeyUse(key_id, False, 0, None, 0))
        state = "newest" if key_id == ring.newest_id else "configured" if use.configured else "NOT configured"
        last = f", the last ends {use.last_ends:%Y-%m-%d %H:%M} UTC" if use.last_ends else ""
        click.echo(
            f"{key_id} ({state}): {use.live_secrets} live secrets{last}; labels of {use.labels} records; "
            f"two-factor keys of {two_factor.get(key_id, 0)} accounts; {endpoints.get(key_id, 0)} webhooks; "
            f"{messages.get(key_id, 0)} messages waiting"
        )


@keys.command("rewrap")
def keys_rewrap():
    """Re-seal every title and share id copy under the newest key (content moves at its next right unlock)."""
    ring = current_app.keys
    moved, stuck = vault.rewrap(db.session, ring)
    click.echo(f"Re-sealed the labels of {moved} records under {ring.newest_id}; {stuck} need a removed key.")
    moved, stuck = accounts.rewrap_totp_keys(db.session, ring)
    click.echo(f"Re-sealed {moved} two-factor keys under {ring.newest_id}; {stuck} need a removed key.")
    moved, stuck = webhooks.rewrap_endpoints(db.session, ring)
    click.echo(f"Re-sealed {moved} webhooks under {ring.newest_id}; {stuck} need a removed key.")


mail = AppGroup("mail", help="Email and webhooks: send a test message, deliver what waits in the outbox.")
DELIVERY_BATCH = 200


@mail.command("test")
@click.argument("address")
def mail_test(address: str):
    """Send one test email to ADDRESS now, through the configured mail server."""
    if not notify.mail_enabled():
        raise click.ClickException("This SecureShare sends no email: set MAIL_SERVER (see docs/configuration.md).")
    try:
        notify.send_test_email(address)
    except outbox.NotDelivered as refusal:
        raise click.ClickException(f"Not sent: {refusal.reason}.") from None
    click.echo(f"Sent a test message to {address} through {current_app.config['MAIL_SERVER'] or 'the development stand-in'}.")


@mail.command("deliver")
def mail_deliver():
    """Deliver what waits in the outbox, retrying failures with back-off (run it every minute; any host may)."""
    report = outbox.DeliveryReport()
    while ids := outbox.due_ids(db.session, current_app.clock(), DELIVERY_BATCH):
        if not report.add(notify.deliver(ids)):
            break  # every one was taken by another deliverer meanwhile
    removed = outbox.delete_finished(db.session, notify.schedule(), current_app.clock())
    waiting = outbox.waiting(db.session)
    click.echo(
        f"Sent {report.sent}, to retry {report.retrying}, abandoned {report.abandoned}; "
        f"{waiting} waiting; removed {removed} finished messages."
    )


users = AppGroup("users", help="Accounts, for operators without a browser: list, create, the admin role, disable, delete.")


def _user_named(name: str):
    """Return the account a username or email names. :raise ClickException: when there is none."""
    return administration.find_user(db.session, name) or _fail(f"No account is called {name!r}.")


def _fail(message: str):
    raise click.ClickException(message)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


@users.command("list")
@click.option("--search", default="", help="Only usernames or email addresses starting with this.")
@click.option("--after", type=click.IntRange(1, 2147483647), help="The next page: accounts older than this id.")
def users_list(search: str, after: int | None):
    """List accounts, newest first, 50 at a time: never a secret's title, content or link."""
    rows = administration.users_page(db.session, current_app.clock(), search, after)
    click.echo("id\tusername\temail\tadmin\tverified\ttwo-factor\tdisabled\tactive secrets\tlast sign-in")
    for row in rows:
        last = f"{row.last_login_at:%Y-%m-%d %H:%M}" if row.last_login_at else "never"
        flags = "\t".join(_yes_no(flag) for flag in (row.is_admin, row.verified, row.two_factor, row.disabled))
        click.echo(f"{row.id}\t{row.username}\t{row.email}\t{flags}\t{row.active_secrets}\t{last}")
    if len(rows) == administration.USERS_PAGE_SIZE:
        click.echo(f"More: --after {rows[-1].id}")


@users.command("create")
@click.argument("username")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
@click.password_option(help="Asked for when not given (typed twice, never shown).")
def users_create(username: str, email: str, admin: bool, password: str):
    """Make an account (how the first administrator, or anyone while sign-up is closed, gets one)."""
    problem = forms.account_problem(username, email, password)
    if problem:
        _fail(problem)
    made = administration.create_user(
        db.session, current_app.passwords, username, email, password, admin, audit.COMMAND_LINE, current_app.clock()
    )
    if isinstance(made, accounts.Taken):
        _fail(f"Taken already: {' and '.join(made.fields)}.")
    click.echo(f"Made {'the administrator' if admin else 'the account'} {made.username}.")


def _change(action, name: str, done: str, already: str) -> None:
    user = _user_named(name)
    if action(db.session, user, audit.COMMAND_LINE, current_app.clock()):
        click.echo(done.format(user.username))
    else:
        click.echo(already.format(user.username))


@users.command("promote")
@click.argument("name")
def users_promote(name: str):
    """Make the account NAME (username or email) an administrator."""
    _change(administration.set_admin, name, "{} is an administrator now.", "{} was an administrator already.")


@users.command("demote")
@click.argument("name")
def users_demote(name: str):
    """Take the admin role from NAME."""
    _change(partial(administration.set_admin, admin=False), name, "{} is an administrator no more.", "{} was not one.")


@users.command("disable")
@click.argument("name")
def users_disable(name: str):
    """Disable NAME: its sessions and API tokens end, and its secrets cannot be opened until it is enabled."""
    done = "Disabled {}: signed out everywhere, API tokens revoked, secrets held."
    _change(administration.disable, name, done, "{} was disabled already.")


@users.command("enable")
@click.argument("name")
def users_enable(name: str):
    """Enable NAME again: it may sign in, and its secrets that are still due open again."""
    _change(administration.enable, name, "Enabled {}.", "{} was not disabled.")


@users.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this account and erase every secret it owns?")
def users_delete(name: str):
    """Delete NAME and erase every secret it owns, as the account's own deletion does."""
    user = _user_named(name)
    username = user.username
    erased = administration.delete_user(db.session, user, audit.COMMAND_LINE, current_app.clock())
    click.echo(f"Deleted {username} and erased its {erased} secrets.")


@users.command("reset-two-factor")
@click.argument("name")
def users_reset_two_factor(name: str):
    """Turn two-factor sign-in off for NAME (lost phone and codes); they are told by email where mail is set up."""
    user = _user_named(name)
    if not user.two_factor_on:
        click.echo(f"{user.username} has no two-factor sign-in.")
        return
    notify.tell(user, "two_factor_reset")  # committed with the change
    administration.reset_two_factor(db.session, user, audit.COMMAND_LINE, current_app.clock())
    click.echo(f"Turned off two-factor sign-in for {user.username} and signed them out everywhere.")


COMMANDS = (init_db, purge, keys, mail, users)

"""Commands for operators: `flask --app app init-db | purge | keys status | keys rewrap`."""

import shutil
from pathlib import Path

import click
import flask_migrate
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

import accounts
import vault
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
    click.echo(f"Expired {report.expired}, purged {report.purged}. Ended {stale} stale sessions.")
    if report.tries_given_back:
        click.echo(f"Gave back the tries held on {report.tries_given_back} secrets by workers that stopped mid-unlock.")


keys = AppGroup("keys", help="Server keys: what each still protects, and moving labels to the newest.")


@keys.command("status")
def keys_status():
    """Per key id: the live secrets it protects and when the last ends, the labels and the two-factor keys it seals."""
    ring = current_app.keys
    two_factor = accounts.two_factor_keys_by_key_id(db.session)
    for use in vault.key_usage(db.session, ring, current_app.clock()):
        state = "newest" if use.key_id == ring.newest_id else "configured" if use.configured else "NOT configured"
        last = f", the last ends {use.last_ends:%Y-%m-%d %H:%M} UTC" if use.last_ends else ""
        click.echo(
            f"{use.key_id} ({state}): {use.live_secrets} live secrets{last}; labels of {use.labels} records; "
            f"two-factor keys of {two_factor.pop(use.key_id, 0)} accounts"
        )
    for key_id, count in two_factor.items():  # named by two-factor keys alone: a removed key
        click.echo(f"{key_id} (NOT configured): 0 live secrets; labels of 0 records; two-factor keys of {count} accounts")


@keys.command("rewrap")
def keys_rewrap():
    """Re-seal every title and share id copy under the newest key (content moves at its next right unlock)."""
    ring = current_app.keys
    moved, stuck = vault.rewrap(db.session, ring)
    click.echo(f"Re-sealed the labels of {moved} records under {ring.newest_id}; {stuck} need a removed key.")
    moved, stuck = accounts.rewrap_totp_keys(db.session, ring)
    click.echo(f"Re-sealed {moved} two-factor keys under {ring.newest_id}; {stuck} need a removed key.")


COMMANDS = (init_db, purge, keys)

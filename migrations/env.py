"""Alembic environment for SecureShare: runs against the app's own engine and models (schema.py)."""

import logging
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from flask import current_app

from schema import UTCDateTime

# Any fixed number: the PostgreSQL advisory lock that lets one migration run at a time.
MIGRATION_LOCK_KEY = 0x5EC5_4A4E

config = context.config
# On the command line nothing has set up logging yet: use alembic.ini's. A host that has (the tests) keeps its own.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_settings = current_app.extensions["migrate"]
target_metadata = migrate_settings.db.metadata


def render_item(type_, obj, autogen_context):
    """Write schema.UTCDateTime into revisions as the column type it stores, so revisions never import schema."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def skip_empty_revision(_context, _revision, directives) -> None:
    """Write no revision file when autogenerate finds nothing to change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`flask db upgrade --sql`); the URL only picks the dialect."""
    context.configure(
        url=migrate_settings.db.engine.url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_item=render_item,
        **migrate_settings.configure_args,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the app's engine, in one transaction where the database allows it."""
    settings = {"process_revision_directives": skip_empty_revision, "render_item": render_item}
    settings.update(migrate_settings.configure_args)
    with migrate_settings.db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **settings)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several app hosts may start at once: one migrates, the others wait, then find nothing to do.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Alembic environment for tickwise.

URL resolution (first wins): ``config.attributes["url"]`` (set by ``tickwise.bootstrap.database.migrate``),
``alembic -x url=...``, ``DATABASE_URL``, then the tickwise configuration (which starts the embedded
cluster when no URL is configured). Each migration runs in its own transaction
(``transaction_per_migration=True``) so an ``autocommit_block`` only commits its own revision's work.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from tickwise.adapters.timescale.schema import metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        url = os.environ.get("DATABASE_URL", "")
    if not url:
        from tickwise.bootstrap.database import database_url
        from tickwise.config import load_settings

        url = database_url(load_settings())
    return sqlalchemy_url(str(url))


def sqlalchemy_url(url: str) -> str:
    """Use the psycopg2 driver for a plain ``postgresql://`` (or ``postgres://``) URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Keep TimescaleDB-owned objects and dynamic feature columns out of autogenerate."""
    schema = getattr(obj, "schema", None) or getattr(getattr(obj, "table", None), "schema", None)
    if schema and (schema.startswith("_timescaledb") or schema == "timescaledb_information"):
        return False
    if type_ == "table" and name and name.startswith("_hyper_"):
        return False
    if type_ == "index" and name and name.endswith("_time_idx"):
        return False
    # Feature columns are added at write time (ALTER TABLE features ADD COLUMN ...).
    return not (type_ == "column" and reflected and getattr(obj.table, "name", None) == "features")


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        transaction_per_migration=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        _secure_roles(connection)
    engine.dispose()


def _secure_roles(connection: Any) -> None:
    """After migrating as a superuser: the app role owns what was created, passwords from the env."""
    from sqlalchemy import text

    from tickwise.adapters.timescale import roles

    if not connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
        return
    # The raw cursor: these statements hold % and : that the driver/SQLAlchemy would read as parameters.
    cursor = connection.connection.cursor()
    cursor.execute(roles.hand_over_sql())
    for role, password in roles.passwords_from_environment():
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
        if exists:
            cursor.execute(roles.set_password_sql(role, password))
    cursor.close()
    connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Alembic environment: the URL comes from Settings (HERALD_DATABASE_URL) unless given."""

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
config.set_main_option(
    "sqlalchemy.url",
    make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False),
)
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

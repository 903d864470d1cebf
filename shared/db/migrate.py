"""Create the database if missing and migrate it to head: `python -m shared.db.migrate`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from shared.config import Settings
from shared.db.engine import ensure_database, make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def rebuild(database_url: str) -> None:
    """Drop everything in the database and migrate it afresh (tests, demo data, benches)."""
    ensure_database(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    finally:
        engine.dispose()
    upgrade(database_url)


def upgrade(database_url: str) -> None:
    """Create the database if needed and migrate it to head."""
    ensure_database(database_url)
    command.upgrade(alembic_config(database_url), "head")


if __name__ == "__main__":
    upgrade(Settings.from_env().database_url)

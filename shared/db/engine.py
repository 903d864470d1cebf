"""make_engine(database_url) and database creation."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url


def make_engine(database_url: str, pool_size: int = 5) -> Engine:
    """An engine that survives PostgreSQL restarts (pre-ping) on the psycopg2 driver."""
    url = make_url(database_url).set(drivername="postgresql+psycopg2")
    return create_engine(url, pool_size=pool_size, max_overflow=5, pool_pre_ping=True)


def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if missing; True when it was created."""
    url = make_url(database_url).set(drivername="postgresql+psycopg2")
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            return not exists
    finally:
        admin.dispose()

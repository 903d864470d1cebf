"""Markers by folder, loopback test settings, a migrated test database, random_suffix()."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from sandbox.broker import MADE, delete_vhost, reset_vhost
from shared.config import Settings
from shared.db.engine import make_engine
from shared.db.migrate import rebuild

TEST_DATABASE_URL = os.environ.get(
    "HERALD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_test"
)
TEST_VHOST = os.environ.get("HERALD_TEST_VHOST", "herald_test")
TEST_AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}"
WRITE_TOKEN = "test-write-token"
READ_TOKEN = "test-read-token"
RECEIPTS_TOKEN = "test-receipts-token"
TABLES = (
    "message",
    "campaign_progress",
    "campaign",
    "client",
    "outbox",
    "channel_release",
    "summary_report",
    "notification",
    "notification_count",
    "template",
    "early_receipt",
    "webhook",
    "webhook_event",
    "webhook_attempt",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).resolve().parent
    for item in items:
        # The layer is the first folder under tests/, however deep the module sits.
        layer = Path(str(item.fspath)).resolve().relative_to(tests_root).parts[0]
        if layer in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, layer))
        elif layer in ("faults", "cluster"):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)
        elif layer == "browser":
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


def random_suffix() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env(
        {
            "HERALD_DATABASE_URL": TEST_DATABASE_URL,
            "HERALD_AMQP_URL": TEST_AMQP_URL,
            "HERALD_RETRY_DELAYS_MS": "1000,2000",
            "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write,{READ_TOKEN}:read,{RECEIPTS_TOKEN}:receipts",
            "HERALD_WEBHOOK_ALLOW_PRIVATE": "true",
        },
        env_file=Path("/nonexistent"),
    )


@pytest.fixture(scope="session")
def migrated_engine(settings: Settings) -> Iterator[Engine]:
    """The test database, rebuilt from the migrations once per run."""
    rebuild(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    """The migrated test database, emptied before each test."""
    with migrated_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return migrated_engine


@pytest.fixture(scope="module", autouse=True)
def vhosts_removed_after_module() -> Iterator[None]:
    """The vhosts a module made go when it ends: every quorum queue holds broker file
    descriptors, and a RabbitMQ node has few (under a thousand here)."""
    start = len(MADE)
    yield
    for vhost in dict.fromkeys(MADE[start:]):
        delete_vhost(vhost)


@pytest.fixture(scope="module")
def broker(settings: Settings) -> str:
    """An empty test vhost for this module; returns its AMQP URL."""
    reset_vhost(TEST_VHOST)
    return settings.amqp_url

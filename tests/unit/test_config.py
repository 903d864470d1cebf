"""A setting that cannot be used stops the service with the variable and what it expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError, Settings

NO_FILE = Path("/nonexistent")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HERALD_API_PORT", "eighty", "HERALD_API_PORT must be an integer, not 'eighty'"),
        ("HERALD_SENDER_PREFETCH", "5.5", "HERALD_SENDER_PREFETCH must be an integer"),
        ("HERALD_TICK_INTERVAL_S", "fast", "HERALD_TICK_INTERVAL_S must be a number"),
        ("HERALD_METRICS_PORT_BASE", "", "HERALD_METRICS_PORT_BASE must be an integer, not ''"),
        ("HERALD_RETRY_DELAYS_MS", "1000,5s", "HERALD_RETRY_DELAYS_MS must be comma-separated"),
        ("HERALD_API_TOKENS", "secret", "HERALD_API_TOKENS entries are token:read or token:write"),
    ],
)
def test_a_bad_value_names_its_variable_and_what_it_expects(variable, value, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        Settings.from_env({variable: value}, env_file=NO_FILE)


def test_good_values_are_read():
    settings = Settings.from_env(
        {
            "HERALD_API_PORT": "8080",
            "HERALD_TICK_INTERVAL_S": "0.5",
            "HERALD_METRICS_PORT_BASE": "19000",
        },
        env_file=NO_FILE,
    )
    assert (settings.api_port, settings.tick_interval_s, settings.metrics_port_base) == (
        8080,
        0.5,
        19000,
    )

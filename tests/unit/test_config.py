"""A setting that cannot be used stops the service with the variable and what it expects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import (
    EXAMPLE_SIGNING_KEY,
    ChannelLimits,
    ConfigError,
    Settings,
    service_settings,
)

NO_FILE = Path("/nonexistent")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HERALD_API_PORT", "eighty", "HERALD_API_PORT must be an integer, not 'eighty'"),
        ("HERALD_SENDER_PREFETCH", "5.5", "HERALD_SENDER_PREFETCH must be an integer"),
        ("HERALD_TICK_INTERVAL_S", "fast", "HERALD_TICK_INTERVAL_S must be a number"),
        ("HERALD_METRICS_PORT_BASE", "", "HERALD_METRICS_PORT_BASE must be an integer, not ''"),
        ("HERALD_RETRY_DELAYS_MS", "1000,5s", "HERALD_RETRY_DELAYS_MS must be comma-separated"),
        (
            "HERALD_API_TOKENS",
            "secret",
            "HERALD_API_TOKENS entries are token:read, token:write or token:receipts",
        ),
        ("HERALD_LOG_LEVEL", "loud", "HERALD_LOG_LEVEL must be one of DEBUG, INFO, WARNING"),
        ("HERALD_SMTP_TLS", "tls", "HERALD_SMTP_TLS must be one of none, starttls, ssl, not 'tls'"),
        ("HERALD_DEV_STACK", "maybe", "HERALD_DEV_STACK must be one of 1, true, yes, 0"),
        ("HERALD_PUBLIC_URL", "herald.example.com", "HERALD_PUBLIC_URL must be the API's public"),
        ("HERALD_PUBLIC_URL", "ftp://herald.example.com", "HERALD_PUBLIC_URL must be"),
        (
            "HERALD_CHANNEL_RATE_LIMITS",
            "http=500,email=fifty",
            "HERALD_CHANNEL_RATE_LIMITS entries are channel=messages per second above zero "
            "(http=500,email=50), not 'email=fifty'",
        ),
        ("HERALD_CHANNEL_RATE_LIMITS", "http=0", "HERALD_CHANNEL_RATE_LIMITS entries are"),
        ("HERALD_CHANNEL_RATE_LIMITS", "http=nan", "HERALD_CHANNEL_RATE_LIMITS entries are"),
        ("HERALD_CHANNEL_RATE_LIMITS", "http=5,http=6", "HERALD_CHANNEL_RATE_LIMITS names"),
        (
            "HERALD_CHANNEL_WINDOW_LIMITS",
            "email=2000",
            "HERALD_CHANNEL_WINDOW_LIMITS entries are channel=count/seconds, seconds above zero "
            "(email=2000/86400), not 'email=2000'",
        ),
        ("HERALD_CHANNEL_WINDOW_LIMITS", "email=many/60", "HERALD_CHANNEL_WINDOW_LIMITS entries"),
        ("HERALD_CHANNEL_WINDOW_LIMITS", "email=5/0", "HERALD_CHANNEL_WINDOW_LIMITS entries"),
        (
            "HERALD_DELIVERY_RATE_ALERT_SHARE",
            "80",
            "HERALD_DELIVERY_RATE_ALERT_SHARE must be a share from 0 to 1, not 80.0",
        ),
        ("HERALD_DELIVERY_RATE_ALERT_SHARE", "nan", "HERALD_DELIVERY_RATE_ALERT_SHARE must be"),
        ("HERALD_DELIVERY_RATE_ALERT_SHARE", "most", "HERALD_DELIVERY_RATE_ALERT_SHARE must be"),
    ],
)
def test_a_bad_value_names_its_variable_and_what_it_expects(variable, value, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Settings.from_env({variable: value}, env_file=NO_FILE)


def test_good_values_are_read():
    settings = Settings.from_env(
        {
            "HERALD_API_PORT": "8080",
            "HERALD_TICK_INTERVAL_S": "0.5",
            "HERALD_METRICS_PORT_BASE": "19000",
            "HERALD_DELIVERY_RATE_ALERT_SHARE": "0.95",
        },
        env_file=NO_FILE,
    )
    assert (settings.api_port, settings.tick_interval_s, settings.metrics_port_base) == (
        8080,
        0.5,
        19000,
    )
    assert settings.delivery_rate_alert_share == 0.95
    assert Settings.from_env({}, env_file=NO_FILE).delivery_rate_alert_share == 0.8


def test_channel_limits_are_parsed_once_for_every_service():
    settings = Settings.from_env(
        {
            "HERALD_CHANNEL_RATE_LIMITS": "http=500, email=50",
            "HERALD_CHANNEL_WINDOW_LIMITS": "email=2000/86400",
        },
        env_file=NO_FILE,
    )

    assert settings.channel_limits == {
        "http": ChannelLimits(500.0),
        "email": ChannelLimits(50.0, ((2000, 86400.0),)),
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "HERALD_SIGNING_KEY is unset or the README's example key"),
        ({"HERALD_SIGNING_KEY": EXAMPLE_SIGNING_KEY}, "set a secret of your own"),
        (
            {"HERALD_SIGNING_KEY": EXAMPLE_SIGNING_KEY, "HERALD_DEV_STACK": "0"},
            "HERALD_SIGNING_KEY is unset or the README's example key",
        ),
        ({"HERALD_SIGNING_KEY": ""}, "HERALD_SIGNING_KEY must be a secret of your own"),
    ],
)
def test_a_service_refuses_the_example_signing_key_outside_the_dev_stack(environ, expected):
    settings = Settings.from_env(environ, env_file=NO_FILE)

    with pytest.raises(ConfigError, match=re.escape(expected)):
        settings.check_signing_key()


@pytest.mark.parametrize(
    "environ",
    [
        {"HERALD_DEV_STACK": "1"},
        {"HERALD_SIGNING_KEY": EXAMPLE_SIGNING_KEY, "HERALD_DEV_STACK": "true"},
        {"HERALD_SIGNING_KEY": "a-secret-of-our-own"},
    ],
)
def test_an_own_key_or_the_dev_stack_passes(environ):
    Settings.from_env(environ, env_file=NO_FILE).check_signing_key()


def test_a_service_exits_with_one_line_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HERALD_CHANNEL_RATE_LIMITS", "http=500,email=fifty")

    with pytest.raises(SystemExit) as exit_:
        service_settings("scheduler")

    message = str(exit_.value.code)
    assert message.startswith("herald scheduler: configuration error: HERALD_CHANNEL_RATE_LIMITS")
    assert "\n" not in message


def test_a_service_that_signs_links_exits_on_the_example_key(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HERALD_SIGNING_KEY", raising=False)
    monkeypatch.delenv("HERALD_DEV_STACK", raising=False)

    with pytest.raises(SystemExit, match="herald api: configuration error: HERALD_SIGNING_KEY"):
        service_settings("api", signs_links=True)

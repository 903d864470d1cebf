"""Where the CLI finds the API, its token and the broker: the environment over `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import DEFAULT_AMQP_URL, parse_tokens, read_env_file

DEFAULT_API_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class CliConfig:
    api_url: str = DEFAULT_API_URL
    token: str = field(default="", repr=False)
    amqp_url: str = field(default=DEFAULT_AMQP_URL, repr=False)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None
    ) -> CliConfig:
        """HERALD_API_URL, HERALD_API_TOKEN (else the first write token of HERALD_API_TOKENS,
        else its first token) and HERALD_AMQP_URL; real variables win over `.env`."""
        env = {
            **read_env_file(env_file or Path(".env")),
            **(os.environ if environ is None else environ),
        }
        return cls(
            api_url=env.get("HERALD_API_URL", DEFAULT_API_URL).rstrip("/"),
            token=env.get("HERALD_API_TOKEN") or token_from(env.get("HERALD_API_TOKENS", "")),
            amqp_url=env.get("HERALD_AMQP_URL", DEFAULT_AMQP_URL),
        )


def token_from(spec: str) -> str:
    """The first write token of a HERALD_API_TOKENS value, else its first token, else ''."""
    try:
        tokens = parse_tokens(spec)
    except ValueError:
        return ""
    writers = [token for token, scope in tokens.items() if scope == "write"]
    return (writers or list(tokens) or [""])[0]

"""A virtual host of one's own on the local RabbitMQ, for tests and benches beside a stack."""

from __future__ import annotations

import subprocess

# Every virtual host reset here, in order, so whoever made them can remove them when done.
MADE: list[str] = []


def delete_vhost(vhost: str) -> None:
    """Delete the virtual host and its queues, if it exists."""
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def reset_vhost(vhost: str, user: str = "guest") -> None:
    """Delete the virtual host if it exists, create it empty and let `user` do everything."""
    MADE.append(vhost)
    delete_vhost(vhost)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )

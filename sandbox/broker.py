"""A virtual host of one's own on the local RabbitMQ, for tests and benches beside a stack."""

from __future__ import annotations

import subprocess


def reset_vhost(vhost: str, user: str = "guest") -> None:
    """Delete the virtual host if it exists, create it empty and let `user` do everything."""
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )

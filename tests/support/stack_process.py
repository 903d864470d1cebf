"""`python -m deploy.stack` (what `make run` starts) as a process group of its own.

The tests drive it as a user would: signals to its process group, kill -9 of one service by
the PID the stack printed, and the REST API.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import free_port, free_port_block
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"stack: (\S+) started(?: again)? \(pid (\d+)\)")


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes in a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


class StackProcess:
    """One `make run` stack on its own database, vhost and ports."""

    def __init__(self, env: dict[str, str], log_dir: Path, senders: int = 2) -> None:
        self.api_port = free_port()
        self.env = {
            **os.environ,
            **env,
            "HERALD_API_PORT": str(self.api_port),
            "HERALD_METRICS_PORT_BASE": str(free_port_block(20)),
        }
        self.log_dir = log_dir
        self.senders = senders
        self.process: subprocess.Popen[bytes] | None = None
        self.out = log_dir / "stack.out"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, ready_timeout: float = 60.0) -> StackProcess:
        """Start the stack and return once it says the API is ready."""
        self.start_only()
        wait_until(lambda: "Herald is running" in self.output() or self._exited(), ready_timeout)
        if self._exited():
            raise RuntimeError(f"the stack exited:\n{self.output()[-3000:]}")
        return self

    def start_only(self) -> None:
        """Start the stack and return at once."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.out.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "deploy.stack", "--senders", str(self.senders),
                 "--log-dir", str(self.log_dir)],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as a terminal gives make run
            )  # fmt: skip

    def _exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def pids(self) -> dict[str, int]:
        """The latest PID the stack printed for each service."""
        return {name: int(pid) for name, pid in STARTED.findall(self.output())}

    def interrupt(self, timeout: float = 10.0) -> float:
        """SIGINT to the whole process group, as Ctrl-C does; seconds until every member is gone.

        Raises TimeoutError naming what still runs after the timeout (then kills it).
        """
        assert self.process is not None
        pgid = self.process.pid
        started = time.monotonic()
        os.killpg(pgid, signal.SIGINT)
        while time.monotonic() - started < timeout:
            self.process.poll()  # reap the stack itself so it does not linger as a zombie
            if not group_members(pgid):
                return time.monotonic() - started
            time.sleep(0.05)
        left = {pid: _cmdline(pid) for pid in group_members(pgid)}
        self.kill()
        raise TimeoutError(f"still running {timeout:.0f}s after SIGINT: {left}")

    def kill(self) -> None:
        """SIGKILL whatever is left of the group (clean-up after a failed test)."""
        if self.process is None:
            return
        for pid in group_members(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"

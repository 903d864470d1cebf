"""CPU per delivered message, by component, from the kernel's accounting of each process.

A sample reads utime + stime of every process of every component from /proc; the
difference of two samples is the CPU each component spent between them. Processes are
keyed by pid and start time, so a reused pid is a new process. One that starts between
the samples counts from zero; one that exits between them is lost with all it spent (the
services and the connection pools keep theirs, so this touches short-lived PostgreSQL
backends and RabbitMQ's helper commands only).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
GATEWAY = "gateway"

# "postgres: 15/main: postgres herald_bench 127.0.0.1(43210) idle": the cluster name is
# optional, then user, database and client address (host(port) or [local]).
_BACKEND = re.compile(r"^\S+ (?P<database>\S+) (?:\S+\(\d+\)|\[local\])(?: |$)")
_AUTOVACUUM_WORKER = re.compile(r"^autovacuum worker(?: (?P<database>\S+))?")
_CLUSTER_PREFIX = re.compile(r"^[^\s:]+: ")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    ppid: int
    start_ticks: int
    cpu_ticks: int  # utime + stime


def parse_stat(line: str) -> ProcStat:
    """One /proc/<pid>/stat line; the name sits in parentheses and may hold both and spaces."""
    head, _, tail = line.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = tail.split()  # fields[0] is field 3 (state) of proc(5)
    utime, stime = int(fields[11]), int(fields[12])
    return ProcStat(int(pid), comm, int(fields[1]), int(fields[19]), utime + stime)


def postgres_database(cmdline: str) -> str | None:
    """The database a postgres process serves, or None for the postmaster and helpers."""
    if not cmdline.startswith("postgres: "):
        return None  # the postmaster keeps its own command line
    title = _CLUSTER_PREFIX.sub("", cmdline.removeprefix("postgres: "), count=1)
    match = _BACKEND.match(title) or _AUTOVACUUM_WORKER.match(title)
    return match.group("database") if match else None


def is_postgres_of(cmdline: str, database: str) -> bool:
    """A backend of `database`, or a helper of the whole cluster (checkpointer, walwriter...).

    A parallel worker names its leader's pid, not a database: it counts as a helper, though
    it lives no longer than its query and so is mostly lost between two samples anyway.
    """
    served = postgres_database(cmdline)
    return served is None or served == database


# -- arithmetic ------------------------------------------------------------------------------


def ticks_to_ms(ticks: int, clock_ticks_per_s: int) -> float:
    return ticks * 1000 / clock_ticks_per_s


def spent_ticks(before: Mapping[tuple[int, int], int], after: Mapping[tuple[int, int], int]) -> int:
    """CPU between two samples of one component: newcomers from zero, the departed lost."""
    return sum(ticks - before.get(key, 0) for key, ticks in after.items())


def per_message_ms(ms: float, delivered: int) -> float:
    return ms / delivered if delivered else 0.0


def total_ms(ms_by_component: Mapping[str, float]) -> float:
    return sum(ms_by_component.values())


def herald_own_ms(ms_by_component: Mapping[str, float]) -> float:
    """Everything but the sandbox gateway, which stands in for the operator's side."""
    return sum(ms for name, ms in ms_by_component.items() if name != GATEWAY)


def share(ms: float, total: float) -> float:
    return ms / total if total else 0.0


@dataclass
class CpuUsage:
    """CPU milliseconds per component between two samples, and processes that could not be read."""

    ms_by_component: dict[str, float]
    not_readable: int


def table_lines(usage: CpuUsage, delivered: int) -> list[str]:
    total = total_ms(usage.ms_by_component)
    lines = [f"  {'CPU by component':<36} {'CPU s':>8} {'ms/message':>11} {'share':>7}"]

    def row(name: str, ms: float) -> str:
        per = per_message_ms(ms, delivered)
        return f"  {name:<36} {ms / 1000:8.2f} {per:11.3f} {share(ms, total):7.1%}"

    ordered = sorted(usage.ms_by_component.items(), key=lambda item: -item[1])
    lines += [row(name, ms) for name, ms in ordered]
    lines.append(row("sum", total))
    lines.append(row("Herald's own (all but the gateway)", herald_own_ms(usage.ms_by_component)))
    if usage.not_readable:
        lines.append(f"  ({usage.not_readable} processes not readable, left out)")
    return lines


# -- sampling ------------------------------------------------------------------------------


@dataclass
class Sample:
    ticks: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)
    not_readable: int = 0


def _read_all() -> tuple[dict[int, ProcStat], set[int]]:
    stats: dict[int, ProcStat] = {}
    unreadable: set[int] = set()
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = parse_stat((entry / "stat").read_text())
            except OSError:  # vanished, or not ours to read
                unreadable.add(int(entry.name))
    return stats, unreadable


def _cmdline(pid: int) -> str | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _with_descendants(roots: Iterable[int], stats: Mapping[int, ProcStat]) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = set(), [pid for pid in roots if pid in stats]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def take_sample(roots: Mapping[str, int], database: str) -> Sample:
    """Every named process tree, `rabbitmq` (beam.smp and its children) and `postgresql`
    (the cluster's helpers and the backends of `database`, none of other databases)."""
    stats, unreadable = _read_all()
    members = {name: _with_descendants([pid], stats) for name, pid in roots.items()}
    beams = [s.pid for s in stats.values() if s.comm == "beam.smp"]
    members["rabbitmq"] = _with_descendants(beams, stats)
    postgres: set[int] = set()
    for stat in stats.values():
        if stat.comm == "postgres":
            cmdline = _cmdline(stat.pid)
            if cmdline is None:
                unreadable.add(stat.pid)
            elif is_postgres_of(cmdline, database):
                postgres.add(stat.pid)
    members["postgresql"] = postgres
    sample = Sample(not_readable=len(unreadable))
    for name, pids in members.items():
        sample.ticks[name] = {(p, stats[p].start_ticks): stats[p].cpu_ticks for p in pids}
    return sample


def usage_between(before: Sample, after: Sample) -> CpuUsage:
    clock = os.sysconf("SC_CLK_TCK")
    ms = {
        name: ticks_to_ms(spent_ticks(before.ticks.get(name, {}), ticks), clock)
        for name, ticks in after.ticks.items()
    }
    return CpuUsage(ms, max(before.not_readable, after.not_readable))

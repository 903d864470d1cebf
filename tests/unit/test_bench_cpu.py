"""The bench's CPU accounting: /proc stat lines, which postgres processes count, the table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cpu import (
    CpuUsage,
    herald_own_ms,
    is_postgres_of,
    parse_stat,
    per_message_ms,
    spent_ticks,
    table_lines,
    ticks_to_ms,
    total_ms,
)

pytestmark = pytest.mark.unit


def stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, start: int) -> str:
    # Fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime vsize...
    rest = f"S {ppid} 1 1 0 -1 4194560 10 0 0 0 {utime} {stime} 7 9 20 0 4 0 {start} 1024 55"
    return f"{pid} ({comm}) {rest}\n"


def test_a_stat_line_whose_name_holds_spaces_and_parentheses_parses_after_the_last_one():
    stat = parse_stat(stat_line(4242, "py (worker) ) 2", 17, utime=150, stime=25, start=98765))

    assert (stat.pid, stat.comm, stat.ppid) == (4242, "py (worker) ) 2", 17)
    assert stat.cpu_ticks == 175  # utime + stime, not the waited-for children's times
    assert stat.start_ticks == 98765


def test_a_real_stat_line_of_this_process_gives_its_own_pid():
    stat = parse_stat(Path(f"/proc/{os.getpid()}/stat").read_text())

    assert stat.pid == os.getpid() and stat.ppid == os.getppid()


@pytest.mark.parametrize(
    "cmdline, counted",
    [
        ("postgres: 15/main: postgres herald_bench 127.0.0.1(43210) idle", True),
        ("postgres: postgres herald_bench 127.0.0.1(43210) INSERT", True),
        ("postgres: 15/main: postgres herald_bench [local] idle in transaction", True),
        ("postgres: 15/main: postgres herald_test_seg 127.0.0.1(55248) idle", False),
        ("postgres: postgres herald_bench_2 127.0.0.1(1) idle", False),
        ("postgres: 15/main: checkpointer", True),
        ("postgres: 15/main: background writer", True),
        ("postgres: walwriter", True),
        ("postgres: 15/main: autovacuum launcher", True),
        ("postgres: 15/main: logical replication launcher", True),
        ("postgres: 15/main: autovacuum worker herald_bench", True),
        ("postgres: 15/main: autovacuum worker herald_test_seg", False),
        ("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", True),
    ],
)
def test_postgres_counts_the_bench_databases_backends_and_the_clusters_helpers(cmdline, counted):
    assert is_postgres_of(cmdline, "herald_bench") is counted


def test_a_process_born_between_samples_counts_from_zero_and_one_that_died_is_lost():
    before = {(10, 1): 500, (11, 2): 300, (12, 3): 80}
    after = {(10, 1): 650, (11, 2): 300, (13, 9): 40, (12, 7): 5}  # pid 12 reused: new process

    assert spent_ticks(before, after) == 150 + 0 + 40 + 5


def test_ticks_become_milliseconds_by_the_clock_rate():
    assert ticks_to_ms(250, 100) == 2500.0
    assert ticks_to_ms(3, 1000) == 3.0


def test_the_sum_and_herald_own_figure_leave_the_gateway_out_of_the_second_only():
    ms = {"sender-1": 4000.0, "postgresql": 2500.0, "gateway": 3000.0, "rabbitmq": 500.0}

    assert total_ms(ms) == 10_000.0
    assert herald_own_ms(ms) == 7000.0
    assert per_message_ms(herald_own_ms(ms), 1000) == 7.0
    assert per_message_ms(1.0, 0) == 0.0


def test_the_table_lists_components_by_cost_then_the_sum_and_herald_own():
    usage = CpuUsage({"api": 1000.0, "gateway": 2000.0, "sender-1": 7000.0}, not_readable=2)

    lines = table_lines(usage, delivered=1000)

    names = [line.split("  ")[1].strip() for line in lines[1:4]]
    assert names == ["sender-1", "gateway", "api"]
    sender, total, own = lines[1].split(), lines[4].split(), lines[5].split()
    assert sender[1:] == ["7.00", "7.000", "70.0%"]
    assert total[:4] == ["sum", "10.00", "10.000", "100.0%"]
    assert own[-3:] == ["8.00", "8.000", "80.0%"]
    assert lines[6] == "  (2 processes not readable, left out)"

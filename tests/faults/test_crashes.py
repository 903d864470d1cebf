"""Services killed with SIGKILL mid-campaign and started again: nothing lost, counts exact."""

from __future__ import annotations

import itertools
import time

from shared.config import Settings
from tests.faults.conftest import RECIPIENTS, Launcher
from tests.faults.oracle import report
from tests.support.processes import Every

KILL_EVERY_S = 2.0
# The default window (50 batches, 5,000 messages) would allow a quarter of the campaign as
# duplicates per kill; ten batches keep the bound tight enough to mean something.
SENDER_PREFETCH = "10"


def test_killing_one_of_three_senders_every_two_seconds_loses_nothing(faults: Launcher) -> None:
    run = faults.launch(senders=3, env={"HERALD_SENDER_PREFETCH": SENDER_PREFETCH})
    settings = Settings.from_env(run.env)
    senders = itertools.cycle(name for name in run.stack.services if name.startswith("sender-"))
    started = time.monotonic()

    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.02)
    with Every(KILL_EVERY_S, lambda: run.stack.restart(next(senders)), at_once=True) as kills:
        final = run.wait_finished(campaign_id)
    seconds = time.monotonic() - started

    figures = run.figures(campaign_id)
    # A killed sender's unacked batches go to the others, which may deliver them again.
    bound = settings.sender_prefetch * settings.batch_size * kills.runs
    report(figures.line(f"kill-senders (kills={kills.runs})", seconds, bound))
    assert kills.runs >= 1, "the campaign ended before any sender was killed"
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert figures.duplicates <= bound


def test_killing_the_scheduler_and_the_stats_writer_once_each_keeps_counts_exact(
    faults: Launcher,
) -> None:
    run = faults.launch(senders=3)
    started = time.monotonic()

    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.25)
    run.stack.restart("scheduler")
    run.wait_share_final(campaign_id, 0.5)
    run.stack.restart("stats")
    final = run.wait_finished(campaign_id)
    seconds = time.monotonic() - started

    figures = run.figures(campaign_id)
    report(figures.line("kill-scheduler-and-stats", seconds))
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert run.exited() == {}

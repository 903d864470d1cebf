"""Faults of a multi-host deployment: a broker node killed or stopped, a host cut off, a host
lost whole. Each is a 20,000-recipient campaign that must complete with nothing lost, the
duplicates within their bound, and every surviving service reconnected by itself."""

from __future__ import annotations

import time

from shared.config import Settings
from tests.cluster.conftest import (
    RECIPIENTS,
    SENDERS,
    ClusterLauncher,
    ClusterRun,
    elapsed,
    wait_connected,
)
from tests.faults.oracle import report
from tests.support.waiting import wait_until

CUT_S = 10.0
OUTAGE_S = 3.0


def duplicate_bound(run: ClusterRun, senders: int = SENDERS) -> int:
    """A sender that loses its broker session may send again what it had delivered without a
    confirmed outcome: never more than its in-flight limit (README, Broker outages)."""
    return Settings.from_env(run.env).sender_concurrency * senders


def leader_of(run: ClusterRun, queue: str) -> str:
    return str(run.cluster.queues(run.vhost)[queue]["leader"])


def test_a_campaign_goes_through_quorum_queues_replicated_on_the_three_nodes(
    on_cluster: ClusterLauncher,
):
    run = on_cluster.launch()
    names = sorted(node.nodename for node in run.cluster.nodes)
    cpu_before = run.cluster.cpu_seconds()
    started = time.monotonic()

    campaign_id = run.start_campaign()
    final = run.wait_finished(campaign_id)
    seconds = elapsed(started)

    cpu = {n: spent - cpu_before[n] for n, spent in run.cluster.cpu_seconds().items()}
    queues = run.cluster.queues(run.vhost)
    quorum = {name: q for name, q in queues.items() if q["type"] == "quorum"}
    figures = run.figures(campaign_id)
    # What each node costs a delivered message, leader or follower: the capacity plan's input.
    per_node = ", ".join(f"{spent * 1000 / RECIPIENTS:.3f}" for spent in cpu.values())
    report(
        figures.line("cluster: no fault", seconds)
        + f" rabbitmq_cpu_ms_per_message_per_node={per_node}"
    )
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert {"deliver.http", "stats.outcomes"} <= set(quorum)
    assert {name: sorted(q["members"]) for name, q in quorum.items()} == {
        name: names for name in quorum
    }
    assert all(spent > 0 for spent in cpu.values())  # every node took part
    wait_connected(run)


def test_killing_the_node_that_leads_deliver_http_loses_nothing(on_cluster: ClusterLauncher):
    run = on_cluster.launch()
    started = time.monotonic()
    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.3)
    leader = leader_of(run, "deliver.http")

    run.cluster.by_name(leader).kill()
    final = run.wait_finished(campaign_id)
    seconds = elapsed(started)

    figures = run.figures(campaign_id)
    bound = duplicate_bound(run)
    report(figures.line(f"cluster: kill -9 the leader of deliver.http ({leader})", seconds, bound))
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert figures.duplicates <= bound
    assert leader_of(run, "deliver.http") != leader
    wait_connected(run)
    assert run.exited() == {}


def test_a_node_stopped_and_started_again_loses_nothing(on_cluster: ClusterLauncher):
    run = on_cluster.launch()
    started = time.monotonic()
    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.3)
    # The node most services are connected to: each lists the nodes in the same order.
    node = run.cluster.nodes[0]

    node.stop()
    time.sleep(OUTAGE_S)
    node.start()
    final = run.wait_finished(campaign_id)
    seconds = elapsed(started)

    figures = run.figures(campaign_id)
    bound = duplicate_bound(run)
    report(figures.line("cluster: stop a node, start it again", seconds, bound))
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert figures.duplicates <= bound
    wait_until(lambda: len(run.cluster.running_nodes()) == 3, timeout=60)
    wait_connected(run)
    assert run.exited() == {}


def test_a_sender_host_cut_off_for_ten_seconds_loses_nothing(on_cluster: ClusterLauncher):
    run = on_cluster.launch()
    started = time.monotonic()
    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.2)
    host = run.host("a")

    host.cut()
    time.sleep(CUT_S)
    host.restore()
    final = run.wait_finished(campaign_id)
    seconds = elapsed(started)

    figures = run.figures(campaign_id)
    bound = duplicate_bound(run, senders=2)  # the two senders of the host cut off
    report(figures.line("cluster: sender host a cut off for 10 s", seconds, bound))
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert figures.duplicates <= bound
    wait_connected(run)
    assert run.exited() == {}


def test_every_process_of_a_sender_host_killed_loses_nothing(on_cluster: ClusterLauncher):
    run = on_cluster.launch()
    started = time.monotonic()
    campaign_id = run.start_campaign()
    run.wait_share_final(campaign_id, 0.3)
    host = run.host("a")

    killed = host.kill_all()
    final = run.wait_finished(campaign_id)
    seconds = elapsed(started)

    figures = run.figures(campaign_id)
    bound = duplicate_bound(run, senders=2)
    report(figures.line("cluster: every process of host a killed", seconds, bound))
    assert len(killed) == 2
    assert final["status"] == "completed"
    assert figures.short_of_all_sent(RECIPIENTS) == {}
    assert figures.duplicates <= bound
    # The other hosts' services never stopped; only host a's two senders are gone.
    assert set(run.exited()) == {"a/sender-1", "a/sender-2"}

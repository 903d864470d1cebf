import pytest

from services.sender.worker import RetryPolicy, plan_results
from shared.domain.outcomes import (
    PERMANENT,
    SENT,
    TRANSIENT,
    DeliveryResult,
    deferred,
    expired,
    held,
    permanent,
    sent,
    transient,
)
from shared.messaging.envelopes import DeliveryItem

NOW = 1_000_000.0
POLICY = RetryPolicy((5_000, 30_000), max_attempts=3)


def item(message_id=1, attempt=1, deadline=NOW + 3600):
    return DeliveryItem(message_id, "+15550100000", "Hi", attempt, deadline)


def only_outcome(plan):
    [outcome] = plan.outcomes
    return outcome.status, outcome.attempt, outcome.error


def test_sent_item_reports_the_attempt_it_was():
    plan = plan_results([(item(attempt=2), sent())], POLICY, NOW)

    assert only_outcome(plan) == ("sent", 2, None)
    assert not plan.retries and not plan.dead


def test_transient_failure_is_retried_with_the_next_attempt_and_nothing_else():
    failing, fine = item(1), item(2)

    plan = plan_results([(failing, transient("HTTP 503")), (fine, sent())], POLICY, NOW)

    assert [o.message_id for o in plan.outcomes] == [2]
    assert plan.retries == {5_000: [item(1, attempt=2)]}
    assert not plan.dead


@pytest.mark.parametrize(
    ("result", "attempt", "deadline", "status"),
    [
        (permanent("HTTP 400: bad phone"), 1, NOW + 3600, "failed"),
        (transient("HTTP 503: busy"), 3, NOW + 3600, "failed"),
        (transient("HTTP 503: busy"), 1, NOW + 4, "expired"),
    ],
)
def test_item_that_can_no_longer_be_sent_is_parked_with_its_error(
    result, attempt, deadline, status
):
    parked = item(attempt=attempt, deadline=deadline)

    plan = plan_results([(parked, result)], POLICY, NOW)

    assert only_outcome(plan) == (status, attempt, result.error)
    assert plan.dead == [parked]
    assert plan.last_error == result.error
    assert not plan.retries


def test_items_not_attempted_report_the_attempts_made_before():
    plan = plan_results(
        [(item(1, attempt=1), held()), (item(2, attempt=3), expired())], POLICY, NOW
    )

    assert [(o.status, o.attempt) for o in plan.outcomes] == [("held", 0), ("expired", 2)]
    assert not plan.dead


def test_deferred_item_waits_the_shortest_tier_without_an_attempt_counted():
    waiting = item(attempt=2)

    plan = plan_results([(waiting, deferred())], POLICY, NOW)

    assert plan.retries == {5_000: [waiting]}
    assert not plan.outcomes and not plan.dead


def test_deferred_item_that_would_return_too_late_expires_unsent():
    plan = plan_results([(item(attempt=1, deadline=NOW + 4), deferred())], POLICY, NOW)

    status, attempts, error = only_outcome(plan)
    assert (status, attempts) == ("expired", 0)
    assert "circuit breaker" in error
    assert not plan.dead


def test_a_throttled_item_waits_at_least_what_the_gateway_asked():
    throttled = DeliveryResult(TRANSIENT, "throttled: HTTP 429", retry_after_s=20.0)

    plan = plan_results([(item(1), throttled)], POLICY, NOW)

    # The first tier (5 s) is shorter than Retry-After: the next tier that covers it.
    assert plan.retries == {30_000: [item(1, attempt=2)]}


def test_a_sent_outcome_names_the_gateway_and_segments_and_a_failure_the_gateway():
    taken = DeliveryResult(SENT, gateway="beta", segments=3)
    refused = DeliveryResult(PERMANENT, "HTTP 400", gateway="alpha")

    plan = plan_results([(item(1), taken), (item(2), refused)], POLICY, NOW)

    assert [(o.gateway, o.segments) for o in plan.outcomes] == [("beta", 3), ("alpha", None)]

"""What a sender keeps of the batches a lost session held: BatchProgress.abandon, KeptResults."""

from services.sender.dispatcher import BatchProgress
from services.sender.kept import LOST_RESULT, KeptResults
from shared.domain.outcomes import sent, transient
from shared.messaging.envelopes import DeliveryItem


def item(message_id=1, attempt=1):
    return DeliveryItem(message_id, "+15550100000", "Hi", attempt, 2_000_000_000.0)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Collected:
    """An on_result callback that remembers what it was given."""

    def __init__(self):
        self.results = []

    def __call__(self, item, result):
        self.results.append((item, result))


def test_kept_result_settles_the_redelivered_item_instead_of_sending_it():
    kept = KeptResults()
    done, unknown = item(1), item(2)
    kept.keep(done, sent())
    collected = Collected()

    to_send = kept.claim([done, unknown], collected)

    assert to_send == [unknown]
    assert collected.results == [(done, sent())]


def test_item_still_with_the_messenger_gets_its_result_when_it_comes():
    kept = KeptResults()
    kept.expect(item(1))
    collected = Collected()

    to_send = kept.claim([item(1)], collected)
    kept.keep(item(1), transient("HTTP 503"))

    assert to_send == []
    assert collected.results == [(item(1), transient("HTTP 503"))]


def test_a_retry_is_another_attempt_and_is_sent():
    kept = KeptResults()
    kept.keep(item(1, attempt=1), transient("HTTP 503"))

    to_send = kept.claim([item(1, attempt=2)], Collected())

    assert to_send == [item(1, attempt=2)]


def test_published_items_are_left_out_of_the_redelivery():
    kept = KeptResults()
    kept.keep(item(1), sent())
    kept.mark_published([item(1)])
    kept.keep(item(1), transient("late"))

    assert kept.unpublished([item(1), item(2)]) == [item(2)]
    assert kept.claim([item(1)], Collected()) == [item(1)]


def test_expecting_after_the_result_came_keeps_the_result():
    kept = KeptResults()
    kept.keep(item(1), sent())
    kept.expect(item(1))
    collected = Collected()

    kept.claim([item(1)], collected)

    assert collected.results == [(item(1), sent())]


def test_results_are_forgotten_after_the_age_limit():
    clock = Clock()
    kept = KeptResults(max_age_s=60, clock=clock)
    kept.keep(item(1), sent())
    clock.now += 30
    kept.keep(item(2), sent())
    clock.now += 31

    kept.prune()

    assert len(kept) == 1
    assert kept.claim([item(1), item(2)], Collected()) == [item(1)]


def test_the_oldest_results_go_first_past_the_size_limit():
    kept = KeptResults(max_items=2)

    for message_id in (1, 2, 3):
        kept.keep(item(message_id), sent())

    assert len(kept) == 2
    assert kept.claim([item(1), item(2), item(3)], Collected()) == [item(1)]


def test_an_item_waiting_on_a_result_that_is_forgotten_is_retried_not_stuck():
    clock = Clock()
    kept = KeptResults(max_age_s=60, clock=clock)
    kept.expect(item(1))
    collected = Collected()
    kept.claim([item(1)], collected)
    clock.now += 61

    kept.prune()

    assert collected.results == [(item(1), transient(LOST_RESULT))]


def test_abandoned_batch_hands_no_more_items_over():
    items = [item(1), item(2)]
    progress = BatchProgress(items, lambda: None)
    assert progress.hand_over(items[0])

    progress.abandon(KeptResults())

    assert progress.is_abandoned
    assert not progress.hand_over(items[1])


def test_abandoned_batch_keeps_results_recorded_and_expects_those_with_the_messenger():
    items = [item(1), item(2), item(3)]
    completions = []
    progress = BatchProgress(items, lambda: completions.append(True))
    for handed in items[:2]:
        progress.hand_over(handed)
    progress.record(items[0], sent())
    progress.take()
    kept = KeptResults()

    progress.abandon(kept)
    collected = Collected()
    to_send = kept.claim(items, collected)
    progress.record(items[1], sent())

    assert to_send == [items[2]]
    assert collected.results == [(items[0], sent()), (items[1], sent())]
    assert completions == [], "an abandoned batch has no session to finish on"


def test_items_settled_elsewhere_count_as_handed_over():
    progress = BatchProgress([item(1), item(2)], lambda: None)
    progress.hand_over(item(1))

    progress.mark_handed_over(1)

    assert progress.is_all_handed_over

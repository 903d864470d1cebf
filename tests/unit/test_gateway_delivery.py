"""A gateway is judged low by its recent receipts, never on too few, and recovers as they age."""

from shared.domain.gateway_delivery import DeliveryShares


def test_a_gateway_delivering_under_the_share_is_low_and_others_are_not() -> None:
    shares = DeliveryShares(0.8, window_s=60, min_receipts=10)
    shares.add(0.0, {"alpha": (5, 15), "beta": (19, 1)})

    verdicts = shares.verdicts(1.0)

    assert verdicts["alpha"].low and verdicts["alpha"].share == 0.25
    assert not verdicts["beta"].low and verdicts["beta"].receipts == 20


def test_too_few_receipts_give_no_verdict() -> None:
    shares = DeliveryShares(0.8, window_s=60, min_receipts=10)
    shares.add(0.0, {"alpha": (0, 9)})
    assert shares.verdicts(1.0) == {}


def test_old_receipts_age_out_of_the_window() -> None:
    shares = DeliveryShares(0.8, window_s=60, min_receipts=10)
    shares.add(0.0, {"alpha": (0, 50)})
    shares.add(50.0, {"alpha": (40, 0)})

    assert shares.verdicts(55.0)["alpha"].low
    # At 70 the bad receipts are gone: what is left says it delivers.
    assert not shares.verdicts(70.0)["alpha"].low
    assert shares.verdicts(200.0) == {}

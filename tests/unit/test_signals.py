"""A stop that comes while a service starts still reaches what it registers later."""

from __future__ import annotations

from shared.signals import Stopper


def test_callbacks_registered_before_the_stop_run_at_it_once():
    stopper, calls = Stopper(), []
    stopper.on_stop(lambda: calls.append("consumer"))
    stopper.stop()
    stopper.stop()
    assert calls == ["consumer"]
    assert stopper.stopping.is_set()


def test_a_callback_registered_after_the_stop_runs_at_once():
    stopper, calls = Stopper(), []
    stopper.stop()
    stopper.on_stop(lambda: calls.append("late consumer"))
    assert calls == ["late consumer"]

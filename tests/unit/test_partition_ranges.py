"""Message partition ranges: PostgreSQL's bounds read back, new ranges planned ahead of ids."""

from __future__ import annotations

import pytest

from shared.db.queries.partitions import parse_bound, plan_ranges

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        ("FOR VALUES FROM (MINVALUE) TO ('1')", (None, 1)),
        ("FOR VALUES FROM ('1') TO ('10000001')", (1, 10_000_001)),
        ("FOR VALUES FROM ('10000001') TO (MAXVALUE)", (10_000_001, None)),
    ],
)
def test_bounds_read_as_postgresql_prints_them(bound, expected):
    assert parse_bound(bound) == expected


def test_a_list_bound_is_refused():
    with pytest.raises(ValueError, match="not a range bound"):
        parse_bound("FOR VALUES IN ('1')")


def test_ranges_follow_the_top_until_the_needed_ids_are_covered():
    assert plan_ranges(top=100, overflow_max=None, needed_up_to=125, span=10) == [
        (100, 110),
        (110, 120),
        (120, 130),
    ]


def test_nothing_is_made_when_the_ranges_already_cover_the_ids():
    assert plan_ranges(top=200, overflow_max=None, needed_up_to=150, span=10) == []


def test_a_new_range_starts_above_ids_kept_in_the_overflow():
    assert plan_ranges(top=100, overflow_max=104, needed_up_to=112, span=10) == [(105, 115)]


def test_overflow_ids_below_the_top_change_nothing():
    assert plan_ranges(top=100, overflow_max=50, needed_up_to=105, span=10) == [(100, 110)]


def test_a_span_of_zero_is_refused():
    with pytest.raises(ValueError, match="span must be positive"):
        plan_ranges(top=1, overflow_max=None, needed_up_to=5, span=0)

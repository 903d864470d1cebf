import pytest

from shared.db.queries import statuses as statements
from shared.domain.statuses import (
    ACTIONS,
    CAMPAIGN_MOVES,
    FINAL_CAMPAIGN_STATUSES,
    FINAL_MESSAGE_STATUSES,
    MESSAGE_MOVES,
    OPEN_MESSAGE_STATUSES,
    CampaignStatus,
    IllegalTransition,
    MessageStatus,
    transition,
)


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        (CampaignStatus.RUNNING, "pause", CampaignStatus.PAUSED),
        (CampaignStatus.PAUSED, "pause", CampaignStatus.PAUSED),
        (CampaignStatus.PAUSED, "resume", CampaignStatus.RUNNING),
        (CampaignStatus.SCHEDULED, "cancel", CampaignStatus.CANCELLED),
        (CampaignStatus.CANCELLED, "cancel", CampaignStatus.CANCELLED),
    ],
)
def test_allowed_transitions_land_on_the_target(current, action, expected):
    assert transition(current, action) == expected


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (CampaignStatus.COMPLETED, "resume"),
        (CampaignStatus.COMPLETED, "pause"),
        (CampaignStatus.CANCELLED, "resume"),
        (CampaignStatus.EXPIRED, "cancel"),
    ],
)
def test_illegal_transitions_say_why(current, action):
    with pytest.raises(IllegalTransition, match=f"cannot {action}"):
        transition(current, action)


def test_a_campaign_paused_before_its_start_resumes_as_scheduled():
    assert transition(CampaignStatus.PAUSED, "resume", has_started=False) == "scheduled"


def test_every_move_has_exactly_one_statement_and_every_statement_a_move():
    assert set(statements.MESSAGE_STATEMENTS) == set(MESSAGE_MOVES)
    assert set(statements.CAMPAIGN_STATEMENTS) == set(CAMPAIGN_MOVES)


@pytest.mark.parametrize(
    ("moves", "statuses"),
    [(MESSAGE_MOVES, set(MessageStatus)), (CAMPAIGN_MOVES, set(CampaignStatus))],
)
def test_moves_name_only_known_statuses(moves, statuses):
    for move in moves.values():
        assert move.sources <= statuses, move.name
        assert move.targets <= statuses, move.name
        assert move.actor in {"api", "scheduler", "stats"}


def test_only_the_scheduler_finishes_a_campaign():
    finishing = {
        move.actor
        for move in CAMPAIGN_MOVES.values()
        if move.targets & FINAL_CAMPAIGN_STATUSES - {CampaignStatus.CANCELLED}
    }
    assert finishing == {"scheduler"}


def test_open_and_final_message_statuses_split_them_all():
    assert OPEN_MESSAGE_STATUSES | FINAL_MESSAGE_STATUSES == set(MessageStatus)
    assert not OPEN_MESSAGE_STATUSES & FINAL_MESSAGE_STATUSES


def test_actions_are_campaign_moves_by_the_api():
    assert all(CAMPAIGN_MOVES[action].actor == "api" for action in ACTIONS)

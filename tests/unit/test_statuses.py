import pytest

from shared.domain.statuses import CampaignStatus, IllegalTransition, transition


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

"""herald-client: send notifications through Herald's API (and, with the extra, Django e-mail)."""

from herald_client.client import FINAL_STATUSES, HeraldClient, Notification
from herald_client.errors import HeraldError

__all__ = ["FINAL_STATUSES", "HeraldClient", "HeraldError", "Notification"]

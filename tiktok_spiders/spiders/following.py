"""``following``: the accounts each user follows (when the user made the list public).

Seeds: the usernames of the users feed (else the videos feed), ``-a users=PATH``,
or ``-a usernames=…``.  Every item carries the ``seed_username`` it was collected for.
"""

from __future__ import annotations

from tiktok_spiders import api
from tiktok_spiders.items import Following
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.seeded import UserListSpider


class FollowingSpider(UserListSpider):
    name = "following"
    path = api.FOLLOWING_PATH
    kinds = kinds_of("following")
    response_keys = api.FOLLOWING_KEYS
    cursor_goes = "down"  # "on or before this time"
    item_class = Following

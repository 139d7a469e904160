"""``followers``: the accounts following each user (public followers only; the API caps them near 5,000).

Seeds: the usernames of the users feed (else the videos feed), ``-a users=PATH``,
or ``-a usernames=…``.  Every item carries the ``seed_username`` it was collected for.
"""

from __future__ import annotations

from tiktok_spiders import api
from tiktok_spiders.items import Follower
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.seeded import UserListSpider


class FollowersSpider(UserListSpider):
    name = "followers"
    path = api.FOLLOWERS_PATH
    kinds = kinds_of("followers")
    response_keys = api.FOLLOWERS_KEYS
    cursor_goes = "down"  # "on or before this time"
    item_class = Follower

"""``pinned_videos``: the videos each user pinned to their profile (one request per user, no pages).

Seeds: the usernames of the users feed (else the videos feed), ``-a users=PATH``,
or ``-a usernames=…``.  Every item carries the ``seed_username`` it was collected for.
"""

from __future__ import annotations

from tiktok_spiders import api
from tiktok_spiders.items import PinnedVideo
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.seeded import UserListSpider


class PinnedVideosSpider(UserListSpider):
    name = "pinned_videos"
    path = api.PINNED_VIDEOS_PATH
    kinds = kinds_of("pinned_videos")
    response_keys = api.PINNED_VIDEOS_KEYS
    item_class = PinnedVideo
    allowed_fields = api.USER_VIDEO_FIELDS
    paginated = False

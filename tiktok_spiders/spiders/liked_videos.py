"""``liked_videos``: the videos each user liked (most users keep likes private: they are recorded as unavailable).

Seeds: the usernames of the users feed (else the videos feed), ``-a users=PATH``,
or ``-a usernames=…``.  Every item carries the ``seed_username`` it was collected for.
"""

from __future__ import annotations

from tiktok_spiders import api
from tiktok_spiders.items import LikedVideo
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.seeded import UserListSpider


class LikedVideosSpider(UserListSpider):
    name = "liked_videos"
    path = api.LIKED_VIDEOS_PATH
    kinds = kinds_of("liked_videos")
    response_keys = api.LIKED_VIDEOS_KEYS
    cursor_goes = "down"  # "on or before this time"
    item_class = LikedVideo
    allowed_fields = api.USER_VIDEO_FIELDS

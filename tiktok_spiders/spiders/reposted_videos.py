"""``reposted_videos``: the videos each user reposted.

Seeds: the usernames of the users feed (else the videos feed), ``-a users=PATH``,
or ``-a usernames=…``.  Every item carries the ``seed_username`` it was collected for.
"""

from __future__ import annotations

from tiktok_spiders import api
from tiktok_spiders.items import RepostedVideo
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.seeded import UserListSpider


class RepostedVideosSpider(UserListSpider):
    name = "reposted_videos"
    path = api.REPOSTED_VIDEOS_PATH
    kinds = kinds_of("reposted_videos")
    response_keys = api.REPOSTED_VIDEOS_KEYS
    item_class = RepostedVideo
    allowed_fields = api.USER_VIDEO_FIELDS

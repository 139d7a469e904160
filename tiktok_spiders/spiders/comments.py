"""``comments``: every comment the API serves for the videos of a feed (up to 1,000 each).

Seeds stream from the videos feed (``-a videos=PATH``, default the videos feed
in ``TIKTOK_DATA_DIR``) or come from ``-a video_ids=…``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tiktok_spiders import api
from tiktok_spiders.items import COMMENTS, Comment, known_fields
from tiktok_spiders.pipelines.validate import as_int
from tiktok_spiders.spiders.base import BadArgument, SeedFeedSpider, comma_list, parse_fields


class CommentsSpider(SeedFeedSpider):
    name = "comments"
    path = api.COMMENT_LIST_PATH
    kinds = (COMMENTS,)
    seed_noun = "video"
    seed_column = "id"

    def __init__(
        self,
        *args: Any,
        videos: str | None = None,
        video_ids: str | None = None,
        fields: str | None = None,
        min_comments: str | int = 0,
        **kwargs: Any,
    ) -> None:
        values = None
        if video_ids:
            values = [as_int(value) for value in comma_list(video_ids)]
            if None in values:
                raise BadArgument(f"video_ids must be numbers, not {video_ids!r}")
        super().__init__(*args, seed_values=values, seed_path=videos, **kwargs)
        self.fields = parse_fields(fields, api.COMMENT_FIELDS, always=("id", "video_id"))
        try:
            self.min_comments = int(min_comments)
        except ValueError:
            raise BadArgument(f"min_comments must be a whole number, not {min_comments!r}") from None
        if self.min_comments > 0:
            self.keep_record = self._has_enough_comments

    def _has_enough_comments(self, record: dict[str, Any]) -> bool:
        """Skip videos whose feed says they have fewer comments (a video without a count is asked)."""
        count = as_int(record.get("comment_count"))
        if count is not None and count < self.min_comments:
            if not self.tallying:
                self.crawler.stats.inc_value("tiktok/seeds/skipped_few_comments")
            return False
        return True

    def convert(self, value: Any) -> int | None:
        return as_int(value)

    def seed_weight(self, record: dict[str, Any]) -> int:
        """The comments a video's feed record counts, as many as the API serves: the most go first."""
        return min(as_int(record.get("comment_count")) or 0, api.COMMENT_CAP)

    def seeds(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for video_id in self.seed_stream():
            yield str(video_id), {"video_id": video_id, "max_count": api.MAX_COUNT, "cursor": 0}

    def parse_records(self, data: dict[str, Any], body: dict[str, Any]) -> Iterable[Comment]:
        for record in api.first_list(data, ("comments",)):
            yield Comment(**known_fields(Comment, {"video_id": body["video_id"], **record}))

    def next_body(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        follow = super().next_body(data, body)
        if follow is None or follow["cursor"] >= api.COMMENT_CAP:
            return None  # the API serves only the top 1,000 comments of a video
        follow["max_count"] = min(api.MAX_COUNT, api.COMMENT_CAP - follow["cursor"])
        return follow

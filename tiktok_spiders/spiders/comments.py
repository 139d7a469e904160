"""``comments``: every comment the API serves for the videos of a feed (up to 1,000 each).

Seeds stream from the videos feed (``-a videos=PATH``, default the videos feed
in ``TIKTOK_DATA_DIR``) or come from ``-a video_ids=…``.  The list endpoint is
shared with ``replies`` (:class:`CommentListSpider`): both page to the cap, keep
``display_name`` whenever it is sent, and ask for it on request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Self

from tiktok_spiders import api
from tiktok_spiders.feeds import has_column
from tiktok_spiders.items import Comment, known_fields
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.arguments import BadArgument, comma_list, parse_fields, whole_number
from tiktok_spiders.spiders.base import Note, ignore
from tiktok_spiders.spiders.seeded import SeedFeedSpider


def id_list(name: str, value: str) -> list[int]:
    """``-a video_ids=1,2`` as numbers, or :class:`BadArgument`."""
    values = [api.as_int(part) for part in comma_list(value)]
    if not values or None in values:
        raise BadArgument(f"{name} must be numbers, not {value!r}")
    return values  # type: ignore[return-value]


class CommentListSpider(SeedFeedSpider):
    """The comment list endpoint, asked for a video's comments or a comment's replies."""

    path = api.COMMENT_LIST_PATH
    #: The seed's key in the request body (``video_id`` or ``comment_id``).
    body_key: str
    #: The feed column counting what a seed will serve (``comment_count``, ``reply_count``),
    #: and the argument skipping seeds that count fewer.
    count_column: str
    minimum_argument: str
    #: Fields asked even when ``-a fields=`` leaves them out.
    always_fields: tuple[str, ...]

    def __init__(self, *args: Any, fields: str | None = None, minimum: str | int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = parse_fields(fields, api.COMMENT_FIELDS, always=self.always_fields)
        self.minimum = whole_number(self.minimum_argument, minimum)
        if self.minimum > 0:
            self.passed_over = self._below_minimum

    def validate(self, settings: Any) -> None:
        super().validate(settings)
        if settings.getbool("TIKTOK_ASK_DISPLAY_NAME") and self.fields and api.COMMENT_DISPLAY_NAME not in self.fields:
            self.fields = (*self.fields, api.COMMENT_DISPLAY_NAME)

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        path = spider.seed_path
        uncounted = (
            spider.minimum > 0
            and spider.seed_values is None
            and path is not None
            and path.is_file()
            and not has_column(path, spider.count_column)
        )
        if uncounted:  # a file of ids alone (tables --ids-only)
            spider.logger.warning(
                "%s has no %s column: %s=%d cannot tell which to skip, so every one is asked.",
                path,
                spider.count_column,
                spider.minimum_argument,
                spider.minimum,
            )
        return spider

    @property
    def cap(self) -> int:
        """``TIKTOK_COMMENT_CAP`` (0: none)."""
        return self.settings.getint("TIKTOK_COMMENT_CAP")

    def _below_minimum(self, record: dict[str, Any]) -> str | None:
        """Pass over seeds whose feed counts fewer than the minimum (one without a count is asked)."""
        count = api.as_int(record.get(self.count_column))
        return "below_minimum" if count is not None and count < self.minimum else None

    def convert(self, value: Any) -> int | None:
        return api.as_int(value)

    def seed_weight(self, record: dict[str, Any]) -> int:
        """What a feed record counts (comments, replies), as many as the API serves: the most go first."""
        count = api.as_int(record.get(self.count_column)) or 0
        return min(count, self.cap) if self.cap else count

    def pages_for(self, record: dict[str, Any]) -> int:
        """The requests a feed record's list takes: its count as the API serves it, 100 a page
        (an empty list is one request too)."""
        return max(1, math.ceil(self.seed_weight(record) / api.MAX_COUNT))

    def first_body(self, seed_value: int) -> dict[str, Any]:
        return {self.body_key: seed_value, "max_count": api.MAX_COUNT, "cursor": 0}

    def next_body(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        follow = super().next_body(data, body)
        if follow is None or not self.cap:
            return follow
        if follow["cursor"] >= self.cap:  # the API serves only the top of a list
            self.crawler.stats.inc_value(f"tiktok/{self.name}/lists_at_cap")
            return None
        follow["max_count"] = min(api.MAX_COUNT, self.cap - follow["cursor"])
        return follow


class CommentsSpider(CommentListSpider):
    name = "comments"
    kinds = kinds_of("comments")
    seed_noun = "video"
    seed_column = "id"
    body_key = "video_id"
    count_column = "comment_count"
    minimum_argument = "min_comments"
    always_fields = ("id", "video_id")

    def __init__(
        self,
        *args: Any,
        videos: str | None = None,
        video_ids: str | None = None,
        min_comments: str | int = 0,
        **kwargs: Any,
    ) -> None:
        values = id_list("video_ids", video_ids) if video_ids else None
        super().__init__(*args, seed_values=values, seed_path=videos, minimum=min_comments, **kwargs)

    def seeds(self, note: Note = ignore) -> Iterable[tuple[str, dict[str, Any]]]:
        for video_id in self.seed_stream(note):
            yield str(video_id), self.first_body(video_id)

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[Comment]:
        for record in api.first_list(data, ("comments",)):
            yield Comment(**known_fields(Comment, {"video_id": body["video_id"], **record}))

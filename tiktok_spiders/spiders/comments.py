"""``comments``: every comment the API serves for the videos of a feed (up to 1,000 each).

Seeds stream from the videos feed (``-a videos=PATH``, default the videos feed
in ``TIKTOK_DATA_DIR``) or come from ``-a video_ids=…``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tiktok_spiders import api
from tiktok_spiders.items import COMMENTS, Comment, known_fields
from tiktok_spiders.pipelines.validate import as_int
from tiktok_spiders.seeds import SeedFileError, check_feed, read_values
from tiktok_spiders.spiders.base import ApiSpider, BadArgument, comma_list, parse_fields


def default_feed(data_dir: str | Path, name: str) -> Path:
    """The feed an earlier stage wrote into the data directory (JSON Lines, else CSV)."""
    jsonl = Path(data_dir) / f"{name}.jsonl"
    csv = Path(data_dir) / f"{name}.csv"
    return csv if csv.is_file() and not jsonl.is_file() else jsonl


class SeedFeedSpider(ApiSpider):
    """A spider whose seeds are one column of an earlier stage's feed, or a list argument."""

    #: The feed read by default, and the column holding the seeds.
    seed_feed: str = "videos"
    seed_column: str

    def __init__(self, *args: Any, seed_values: list[Any] | None = None, seed_path: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.seed_values = seed_values
        self.seed_path = Path(seed_path) if seed_path else None

    def validate(self, settings: Any) -> None:
        super().validate(settings)
        if self.seed_values is None:
            self.seed_path = self.seed_path or default_feed(settings["TIKTOK_DATA_DIR"], self.seed_feed)
            try:
                check_feed(self.seed_path)
            except SeedFileError as error:
                raise BadArgument(str(error)) from None

    def convert(self, value: Any) -> Any:
        """A seed value from the feed, or None when it is unusable."""
        raise NotImplementedError

    def seed_stream(self) -> Iterable[Any]:
        """Unique seed values, in feed order, streamed."""
        seen: set[Any] = set()

        def malformed() -> None:
            self.crawler.stats.inc_value("tiktok/seeds/malformed")

        if self.seed_values is not None:
            values: Iterable[Any] = self.seed_values
        else:
            assert self.seed_path is not None
            values = read_values(self.seed_path, self.seed_column, self.convert, malformed)
        for value in values:
            if value not in seen:
                seen.add(value)
                yield value


class CommentsSpider(SeedFeedSpider):
    name = "comments"
    path = api.COMMENT_LIST_PATH
    kinds = (COMMENTS,)
    seed_noun = "video"
    seed_column = "id"

    def __init__(
        self, *args: Any, videos: str | None = None, video_ids: str | None = None, fields: str | None = None, **kwargs: Any
    ) -> None:
        values = None
        if video_ids:
            values = [as_int(value) for value in comma_list(video_ids)]
            if None in values:
                raise BadArgument(f"video_ids must be numbers, not {video_ids!r}")
        super().__init__(*args, seed_values=values, seed_path=videos, **kwargs)
        self.fields = parse_fields(fields, api.COMMENT_FIELDS, always=("id", "video_id"))

    def convert(self, value: Any) -> int | None:
        return as_int(value)

    def seeds(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for video_id in self.seed_stream():
            yield str(video_id), {"video_id": video_id, "max_count": api.MAX_COUNT, "cursor": 0}

    def parse_records(self, data: dict[str, Any], body: dict[str, Any]) -> Iterable[Comment]:
        for record in data.get("comments") or ():
            yield Comment(**known_fields(Comment, {"video_id": body["video_id"], **record}))

    def next_body(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        follow = super().next_body(data, body)
        if follow is None or follow["cursor"] >= api.COMMENT_CAP:
            return None  # the API serves only the top 1,000 comments of a video
        follow["max_count"] = min(api.MAX_COUNT, api.COMMENT_CAP - follow["cursor"])
        return follow

"""``replies``: the replies to every comment of the comments feed that has any.

The comment list endpoint serves a comment's replies when asked with its
``comment_id`` instead of a ``video_id``; they come without ``video_id``, so each
reply takes its video from its parent comment's feed record (with ``-a comment_ids=``,
from the comments in the ledger; empty when the parent is unknown).  Seeds are the
comments with ``reply_count`` of at least ``min_replies`` (default 1; a comment
without a count is asked), the most replied-to first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tiktok_spiders import api
from tiktok_spiders.items import Reply, known_fields
from tiktok_spiders.kinds import COMMENTS, kinds_of
from tiktok_spiders.spiders.base import Note, ignore
from tiktok_spiders.spiders.comments import CommentListSpider, id_list


class RepliesSpider(CommentListSpider):
    name = "replies"
    kinds = kinds_of("replies")
    seed_noun = "comment"
    seed_feeds = ("comments",)
    seed_argument = "comments"
    seed_column = "id"
    body_key = "comment_id"
    count_column = "reply_count"
    minimum_argument = "min_replies"
    always_fields = ("id", "parent_comment_id")
    seed_context = ("video_id",)

    def __init__(
        self,
        *args: Any,
        comments: str | None = None,
        comment_ids: str | None = None,
        min_replies: str | int = 1,
        **kwargs: Any,
    ) -> None:
        asked = id_list("comment_ids", comment_ids) if comment_ids else None
        super().__init__(
            *args,
            seed_values=[(comment_id, None) for comment_id in asked] if asked else None,  # videos: see seeds()
            seed_path=comments,
            minimum=min_replies,
            **kwargs,
        )

    def seed_record_context(self, record: dict[str, Any]) -> int | None:
        return api.as_int(record.get("video_id"))

    def seeds(self, note: Note = ignore) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
        for comment_id, video_id in self.seed_stream(note):
            if video_id is None and self.seed_values is not None:  # asked by id: the parent in the ledger
                video_id = self._video_of(comment_id)
            yield str(comment_id), self.first_body(comment_id), {"video_id": video_id}

    def _video_of(self, comment_id: int) -> int | None:
        parent = self.ledger.record(COMMENTS.feed, str(comment_id))
        return api.as_int(parent.get("video_id")) if parent else None

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[Reply]:
        video_id = context.get("video_id")
        for record in api.first_list(data, ("comments",)):
            sent = {key: value for key, value in known_fields(Reply, record).items() if value is not None}
            # what the API sends wins; the parent's video and id fill in what it leaves out
            yield Reply(**{"video_id": video_id, "parent_comment_id": body["comment_id"], **sent})

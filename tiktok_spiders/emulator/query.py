"""How the emulator decides whether a video matches a parsed query.

Semantics from the documentation: every ``and`` condition holds, at least one
``or`` condition holds (when there are any), no ``not`` condition holds.
String matching is case-insensitive; ``keyword`` matches inside the description.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tiktok_spiders.query import NUMERIC_FIELDS, Condition, Query, QueryError

if TYPE_CHECKING:
    from tiktok_spiders.emulator.corpus import Corpus

__all__ = ["Query", "QueryError", "matches", "video_length_of"]


def video_length_of(seconds: int) -> str:
    if seconds < 15:
        return "SHORT"
    if seconds <= 60:
        return "MID"
    if seconds <= 300:
        return "LONG"
    return "EXTRA_LONG"


def _actual(condition: Condition, video: dict[str, Any], corpus: Corpus) -> list[Any]:
    name = condition.field_name
    if name == "create_date":
        return [datetime.fromtimestamp(video["create_time"], UTC).strftime("%Y%m%d")]
    if name == "username":
        return [corpus.real_username(video).lower()]
    if name == "video_id":
        return [video["id"]]
    if name == "hashtag_name":
        return list(video.get("hashtag_names", ()))
    if name == "effect_id":
        return list(video.get("effect_ids", ()))
    if name == "video_length":
        return [video_length_of(video.get("video_duration", 0))]
    if name in ("view_count", "comment_count"):
        return [video.get(name, 0)]
    return [video.get(name)]  # region_code, music_id


def holds(condition: Condition, video: dict[str, Any], corpus: Corpus) -> bool:
    if condition.field_name == "keyword":
        text = video.get("video_description", "").lower()
        return any(value.lower() in text for value in condition.field_values)
    actual = _actual(condition, video, corpus)
    if condition.field_name in NUMERIC_FIELDS:
        wanted: list[Any] = [int(value) for value in condition.field_values]
    elif condition.field_name in ("hashtag_name", "username"):
        wanted = [value.lower().lstrip("#@") for value in condition.field_values]
    else:
        wanted = list(condition.field_values)
    if condition.operation in ("EQ", "IN"):
        return any(value in wanted for value in actual)
    bound = wanted[0]
    compare = {
        "GT": lambda a: a > bound,
        "GTE": lambda a: a >= bound,
        "LT": lambda a: a < bound,
        "LTE": lambda a: a <= bound,
    }[condition.operation]
    return any(value is not None and compare(value) for value in actual)


def matches(query: Query, video: dict[str, Any], corpus: Corpus) -> bool:
    return (
        all(holds(condition, video, corpus) for condition in query.and_)
        and (not query.or_ or any(holds(condition, video, corpus) for condition in query.or_))
        and not any(holds(condition, video, corpus) for condition in query.not_)
    )

"""The video query language: ``and`` / ``or`` / ``not`` lists of conditions.

Parsing validates a query as the API does (unknown field, operation or region,
``EQ`` with several values, an empty query) and raises :class:`QueryError` with
the message the emulator answers ``invalid_params`` with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tiktok_spiders.api import CONDITION_FIELDS, OPERATIONS, REGION_CODES, VIDEO_LENGTHS

if TYPE_CHECKING:
    from tiktok_spiders.emulator.corpus import Corpus

NUMERIC_FIELDS = frozenset({"video_id", "music_id", "view_count", "comment_count"})
ORDERED_FIELDS = NUMERIC_FIELDS | {"create_date"}


class QueryError(ValueError):
    """A query the API would reject with ``invalid_params``."""


def video_length_of(seconds: int) -> str:
    if seconds < 15:
        return "SHORT"
    if seconds <= 60:
        return "MID"
    if seconds <= 300:
        return "LONG"
    return "EXTRA_LONG"


@dataclass(frozen=True)
class Condition:
    field_name: str
    operation: str
    field_values: tuple[str, ...]

    @classmethod
    def parse(cls, raw: Any) -> Condition:
        if not isinstance(raw, dict):
            raise QueryError("Invalid query: a condition must be an object")
        field_name = raw.get("field_name")
        operation = raw.get("operation")
        values = raw.get("field_values")
        if field_name not in CONDITION_FIELDS:
            raise QueryError(f"Invalid field_name: {field_name}")
        if operation not in OPERATIONS:
            raise QueryError(f"Invalid operation: {operation}")
        if not isinstance(values, list) or not values:
            raise QueryError("field_values must be a non-empty list")
        values = tuple(str(value) for value in values)
        if operation != "IN" and len(values) != 1:
            raise QueryError(f"operation {operation} must have one field value")
        if operation in ("GT", "GTE", "LT", "LTE") and field_name not in ORDERED_FIELDS:
            raise QueryError(f"operation {operation} is not supported for field {field_name}")
        if field_name == "region_code":
            for value in values:
                if value not in REGION_CODES:
                    raise QueryError(f"Invalid region_code: {value}")
        if field_name == "video_length":
            for value in values:
                if value not in VIDEO_LENGTHS:
                    raise QueryError(f"Invalid video_length: {value}")
        if field_name in NUMERIC_FIELDS:
            for value in values:
                if not value.isdigit():
                    raise QueryError(f"Invalid {field_name}: {value}")
        return cls(field_name, operation, values)

    def _actual(self, video: dict[str, Any], corpus: Corpus) -> list[Any]:
        name = self.field_name
        if name == "create_date":
            return [datetime.fromtimestamp(video["create_time"], UTC).strftime("%Y%m%d")]
        if name == "username":
            return [corpus.real_username(video).lower()]
        if name == "region_code":
            return [video["region_code"]]
        if name == "video_id":
            return [video["id"]]
        if name == "hashtag_name":
            return list(video.get("hashtag_names", ()))
        if name == "music_id":
            return [video.get("music_id")]
        if name == "effect_id":
            return list(video.get("effect_ids", ()))
        if name == "video_length":
            return [video_length_of(video.get("video_duration", 0))]
        if name in ("view_count", "comment_count"):
            return [video.get(name, 0)]
        return []

    def holds(self, video: dict[str, Any], corpus: Corpus) -> bool:
        if self.field_name == "keyword":
            text = video.get("video_description", "").lower()
            return any(value.lower() in text for value in self.field_values)
        actual = self._actual(video, corpus)
        if self.field_name in NUMERIC_FIELDS:
            wanted: list[Any] = [int(value) for value in self.field_values]
        elif self.field_name in ("hashtag_name", "username"):
            wanted = [value.lower().lstrip("#@") for value in self.field_values]
        else:
            wanted = list(self.field_values)
        if self.operation in ("EQ", "IN"):
            return any(value in wanted for value in actual)
        bound = wanted[0]
        compare = {
            "GT": lambda a: a > bound,
            "GTE": lambda a: a >= bound,
            "LT": lambda a: a < bound,
            "LTE": lambda a: a <= bound,
        }[self.operation]
        return any(value is not None and compare(value) for value in actual)


@dataclass(frozen=True)
class Query:
    """A parsed query; ``matches`` applies the documented and/or/not semantics."""

    and_: tuple[Condition, ...] = ()
    or_: tuple[Condition, ...] = ()
    not_: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> Query:
        if not isinstance(raw, dict):
            raise QueryError("Invalid query: query must be an object")
        unknown = set(raw) - {"and", "or", "not"}
        if unknown:
            raise QueryError(f"Invalid query: unknown key {sorted(unknown)[0]}")
        lists = {}
        for key in ("and", "or", "not"):
            conditions = raw.get(key) or []
            if not isinstance(conditions, list):
                raise QueryError(f"Invalid query: {key} must be a list")
            lists[key] = tuple(Condition.parse(condition) for condition in conditions)
        if not any(lists.values()):
            raise QueryError(
                "A valid query must contain at least one non-empty and, or or not condition lists"
            )
        return cls(lists["and"], lists["or"], lists["not"])

    def matches(self, video: dict[str, Any], corpus: Corpus) -> bool:
        return (
            all(condition.holds(video, corpus) for condition in self.and_)
            and (not self.or_ or any(condition.holds(video, corpus) for condition in self.or_))
            and not any(condition.holds(video, corpus) for condition in self.not_)
        )

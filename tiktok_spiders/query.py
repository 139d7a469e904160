"""The video query language: ``and`` / ``or`` / ``not`` lists of conditions.

Parsing validates a query as the API does — unknown field, operation or region
code, ``EQ`` with several values, an empty query — and raises
:class:`QueryError` with a sentence that names the problem.  The spiders check
arguments with it before spending a request; the emulator answers
``invalid_params`` with the same sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiktok_spiders.api import CONDITION_FIELDS, OPERATIONS, REGION_CODES, VIDEO_LENGTHS

NUMERIC_FIELDS = frozenset({"video_id", "music_id", "view_count", "comment_count"})
ORDERED_FIELDS = NUMERIC_FIELDS | {"create_date"}


class QueryError(ValueError):
    """A query the API would reject with ``invalid_params``."""


@dataclass(frozen=True)
class Condition:
    field_name: str
    operation: str
    field_values: tuple[str, ...]

    @classmethod
    def parse(cls, raw: Any) -> Condition:
        if not isinstance(raw, dict):
            raise QueryError("a query condition must be an object with field_name, operation and field_values")
        field_name = raw.get("field_name")
        operation = raw.get("operation")
        values = raw.get("field_values")
        if field_name not in CONDITION_FIELDS:
            raise QueryError(f"unknown field_name {field_name!r} (one of {', '.join(sorted(CONDITION_FIELDS))})")
        if operation not in OPERATIONS:
            raise QueryError(f"unknown operation {operation!r} (one of {', '.join(sorted(OPERATIONS))})")
        if not isinstance(values, list) or not values:
            raise QueryError(f"field_values of {field_name} must be a non-empty list")
        values = tuple(str(value) for value in values)
        if operation != "IN" and len(values) != 1:
            raise QueryError(f"operation {operation} must have one field value, {field_name} has {len(values)}")
        if operation in ("GT", "GTE", "LT", "LTE") and field_name not in ORDERED_FIELDS:
            raise QueryError(f"operation {operation} is not supported for field {field_name}")
        for value in values:
            if field_name == "region_code" and value not in REGION_CODES:
                raise QueryError(f"unknown region code {value!r}" + (" (use GB)" if value == "UK" else ""))
            if field_name == "video_length" and value not in VIDEO_LENGTHS:
                raise QueryError(f"unknown video_length {value!r} (one of {', '.join(sorted(VIDEO_LENGTHS))})")
            if field_name in NUMERIC_FIELDS and not value.isdigit():
                raise QueryError(f"{field_name} must be a number, not {value!r}")
            if field_name == "create_date" and not (len(value) == 8 and value.isdigit()):
                raise QueryError(f"create_date must be YYYYMMDD, not {value!r}")
        return cls(field_name, operation, values)

    def as_json(self) -> dict[str, Any]:
        return {"field_name": self.field_name, "operation": self.operation, "field_values": list(self.field_values)}


@dataclass(frozen=True)
class Query:
    and_: tuple[Condition, ...] = ()
    or_: tuple[Condition, ...] = ()
    not_: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> Query:
        if not isinstance(raw, dict):
            raise QueryError("the query must be a JSON object with and / or / not lists")
        unknown = set(raw) - {"and", "or", "not"}
        if unknown:
            raise QueryError(f"unknown query key {sorted(unknown)[0]!r} (use and / or / not)")
        lists = {}
        for key in ("and", "or", "not"):
            conditions = raw.get(key) or []
            if not isinstance(conditions, list):
                raise QueryError(f"the query's {key} must be a list of conditions")
            lists[key] = tuple(Condition.parse(condition) for condition in conditions)
        if not any(lists.values()):
            raise QueryError("a query must contain at least one non-empty and, or or not condition list")
        return cls(lists["and"], lists["or"], lists["not"])

    def as_json(self) -> dict[str, Any]:
        """The body's ``query`` object (empty lists left out)."""
        lists = {"and": self.and_, "or": self.or_, "not": self.not_}
        return {key: [condition.as_json() for condition in value] for key, value in lists.items() if value}

"""Validation: required fields present, every field of the type the API documents, text that can be written.

Each field is checked against its item's annotation: whole numbers are whole numbers
(ids positive and within int64, counts and durations not negative, times within what a
table can hold), text is text, flags are flags, lists are lists, objects are objects.
A record that fails is dropped at crawl time, so ``tables`` and ``report`` never meet
``like_count: "many"``; a whole number sent as digits (``"12"``) is kept, as the number.

NUL bytes are stripped from strings (they break CSV readers and C tools), and a
lone UTF-16 surrogate — half an emoji, which JSON can carry but UTF-8 cannot —
becomes U+FFFD, since the ledger and the feeds could not store the record at all.

Problems are counted per field in stats (``tiktok/validation/<field>/<problem>``)
and the item is dropped with a reason, so a malformed record is visible in the
summary rather than silently wrong in a feed.
"""

from __future__ import annotations

import functools
import re
import typing
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from tiktok_spiders import api
from tiktok_spiders.pipelines import RecordPipeline

if TYPE_CHECKING:
    from collections.abc import Callable


LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a Python str holds a valid pair as one code point
#: What either cleaning would change: most strings have neither and cost one scan.
SUSPECT = re.compile("[\x00\ud800-\udfff]")


def without_nul(text: str) -> str:
    return text.replace("\x00", "")


def without_lone_surrogates(text: str) -> str:
    return LONE_SURROGATE.sub("\ufffd", text)


#: Each cleaning, by the name it is counted under in stats.
CLEANINGS = (("nul_stripped", without_nul), ("surrogate_replaced", without_lone_surrogates))


def map_strings(value: Any, clean: Callable[[str], str]) -> Any:
    """The value with ``clean`` applied to every string inside it."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [map_strings(element, clean) for element in value]
    if isinstance(value, dict):
        return {key: map_strings(element, clean) for key, element in value.items()}
    return value


#: The latest time a table can hold (pandas' nanoseconds end in 2262): a later one is not a real time.
MAX_TIME = 9_223_372_036
TIME_FIELDS = frozenset({"create_time", "playlist_last_updated"})


@functools.cache
def field_types(item_class: type) -> dict[str, tuple[type, ...]]:
    """The Python types each field may hold (None aside), from the item's annotations."""
    hints = typing.get_type_hints(item_class)
    types: dict[str, tuple[type, ...]] = {}
    for name, hint in hints.items():
        allowed = []
        for arm in typing.get_args(hint) or (hint,):
            origin = typing.get_origin(arm) or arm
            if origin is not type(None):
                allowed.append(origin)
        types[name] = tuple(allowed)
    return types


def checked_value(name: str, value: Any, allowed: tuple[type, ...], is_id: bool) -> tuple[Any, str | None]:
    """``(value, None)`` when ``value`` is of an allowed type (a whole number sent as digits becomes
    the number), else ``(value, problem)``."""
    if int in allowed:
        number = api.as_int(value)
        if number is None:
            return value, "not_an_integer"
        if is_id and name in ("id", "video_id", "parent_comment_id") and number <= 0:
            return value, "not_a_positive_id"
        if number < 0:
            return value, "negative"
        if name in TIME_FIELDS and number > MAX_TIME:
            return value, "not_a_time"
        return number, None
    if bool in allowed:
        return value, None if isinstance(value, bool) else "not_true_or_false"
    if not isinstance(value, allowed):
        return value, f"not_{'_or_'.join(kind.__name__ for kind in allowed)}"
    return value, None


class ValidationPipeline(RecordPipeline):
    def _drop(self, field: str, problem: str) -> DropItem:
        self.stats.inc_value(f"tiktok/validation/{field}/{problem}")
        self.stats.inc_value("tiktok/dropped")
        return DropItem(f"{field} is {problem}")

    def process_item(self, item: Any) -> Any:
        kind = self.kind(item)
        if kind is None:
            return item
        record = vars(item)  # our items are flat dataclasses: edit their fields in place
        for name, value in record.items():
            if isinstance(value, str) and SUSPECT.search(value) is None:
                continue
            if isinstance(value, (str, list, dict)):
                for problem, clean in CLEANINGS:
                    cleaned = map_strings(value, clean)
                    if cleaned != value:
                        self.stats.inc_value(f"tiktok/validation/{name}/{problem}")
                        record[name] = value = cleaned
        for name in kind.required:
            if record[name] in (None, ""):
                raise self._drop(name, "missing")
        types = field_types(kind.item_class)
        for name, value in record.items():
            if value is None or name not in types:
                continue
            kept, wrong = checked_value(name, value, types[name], name in kind.id_fields)
            if wrong:
                raise self._drop(name, wrong)
            record[name] = kept
        return item

"""Validation: required fields present, ids integers, text that can be written.

NUL bytes are stripped from strings (they break CSV readers and C tools), and a
lone UTF-16 surrogate — half an emoji, which JSON can carry but UTF-8 cannot —
becomes U+FFFD, since the ledger and the feeds could not store the record at all.

Problems are counted per field in stats (``tiktok/validation/<field>/<problem>``)
and the item is dropped with a reason, so a malformed record is visible in the
summary rather than silently wrong in a feed.
"""

from __future__ import annotations

import re
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
        for name in kind.id_fields:
            value = record[name]
            if value is None:
                continue
            number = api.as_int(value)
            if number is None:
                raise self._drop(name, "not_an_integer")
            record[name] = number
        return item

"""Validation: required fields present, ids integers, NUL bytes stripped.

Problems are counted per field in stats (``tiktok/validation/<field>/<problem>``)
and the item is dropped with a reason, so a malformed record is visible in the
summary rather than silently wrong in a feed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from tiktok_spiders.items import kind_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def without_nul(value: Any) -> Any:
    """The value with NUL bytes removed from every string inside it."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [without_nul(element) for element in value]
    if isinstance(value, dict):
        return {key: without_nul(element) for key, element in value.items()}
    return value


def as_int(value: Any) -> int | None:
    """An id as an exact int (the API sends int64 numbers; some clients send strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class ValidationPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats

    @property
    def spider_name(self) -> str | None:
        return self.crawler.spider.name if self.crawler.spider else None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        return cls(crawler)

    def _drop(self, field: str, problem: str) -> DropItem:
        self.stats.inc_value(f"tiktok/validation/{field}/{problem}")
        self.stats.inc_value("tiktok/dropped")
        return DropItem(f"{field} is {problem}")

    def process_item(self, item: Any) -> Any:
        kind = kind_of(item, self.spider_name)
        if kind is None:
            return item
        record = vars(item)  # our items are flat dataclasses: edit their fields in place
        for name, value in record.items():
            if isinstance(value, str | list | dict):
                cleaned = without_nul(value)
                if cleaned != value:
                    self.stats.inc_value(f"tiktok/validation/{name}/nul_stripped")
                    record[name] = cleaned
        for name in kind.required:
            if record[name] in (None, ""):
                raise self._drop(name, "missing")
        for name in kind.id_fields:
            value = record[name]
            if value is None:
                continue
            number = as_int(value)
            if number is None:
                raise self._drop(name, "not_an_integer")
            record[name] = number
        return item

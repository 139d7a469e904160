"""Item pipelines: validate (100), then deduplicate and store in the ledger (300)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiktok_spiders.kinds import RecordKind, kind_of

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler


class RecordPipeline:
    """A pipeline for our record items; items of other kinds pass through untouched."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def kind(self, item: Any) -> RecordKind | None:
        """The kind of record ``item`` is for the running spider, None if it is not ours."""
        return kind_of(item, self.crawler.spider.name if self.crawler.spider else None)

"""Deduplicate and store: the ledger's primary key decides what is new.

A record whose kind and key the ledger already holds — from this run or an
earlier one — is dropped and counted as a duplicate; a new one is staged and
committed together with its page by the spider (``Ledger.finish_page``), which
counts it once the commit holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from tiktok_spiders.ledger import Ledger
from tiktok_spiders.pipelines import RecordPipeline

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class LedgerPipeline(RecordPipeline):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.ledger = Ledger.for_crawler(crawler)

    def process_item(self, item: Any) -> Any:
        kind = self.kind(item)
        if kind is None:
            return item
        record = vars(item)  # a flat dataclass: no need for ItemAdapter's deep copy
        if not self.ledger.add_record(kind.feed, kind.key(record), record):
            self.stats.inc_value(f"tiktok/duplicates/{kind.feed}")
            raise DropItem(f"duplicate {kind.feed} record {kind.key(record)}", log_level="DEBUG")
        return item

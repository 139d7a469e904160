"""Feeds as views of the ledger, written when a spider closes.

Each kind of record a spider stores is written whole — ``<data dir>/<kind>.jsonl``
and ``.csv`` — to a temporary file that is then renamed, so a reader never sees
half a file and a resumed run never appends a duplicate.  CSV is written by
Scrapy's item exporter; JSON Lines are the ledger's own JSON text, copied.
``-o`` / ``-O`` (the ``FEEDS`` setting) replace these default feeds, as in any
Scrapy project.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exporters import CsvItemExporter

from tiktok_spiders.ledger import Ledger

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from tiktok_spiders.items import RecordKind

logger = logging.getLogger(__name__)


class JsonCellCsvItemExporter(CsvItemExporter):
    """CSV with lists and objects as JSON text (Scrapy's default joins lists with commas)."""

    def serialize_field(self, field: Any, name: str, value: Any) -> Any:
        if isinstance(value, list | dict):
            return json.dumps(value, ensure_ascii=False)
        return super().serialize_field(field, name, value)


FORMATS = ("jsonl", "csv")


def write_feed(ledger: Ledger, kind: RecordKind, path: Path, fmt: str) -> int:
    """Write every stored record of ``kind`` to ``path`` atomically; returns the count."""
    partial = path.with_name(path.name + ".partial")
    names = [field.name for field in fields(kind.item_class)]
    count = 0
    with partial.open("wb") as handle:
        if fmt == "jsonl":
            # The ledger holds each record as the JSON line Scrapy's JsonLinesItemExporter
            # would write (json.dumps of the item, fields in order, UTF-8): copy it, which is
            # six times faster than serialising every record again (bench/run.py).
            for line in ledger.record_lines(kind.feed):
                handle.write(line.encode() + b"\n")
                count += 1
        else:
            exporter = JsonCellCsvItemExporter(handle, encoding="utf-8", fields_to_export=names)
            exporter.start_exporting()
            for record in ledger.records(kind.feed):
                # plain dicts in the item's field order: the exporter is several times
                # faster with them than with dataclass instances
                exporter.export_item({name: record.get(name) for name in names})
                count += 1
            if count == 0:  # still a header, so that an empty table reads back with its columns
                exporter.csv_writer.writerow(names)
            exporter.finish_exporting()
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return count


class LedgerFeeds:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.data_dir = Path(crawler.settings["TIKTOK_DATA_DIR"])
        self.formats = [fmt.strip() for fmt in crawler.settings.getlist("TIKTOK_FEED_FORMATS") if fmt.strip()]
        unknown = [fmt for fmt in self.formats if fmt not in FORMATS]
        if unknown:
            raise ValueError(f"TIKTOK_FEED_FORMATS: unknown format {unknown[0]!r} (use {', '.join(FORMATS)})")
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LedgerFeeds:
        return cls(crawler)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.crawler.settings.getdict("FEEDS") or not hasattr(spider, "kinds"):
            return
        ledger = Ledger.for_crawler(self.crawler)
        for kind in spider.kinds:
            for fmt in self.formats:
                path = self.data_dir / f"{kind.feed}.{fmt}"
                count = write_feed(ledger, kind, path, fmt)
                self.crawler.stats.set_value(f"tiktok/feed/{kind.feed}.{fmt}", count)
                logger.info("Wrote %d %s to %s", count, kind.feed, path)

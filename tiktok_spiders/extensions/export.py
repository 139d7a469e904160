"""Feeds as views of the ledger, and the provenance manifest, written when a spider closes.

Each kind of record a spider stores is written in every ``TIKTOK_FEED_FORMATS`` —
``<data dir>/<kind>.jsonl`` and ``.csv`` — by :func:`feeds.write_feed`.
The default feeds are written whatever ``-o`` / ``-O`` (the ``FEEDS`` setting) say:
they are what the next stage reads.  Scrapy's feeds hold only the records this run
stored (what an earlier run stored is not asked again); when the data directory
holds more, a line at close says so and where all of them are.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals

from tiktok_spiders import pilot
from tiktok_spiders.feeds import feed_formats, feed_path, write_feed
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.manifest import FILENAME as MANIFEST
from tiktok_spiders.manifest import run_record, write_manifest
from tiktok_spiders.spiders.base import ApiSpider

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class LedgerFeeds:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.data_dir = Path(crawler.settings["TIKTOK_DATA_DIR"])
        self.formats = feed_formats(crawler.settings)
        self.private = crawler.settings.getbool("TIKTOK_PRIVATE_FILES")
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LedgerFeeds:
        return cls(crawler)

    def say_what_scrapy_feeds_hold(self, spider: ApiSpider, ledger: Ledger) -> None:
        """A line for each kind of which ``-o`` / ``-O`` hold fewer records than the data directory."""
        for kind in spider.kinds:
            this_run = self.crawler.stats.get_value(f"tiktok/records/{kind.feed}", 0)
            in_all = ledger.count_records(kind.feed)
            if in_all > this_run:
                logger.warning(
                    "-o/-O hold the %d %s this run stored, of %d in %s: earlier runs stored the others, which "
                    "are not asked again. All of them are in %s.",
                    this_run,
                    kind.feed,
                    in_all,
                    self.data_dir,
                    feed_path(self.data_dir, kind, self.formats[0]),
                )

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if not isinstance(spider, ApiSpider) or reason == "invalid_credentials":
            return  # credentials refused: nothing was collected, and exit status 2 writes nothing
        ledger = Ledger.for_crawler(self.crawler)
        path = self.data_dir
        try:
            for kind in spider.kinds:
                for fmt in self.formats:
                    path = feed_path(self.data_dir, kind, fmt)
                    written = write_feed(ledger, kind, path, fmt, self.private)
                    self.crawler.stats.set_value(f"tiktok/feed/{kind.feed}.{fmt}", written.records)
                    how = f"{written.new} added to the feed" if written.grown else "written whole"
                    logger.info("Wrote %d %s to %s (%s)", written.records, kind.feed, path, how)
            if self.crawler.settings.getdict("FEEDS"):
                self.say_what_scrapy_feeds_hold(spider, ledger)
            path = self.data_dir / MANIFEST
            stats = self.crawler.stats
            outcome = (
                "write_failed"
                if stats.get_value("tiktok/write_failed")
                else "purge_held"
                if stats.get_value("tiktok/purge_held")
                else "pilot"
                if pilot.of(self.crawler)
                else reason
            )
            ledger.add_run(spider.name, run_record(spider, outcome))
            write_manifest(ledger, self.data_dir, self.private)
        except (OSError, sqlite3.Error) as error:
            # Scrapy would log this handler's exception and exit 0: the exit status must say it
            message = f"could not write {path}: {error}"
            self.crawler.stats.set_value("tiktok/write_failed", message)
            if isinstance(error, sqlite3.DatabaseError) and "malformed" in str(error):
                logger.error(
                    "%s: the ledger is damaged; restore it from a backup, or use another TIKTOK_DATA_DIR.", message
                )
            else:
                logger.error("%s. The records are safe in the ledger: fix this and run the same command.", message)

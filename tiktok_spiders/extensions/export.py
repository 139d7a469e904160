"""Feeds as views of the ledger, and the provenance manifest, written when a spider closes.

Each kind of record a spider stores is written — ``<data dir>/<kind>.jsonl`` and
``.csv`` — to a temporary file that is then renamed, so a reader never sees half a
file; a feed unchanged since it was written grows by the records stored after it
(:func:`write_feed`), else it is written whole, each record once.  JSON Lines are the
ledger's own JSON text, copied; CSV rows are what Scrapy's ``CsvItemExporter``
writes, with lists and objects as JSON text.
``-o`` / ``-O`` (the ``FEEDS`` setting) replace these default feeds, as in any
Scrapy project.
"""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from scrapy import signals

from tiktok_spiders.config import feed_formats
from tiktok_spiders.files import atomic_write, copy_into
from tiktok_spiders.items import KINDS, unavailable_kind
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.manifest import FILENAME as MANIFEST
from tiktok_spiders.manifest import write_manifest
from tiktok_spiders.spiders.base import ApiSpider

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from tiktok_spiders.items import RecordKind

logger = logging.getLogger(__name__)


def csv_cell(value: Any) -> Any:
    """A CSV cell as ``CsvItemExporter`` writes it, but lists and objects as JSON text
    (Scrapy's default joins lists with commas, which cannot be read back)."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def known_feeds(data_dir: Path) -> list[RecordKind]:
    """Every kind of record a data directory may hold a feed of (``<spider>_unavailable`` too)."""
    kinds = {kind.feed: kind for kind in KINDS.values()}
    for path in sorted(Path(data_dir).glob("*_unavailable.*")):
        kinds.setdefault(path.stem, unavailable_kind(path.stem.removesuffix("_unavailable")))
    return list(kinds.values())


class Written(NamedTuple):
    records: int  # in the feed
    new: int  # of which written now
    grown: bool  # whether the feed grew (else it was written whole)


def write_feed(ledger: Ledger, kind: RecordKind, path: Path, fmt: str, private: bool = True) -> Written:
    """Write every stored record of ``kind`` to ``path`` atomically.

    A feed this ledger wrote, unchanged since (its size and time as recorded) and with no
    record deleted since, grows by what is new: the old file is copied by the kernel into
    the new one and only the new records are written, so a close that stored N records
    costs about N, not the whole feed.  The result is the same bytes a full rewrite gives
    (a reader still never sees half a file; each record still appears once).
    """
    write = write_jsonl if fmt == "jsonl" else write_csv
    state = ledger.feed_state(str(path))
    on_disk = path.stat() if state is not None and path.is_file() else None
    grows = (
        state is not None
        and on_disk is not None
        and state[0] == kind.feed
        and (state[3], state[4], state[5]) == (on_disk.st_size, on_disk.st_mtime_ns, ledger.deletions())
    )
    after, count = (state[1], state[2]) if grows and state is not None else (0, 0)
    with atomic_write(path, private=private) as handle:
        if grows:
            copy_into(path, handle)
        added, last = write(ledger, kind, handle, after=after, header=not grows)
    stat = path.stat()
    ledger.feed_written(str(path), kind.feed, max(last, after), count + added, stat.st_size, stat.st_mtime_ns)
    return Written(count + added, added, grows)


def write_jsonl(
    ledger: Ledger, kind: RecordKind, handle: IO[str], after: int = 0, header: bool = True
) -> tuple[int, int]:
    """The records stored after rowid ``after`` as JSON lines: ``(how many, the last rowid)``."""
    # The ledger holds each record as the JSON line Scrapy's JsonLinesItemExporter
    # would write (json.dumps of the item, fields in order, UTF-8): copy it, which is
    # six times faster than serialising every record again (bench/run.py).
    count = last = 0
    for last, line in ledger.record_rows(kind.feed, after):  # noqa: B007 - the last rowid is returned
        handle.write(line + "\n")
        count += 1
    return count, last


def write_csv(
    ledger: Ledger, kind: RecordKind, handle: IO[str], after: int = 0, header: bool = True
) -> tuple[int, int]:
    """The records stored after rowid ``after`` as CSV rows, under the header when ``header``."""
    # csv.writer set up as CsvItemExporter sets it up, fed rows directly: the exporter's
    # per-field machinery took 1.95 s against 0.26 s for 25,210 comments (cProfile of the
    # comments stage).  test_parsing checks that the bytes are the same.
    names = [field.name for field in fields(kind.item_class)]
    writer = csv.writer(handle)
    if header:
        writer.writerow(names)  # also for an empty table: it reads back with its columns
    count = last = 0
    for last, line in ledger.record_rows(kind.feed, after):  # noqa: B007
        record = json.loads(line)
        writer.writerow([csv_cell(record.get(name)) for name in names])
        count += 1
    return count, last


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

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if not isinstance(spider, ApiSpider) or reason == "invalid_credentials":
            return  # credentials refused: nothing was collected, and exit status 2 writes nothing
        ledger = Ledger.for_crawler(self.crawler)
        path = self.data_dir
        try:
            if not self.crawler.settings.getdict("FEEDS"):
                for kind in spider.kinds:
                    for fmt in self.formats:
                        path = self.data_dir / f"{kind.feed}.{fmt}"
                        written = write_feed(ledger, kind, path, fmt, self.private)
                        self.crawler.stats.set_value(f"tiktok/feed/{kind.feed}.{fmt}", written.records)
                        how = f"{written.new} added to the feed" if written.grown else "written whole"
                        logger.info("Wrote %d %s to %s (%s)", written.records, kind.feed, path, how)
            path = self.data_dir / MANIFEST
            outcome = "write_failed" if self.crawler.stats.get_value("tiktok/write_failed") else reason
            ledger.add_run(spider.name, spider.run_record(outcome))
            write_manifest(ledger, self.data_dir, self.private)
        except (OSError, sqlite3.Error) as error:
            # Scrapy would log this handler's exception and exit 0: the exit status must say it
            message = f"could not write {path}: {error}"
            self.crawler.stats.set_value("tiktok/write_failed", message)
            logger.error("%s. The records are safe in the ledger: fix this and run the same command.", message)

"""The ledger: one SQLite file per data directory holding everything a crawl knows.

- ``records``: every stored record, keyed by its kind and id (the primary key is
  the deduplication, across runs too);
- ``seeds``: per spider and seed (a window, a video, a user) the next cursor,
  the search id, and whether it is open, done or failed (with the reason);
- ``requests``: requests spent per UTC day, across runs.

A page's records and the cursor that follows it are committed together by
:meth:`Ledger.finish_page`, so a crash leaves both or neither; resuming asks the
ledger what is left.  Feeds are views of it, written at close (see
``extensions/export.py``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

FILENAME = ".tiktok-ledger.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, key)
);
CREATE TABLE IF NOT EXISTS seeds (
    spider TEXT NOT NULL,
    seed TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    cursor INTEGER,
    search_id TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    updated TEXT NOT NULL,
    PRIMARY KEY (spider, seed)
);
CREATE TABLE IF NOT EXISTS requests (
    day TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

OPEN, DONE, FAILED = "open", "done", "failed"


@dataclass(frozen=True)
class SeedState:
    status: str
    cursor: int | None
    search_id: str | None
    pages: int
    reason: str | None


def utc_today() -> date:
    return datetime.now(UTC).date()


class Ledger:
    """Records, seed progress and request counts of one data directory."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level="DEFERRED")
        # WAL + NORMAL: a committed page survives kill -9; a power cut can lose
        # the last pages, but never half of one.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.commit()

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> Ledger:
        """The crawler's ledger, opened by whichever component asks first and closed with the engine."""
        ledger = getattr(crawler, "tiktok_ledger", None)
        if ledger is None:
            ledger = cls(crawler.settings["TIKTOK_DATA_DIR"])
            crawler.tiktok_ledger = ledger  # type: ignore[attr-defined]
            crawler.signals.connect(ledger.close, signal=signals.engine_stopped)
        return ledger

    def close(self) -> None:
        self._db.commit()
        self._db.close()

    # -- records ----------------------------------------------------------------

    def add_record(self, kind: str, key: str, record: dict[str, Any]) -> bool:
        """Stage a record for the next commit; False if the ledger already holds it."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO records (kind, key, data) VALUES (?, ?, ?)",
            (kind, key, json.dumps(record, ensure_ascii=False)),
        )
        return cursor.rowcount == 1

    def record_lines(self, kind: str) -> Iterator[str]:
        """Stored records of a kind as JSON text, in the order they were first stored, streamed."""
        rows = self._db.execute("SELECT data FROM records WHERE kind = ? ORDER BY rowid", (kind,))
        for (data,) in rows:
            yield data

    def records(self, kind: str) -> Iterator[dict[str, Any]]:
        """Stored records of a kind, in the order they were first stored, streamed."""
        return map(json.loads, self.record_lines(kind))

    def count_records(self, kind: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0]

    def has_record(self, kind: str, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone() is not None

    # -- seeds --------------------------------------------------------------------

    def seed(self, spider: str, seed: str) -> SeedState | None:
        row = self._db.execute(
            "SELECT status, cursor, search_id, pages, reason FROM seeds WHERE spider = ? AND seed = ?",
            (spider, seed),
        ).fetchone()
        return SeedState(*row) if row else None

    def _upsert_seed(self, spider: str, seed: str, *, add_page: bool = False, **values: Any) -> None:
        values["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
        if add_page:
            values["pages"] = 1  # a new seed's first page; an existing one's count goes up below
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(
            "pages = seeds.pages + 1" if name == "pages" else f"{name} = excluded.{name}" for name in values
        )
        self._db.execute(
            f"INSERT INTO seeds (spider, seed, {columns}) VALUES (?, ?, {marks}) "  # noqa: S608 - fixed names
            f"ON CONFLICT (spider, seed) DO UPDATE SET {updates}",
            (spider, seed, *values.values()),
        )

    def finish_page(self, spider: str, seed: str, *, cursor: int | None, search_id: str | None, has_more: bool) -> None:
        """Commit a page: its staged records and where the seed goes on, in one transaction."""
        self._upsert_seed(
            spider,
            seed,
            status=OPEN if has_more else DONE,
            cursor=cursor,
            search_id=search_id,
            reason=None,
            add_page=True,
        )
        self._db.commit()

    def fail_seed(self, spider: str, seed: str, reason: str) -> None:
        """Record why a seed could not be collected; a later run tries it again."""
        self._upsert_seed(spider, seed, status=FAILED, reason=reason)
        self._db.commit()

    def seed_counts(self, spider: str) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM seeds WHERE spider = ? GROUP BY status", (spider,))
        return dict(rows.fetchall())

    def failed_seeds(self, spider: str, limit: int = 20) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT seed, reason FROM seeds WHERE spider = ? AND status = ? ORDER BY seed LIMIT ?",
            (spider, FAILED, limit),
        )
        return rows.fetchall()

    def forget(self, spider: str, kinds: tuple[str, ...]) -> None:
        """Start afresh: drop a spider's progress and its records (request counts stay)."""
        self._db.execute("DELETE FROM seeds WHERE spider = ?", (spider,))
        for kind in kinds:
            self._db.execute("DELETE FROM records WHERE kind = ?", (kind,))
        self._db.commit()

    # -- requests -------------------------------------------------------------------

    @staticmethod
    def _quota_key(day: date, bucket: str) -> str:
        return day.isoformat() if bucket == "research" else f"{day.isoformat()}/{bucket}"

    def requests_on(self, day: date, bucket: str = "research") -> int:
        """Requests spent on ``day`` from a quota (``research``, or ``follow`` for followers/following)."""
        row = self._db.execute("SELECT count FROM requests WHERE day = ?", (self._quota_key(day, bucket),)).fetchone()
        return row[0] if row else 0

    def count_request(self, day: date, bucket: str = "research") -> None:
        """Count one request against ``day``'s quota, durably, before it is sent.

        The commit also makes any records staged by pages still in progress durable;
        that is harmless: their page is not marked done, so a crash re-asks the page
        and the ledger's keys drop the records it already holds.
        """
        self._db.execute(
            "INSERT INTO requests (day, count) VALUES (?, 1) ON CONFLICT (day) DO UPDATE SET count = count + 1",
            (self._quota_key(day, bucket),),
        )
        self._db.commit()

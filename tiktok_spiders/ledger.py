"""The ledger: one SQLite file per data directory holding everything a crawl knows.

- ``records``: every stored record, keyed by its kind and id (the primary key is
  the deduplication, across runs too);
- ``seeds``: per spider and seed (a window, a video, a user) the next cursor,
  the search id, and whether it is open, done or failed (with the reason);
- ``requests``: requests this data directory spent per UTC day, across runs (the
  key's quota, shared by every study, is counted in ``quota_file.py``);
- ``meta``: which API and which client key (a salted fingerprint) filled it: a data
  directory holds one study of one API, and a crawl with another is refused;
- ``runs``: every crawl that closed, for the manifest (``manifest.py``);
- ``refreshes``, ``compliance_tasks``, ``refresh_users``, ``gone``: the refreshes of
  the study, what an open one has still to check, and what it found no longer
  available; a finished refresh keeps counts only (``refreshes.py``);
- ``purge_steps``, ``purge_tokens``: the files a purge has still to rewrite, and the
  ids and usernames it still has to remove from them, until it is finished (``purge.py``, ``refreshes.py``).

A page's records and the cursor that follows it are committed together by
:meth:`Ledger.finish_page`, so a crash leaves both or neither; resuming asks the
ledger what is left.  Feeds are views of it, written at close (see
``extensions/export.py``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals

from tiktok_spiders import clock
from tiktok_spiders.config import ConfigError
from tiktok_spiders.files import DataDirLock, make_dir, restrict
from tiktok_spiders.quota_file import fingerprint, one_line

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
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    spider TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    run TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refreshes (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    checked TEXT NOT NULL DEFAULT '{}',
    purged TEXT NOT NULL DEFAULT '{}',
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS compliance_tasks (
    refresh INTEGER NOT NULL,
    category TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    ids TEXT,
    count INTEGER NOT NULL,
    task_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created TEXT,
    PRIMARY KEY (refresh, category, chunk)
);
CREATE TABLE IF NOT EXISTS refresh_users (
    refresh INTEGER NOT NULL,
    username TEXT NOT NULL,
    PRIMARY KEY (refresh, username)
);
CREATE TABLE IF NOT EXISTS feeds (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    last_rowid INTEGER NOT NULL,
    count INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    deletions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS gone (
    category TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (category, id)
);
CREATE TABLE IF NOT EXISTS purge_steps (
    step TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS purge_tokens (
    token TEXT PRIMARY KEY
);
"""
#: Columns added since a table was first made: ledgers written by an earlier version get them when opened.
ADDED_COLUMNS = (("refreshes", "outcome", "TEXT"), ("compliance_tasks", "created", "TEXT"))

OPEN, DONE, FAILED = "open", "done", "failed"


@dataclass(frozen=True)
class SeedState:
    status: str
    cursor: int | None
    search_id: str | None
    pages: int
    reason: str | None


class LedgerWriteError(OSError):
    """The ledger could not be written (disk full, I/O error): said in one line, the crawl stops."""


class ApiMismatch(ConfigError):
    """The data directory was filled from another API or with another client key."""


class Ledger:
    """Records, seed progress and request counts of one data directory."""

    def __init__(self, data_dir: str | Path, *, private: bool = True, lock: bool = False, check: bool = False) -> None:
        data_dir = Path(data_dir)
        self.path = data_dir / FILENAME
        self._lock = DataDirLock(data_dir) if lock else None
        try:
            make_dir(data_dir, private)
            new = not self.path.exists()
            if self._lock is not None:
                self._lock.acquire(private)
            self._db = sqlite3.connect(self.path, isolation_level="DEFERRED", timeout=10)
            if new:
                restrict(self.path, private)  # SQLite gives its -wal and -shm files the same mode
            # WAL + NORMAL: a committed page survives kill -9; a power cut can lose
            # the last pages, but never half of one.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # a deleted record (purged, or forgotten with fresh=true) is overwritten, not left
            # readable in a free page
            self._db.execute("PRAGMA secure_delete=ON")
            if check:  # a page damaged in the middle is found now, not half way through a crawl
                problem = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if problem != "ok":
                    raise sqlite3.DatabaseError(f"database disk image is malformed ({one_line(problem)})")
            self._db.executescript(SCHEMA)
            self._add_columns()
            self._db.commit()
        except (sqlite3.Error, OSError) as error:
            self._release()
            raise ConfigError(f"cannot use the ledger {self.path}: {_why(error)}") from None

    def _add_columns(self) -> None:
        for table, column, sql_type in ADDED_COLUMNS:
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    def lend_to(self, crawler: Crawler) -> None:
        """Let ``crawler``'s components use this ledger, which the command running the crawl opened,
        locked and bound (``datadir.open_data_dir``) and will close: one connection per run."""
        crawler.tiktok_ledger = self  # type: ignore[attr-defined]

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> Ledger:
        """The crawler's ledger: the one its command lent it (:meth:`lend_to`), else opened (and
        its data directory locked) by whichever component asks first, bound to the crawl's API
        and key, and closed with the engine (a crawl run from Python, as the tests do)."""
        ledger = getattr(crawler, "tiktok_ledger", None)
        if ledger is None:
            settings = crawler.settings
            ledger = cls(settings["TIKTOK_DATA_DIR"], private=settings.getbool("TIKTOK_PRIVATE_FILES"), lock=True)
            try:
                ledger.bind(
                    settings["TIKTOK_API_BASE_URL"],
                    settings["TIKTOK_CLIENT_KEY"],
                    allow_change=settings.getbool("TIKTOK_ALLOW_API_CHANGE"),
                )
            except ConfigError:
                ledger.close()
                raise
            crawler.tiktok_ledger = ledger  # type: ignore[attr-defined]
            crawler.signals.connect(ledger.close, signal=signals.engine_stopped)
        return ledger

    def close(self) -> None:
        try:
            self._db.commit()
            self._db.close()
        except sqlite3.Error:
            pass  # what could not be committed was said when it failed
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The ledger's connection, for the modules that keep tables of their own in it (``refreshes.py``,
        ``purge.py``)."""
        return self._db

    def commit(self) -> None:
        """Commit what was staged, or :class:`LedgerWriteError` (rolled back)."""
        self._commit()

    def compact(self) -> None:
        """Rebuild the file and empty the write-ahead log, so no deleted content survives in either."""
        try:
            self._db.commit()
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            raise LedgerWriteError(f"could not compact {self.path}: {_why(error)}") from None

    def checkpoint(self) -> None:
        """Empty the write-ahead log into the file (what was deleted then survives in neither)."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            raise LedgerWriteError(f"could not compact {self.path}: {_why(error)}") from None

    def _commit(self) -> None:
        try:
            self._db.commit()
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                self._db.rollback()  # the page's staged records go with it: it stays open
            raise LedgerWriteError(f"could not write {self.path}: {_why(error)}") from None

    # -- which API --------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        """Keep ``value`` under ``name`` (a study's pseudonym key, what its published tables hold), committed."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))
        self._commit()

    def bind(self, base_url: str, client_key: str, *, allow_change: bool = False) -> None:
        """Make sure this directory holds data of ``base_url`` and ``client_key`` only.

        A directory filled by another API or key is refused (sandbox records must never
        reach a real study, nor one study's seeds another key's quota), unless
        ``allow_change`` says to take it over.  Only a salted fingerprint of the key is kept.
        """
        base_url = base_url.rstrip("/")
        salt = self.meta("key_salt") or secrets.token_hex(16)
        key = fingerprint(client_key, salt)
        held_url, held_key = self.meta("api_base_url"), self.meta("key_fingerprint")
        if held_url is not None and not allow_change:
            if held_url != base_url:
                raise ApiMismatch(
                    f"{self.path.parent} holds data from {held_url}, not {base_url}: use another "
                    "TIKTOK_DATA_DIR for this API (or set TIKTOK_ALLOW_API_CHANGE=true to mix them)"
                )
            if held_key != key:
                raise ApiMismatch(
                    f"{self.path.parent} was collected with another client key: use another TIKTOK_DATA_DIR "
                    "(or set TIKTOK_ALLOW_API_CHANGE=true if this is the same study with a new key)"
                )
        now = clock.now().isoformat(timespec="seconds")
        values = {"api_base_url": base_url, "key_salt": salt, "key_fingerprint": key, "last_opened": now}
        if held_url is None:
            values["created"] = now
        try:  # also finds a read-only or full ledger now, before the crawl spends anything
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())
            self._db.commit()
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                self._db.rollback()
            raise ConfigError(f"cannot use the ledger {self.path}: {_why(error)}") from None

    # -- records ----------------------------------------------------------------

    def add_record(self, kind: str, key: str, record: dict[str, Any]) -> bool:
        """Stage a record for the next commit; False if the ledger already holds it."""
        try:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO records (kind, key, data) VALUES (?, ?, ?)",
                (kind, key, json.dumps(record, ensure_ascii=False)),
            )
        except sqlite3.OperationalError as error:
            raise LedgerWriteError(f"could not write {self.path}: {_why(error)}") from None
        return cursor.rowcount == 1

    def record_lines(self, kind: str) -> Iterator[str]:
        """Stored records of a kind as JSON text, in the order they were first stored, streamed."""
        for _, data in self.record_rows(kind):
            yield data

    def record_rows(self, kind: str, after: int = 0) -> Iterator[tuple[int, str]]:
        """``(rowid, JSON text)`` of a kind's records stored after ``after``, in order, streamed."""
        if after:  # a few new rows: walk the rowids after the last one written
            query = "SELECT rowid, data FROM records WHERE rowid > ? AND kind = ? ORDER BY rowid"
            yield from self._db.execute(query, (after, kind))
        else:  # a whole feed: the kind's rows through its index, as before
            yield from self._db.execute("SELECT rowid, data FROM records WHERE kind = ? ORDER BY rowid", (kind,))

    # -- feeds: what each was written from, so a feed grows by what is new ----------------

    def deletions(self) -> int:
        """How many times records were deleted (fresh starts, purges): a feed written before holds them."""
        return int(self.meta("deletions") or 0)

    def records_deleted(self) -> None:
        """Count a deletion, staged with it: every feed is written whole next time."""
        self._db.execute(
            "INSERT INTO meta VALUES ('deletions', '1') ON CONFLICT (name) DO UPDATE SET value = value + 1"
        )

    def feed_state(self, path: str) -> tuple[str, int, int, int, int, int] | None:
        """``(kind, last_rowid, count, size, mtime_ns, deletions)`` of a feed as last written."""
        return self._db.execute(
            "SELECT kind, last_rowid, count, size, mtime_ns, deletions FROM feeds WHERE path = ?", (path,)
        ).fetchone()

    def feed_written(self, path: str, kind: str, last_rowid: int, count: int, size: int, mtime_ns: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, kind, last_rowid, count, size, mtime_ns, self.deletions()),
        )
        self._commit()

    def records(self, kind: str) -> Iterator[dict[str, Any]]:
        """Stored records of a kind, in the order they were first stored, streamed."""
        return map(json.loads, self.record_lines(kind))

    def count_records(self, kind: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0]

    def count_videos_posted(self, first: date, last: date) -> int:
        """Videos stored that were posted from ``first`` to ``last`` (UTC days, both included): what
        a videos window holds so far."""
        start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
        end = start + ((last - first).days + 1) * 86400
        return self._db.execute(
            "SELECT COUNT(*) FROM records WHERE kind = 'videos' AND json_extract(data, '$.create_time') >= ? "
            "AND json_extract(data, '$.create_time') < ?",
            (start, end),
        ).fetchone()[0]

    def record(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT data FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return None if row is None else json.loads(row[0])

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
        values["updated"] = clock.now().isoformat(timespec="seconds")
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
        self._commit()

    def finish_seeds(self, spider: str, seeds: Iterable[str]) -> None:
        """Mark many seeds done at once, in one transaction, as a finished run leaves them (the
        benchmarks' million-seed studies; a crawl commits seeds a page at a time)."""
        updated = clock.now().isoformat(timespec="seconds")
        self._db.executemany(
            "INSERT INTO seeds (spider, seed, status, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (spider, seed) DO UPDATE SET status = excluded.status, updated = excluded.updated",
            ((spider, seed, DONE, updated) for seed in seeds),
        )
        self._commit()

    def fail_seed(self, spider: str, seed: str, reason: str) -> None:
        """Record why a seed could not be collected; a later run tries it again."""
        self._upsert_seed(spider, seed, status=FAILED, reason=reason)
        self._commit()

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
        self.records_deleted()
        self._commit()

    # -- runs -----------------------------------------------------------------------

    def add_run(self, spider: str, run: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?)",
            (spider, run["started"], run["finished"], json.dumps(run, ensure_ascii=False)),
        )
        self._commit()

    def runs(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT spider, run FROM runs ORDER BY rowid")
        return [{"spider": spider, **json.loads(run)} for spider, run in rows]

    def requests_per_day(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT day, count FROM requests ORDER BY day").fetchall())

    # -- requests -------------------------------------------------------------------

    @staticmethod
    def _quota_key(day: date, bucket: str) -> str:
        return day.isoformat() if bucket == "research" else f"{day.isoformat()}/{bucket}"

    def requests_on(self, day: date, bucket: str = "research") -> int:
        """Requests spent on ``day`` from a quota (``research``, or ``follow`` for followers/following)."""
        row = self._db.execute("SELECT count FROM requests WHERE day = ?", (self._quota_key(day, bucket),)).fetchone()
        return row[0] if row else 0

    def count_request(self, day: date, bucket: str = "research") -> None:
        """Count one request this study spent; committed with the next page.

        The quota itself is the key's, reserved durably before the request is sent
        (``quota_file.py``); this count is the study's share, for its summary and manifest.
        """
        self._db.execute(
            "INSERT INTO requests (day, count) VALUES (?, 1) ON CONFLICT (day) DO UPDATE SET count = count + 1",
            (self._quota_key(day, bucket),),
        )


def _why(error: BaseException) -> str:
    """An SQLite or OS error in words a researcher can act on."""
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return f"{text} (the file is damaged: restore it from a backup, or use another TIKTOK_DATA_DIR)"
    if "readonly" in text or isinstance(error, PermissionError):
        return f"{text} (it is read-only: make it writable, or use another TIKTOK_DATA_DIR)"
    if "disk is full" in text or getattr(error, "errno", None) == 28:
        return f"{text} (free some space and run the same command again)"
    return text

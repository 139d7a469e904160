"""The daily quota of a client key, shared by every data directory of this user.

TikTok counts requests per client key and UTC day (shared across an
organisation), not per study.  So they are counted in one small SQLite file in
the user's state directory (``TIKTOK_QUOTA_FILE`` to put it elsewhere), keyed by
a salted fingerprint of the key — never the key — and reserved in one atomic
step: two processes spending one key can never overspend it together.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from datetime import date
from pathlib import Path

from platformdirs import user_state_dir

from tiktok_spiders.files import make_dir, restrict

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spent (
    key_fingerprint TEXT NOT NULL,
    day TEXT NOT NULL,
    bucket TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key_fingerprint, day, bucket)
);
"""


def one_line(problem: str) -> str:
    """SQLite's integrity report, on one line."""
    return "; ".join(line for line in problem.splitlines() if line and not line.startswith("***"))


def fingerprint(client_key: str, salt: str) -> str:
    """A salted hash that recognises a client key without revealing it."""
    return hashlib.sha256(f"{salt}:{client_key}".encode()).hexdigest()[:20]


def default_path() -> Path:
    return Path(user_state_dir("tiktok-spiders", appauthor=False)) / "quota.sqlite"


#: Seconds a process waits for another's hold on the file before it gives up.
LOCK_TIMEOUT = 30.0


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to write-ahead logging (once for good: later calls only read the mode).

    Switching needs the file to itself, and SQLite answers "database is locked" at once, without
    waiting its timeout, while another process holds it: two crawls started together on a new
    quota file met this nearly half the time (the second one died).  So wait here.
    """
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class QuotaFile:
    """Requests reserved per key fingerprint, UTC day and quota bucket."""

    def __init__(self, path: str | Path | None, client_key: str, check: bool = False) -> None:
        self.path = Path(path) if path else default_path()
        new = not self.path.exists()
        make_dir(self.path.parent)
        # autocommit: each reservation is one explicit IMMEDIATE transaction
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=LOCK_TIMEOUT)
        if new:
            restrict(self.path)
        _use_wal(self._db)
        if check and (problem := self._db.execute("PRAGMA quick_check(1)").fetchone()[0]) != "ok":
            raise sqlite3.DatabaseError(f"it is damaged ({one_line(problem)})")
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('salt', ?)", (secrets.token_hex(16),))
        salt = self._db.execute("SELECT value FROM meta WHERE name = 'salt'").fetchone()[0]
        self.key = fingerprint(client_key, salt)

    def reserve(self, day: date, bucket: str, limit: int) -> int | None:
        """Count one request against ``day``'s ``limit``: the day's count with it, or None when
        the limit is reached (nothing counted).

        Check and count are one statement inside one write transaction, so
        concurrent processes are serialised by SQLite's lock.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR IGNORE INTO spent VALUES (?, ?, ?, 0)",
                (self.key, day.isoformat(), bucket),
            )
            counted = db.execute(
                "UPDATE spent SET count = count + 1 WHERE key_fingerprint = ? AND day = ? AND bucket = ? AND count < ? "
                "RETURNING count",
                (self.key, day.isoformat(), bucket, limit),
            ).fetchone()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return counted[0] if counted else None

    def spent(self, day: date, bucket: str = "research") -> int:
        row = self._db.execute(
            "SELECT count FROM spent WHERE key_fingerprint = ? AND day = ? AND bucket = ?",
            (self.key, day.isoformat(), bucket),
        ).fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        self._db.close()

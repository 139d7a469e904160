"""Refreshes: what a study holds that TikTok no longer serves, found out.

TikTok's Research Tools terms ask researchers to refresh their data regularly and
delete what is no longer available.  A refresh (``spiders/refresh.py``) checks
every stored video and comment id through Batch Compliance tasks and every
stored profile through user info: what ``kinds.py`` declares *checked*.  Its tasks
are planned once, when it begins: the ids stored then, at most 10,000 per task and
category, kept in the ledger until their answer is in, so a re-run after a crash or
a quota stop asks about the same ids and never creates a second task for them
unless the API lost the first.  What a task or a profile check finds gone goes into
the ledger's ``gone`` table in the same transaction that closes its seed; the purge
(``purge.py``) then deletes it with everything that depends on it.  A finished
refresh keeps counts only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from tiktok_spiders import api, clock
from tiktok_spiders.kinds import KINDS, USER, VIDEO, RecordKind, checked_fields
from tiktok_spiders.terminal import command

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from tiktok_spiders.ledger import Ledger

#: How a refresh ended: every check answered, or given up for a new one (``-a fresh=true``).
COMPLETE, ABANDONED = "complete", "abandoned"


def value_sql(kind: RecordKind, field: str) -> str:
    """SQL for a field of the ``records`` table's rows of ``kind`` (its key column when the key is that field)."""
    if kind.key_fields == (field,):
        return "key" if field in ("username", "seed_username") else "CAST(key AS INTEGER)"
    return f"json_extract(data, '$.{field}')"


def stored_sql(category: str) -> str:
    """The distinct values a refresh checks in ``category``, in order: every field declared checked."""
    parts = [
        f"SELECT {value_sql(kind, field)} AS value FROM records WHERE kind = '{kind.feed}'"  # noqa: S608 - declared names
        for kind, field in checked_fields(category)
    ]
    return f"SELECT DISTINCT value FROM ({' UNION ALL '.join(parts)}) WHERE value IS NOT NULL ORDER BY 1"  # noqa: S608


class Task:
    """One compliance task of a refresh: a chunk of ids of one category."""

    def __init__(
        self, refresh: int, category: str, chunk: int, count: int, task_id: str | None, created: str | None = None
    ) -> None:
        self.refresh, self.category, self.chunk, self.count = refresh, category, chunk, count
        self.task_id, self.created = task_id, created

    @property
    def seed(self) -> str:
        return f"{self.refresh}/{self.category}/{self.chunk}"

    def hours_since_created(self) -> float:
        if not self.created:
            return 0.0
        return (clock.now() - datetime.fromisoformat(self.created.replace("Z", "+00:00"))).total_seconds() / 3600


class ForeignIds(ValueError):
    """A file of valid ids naming ids the task was never given: not an answer to trust."""


class Refreshes:
    """The refreshes of one data directory, kept in its ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.db = ledger.connection

    # -- planning -------------------------------------------------------------------

    def current(self) -> int | None:
        row = self.db.execute("SELECT id FROM refreshes WHERE finished IS NULL ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def begin(self) -> int:
        """The open refresh, or a new one with its tasks planned from the ids stored now."""
        current = self.current()
        if current is not None:
            return current
        refresh = self.db.execute("INSERT INTO refreshes (started) VALUES (?)", (clock.stamp(),)).lastrowid
        assert refresh is not None
        self.db.execute(f"INSERT INTO refresh_users SELECT ?, value FROM ({stored_sql(USER)})", (refresh,))  # noqa: S608
        for category in api.COMPLIANCE_CATEGORIES:
            rows = self.db.execute(stored_sql(category))  # streamed: one chunk of ids in memory at a time
            chunk = 0
            while batch := rows.fetchmany(api.COMPLIANCE_MAX_IDS):
                self.db.execute(
                    "INSERT INTO compliance_tasks (refresh, category, chunk, ids, count) VALUES (?, ?, ?, ?, ?)",
                    (refresh, category, chunk, "\n".join(str(row[0]) for row in batch), len(batch)),
                )
                chunk += 1
        self.ledger.commit()
        return refresh

    def abandon(self, refresh: int, spider: str) -> None:
        """Give the open refresh up for a new one (``-a fresh=true``): its checks and what they
        found gone so far are forgotten, unpurged; what it purged already stays counted."""
        self.db.execute(
            "UPDATE refreshes SET finished = ?, outcome = ? WHERE id = ?", (clock.stamp(), ABANDONED, refresh)
        )
        self._forget_checks(refresh, spider)
        self.db.execute("DELETE FROM gone")
        self.ledger.commit()

    def _forget_checks(self, refresh: int, spider: str) -> None:
        self.db.execute("DELETE FROM refresh_users WHERE refresh = ?", (refresh,))
        self.db.execute("DELETE FROM compliance_tasks WHERE refresh = ?", (refresh,))
        self.db.execute("DELETE FROM seeds WHERE spider = ? AND seed LIKE ?", (spider, f"{refresh}/%"))

    def tasks(self, refresh: int) -> list[Task]:
        """The refresh's tasks, answered or not (videos first: a gone video takes its comments)."""
        rows = self.db.execute(
            "SELECT category, chunk, count, task_id, created FROM compliance_tasks WHERE refresh = ? "
            "ORDER BY category DESC, chunk",
            (refresh,),
        )
        return [Task(refresh, *row) for row in rows]

    def usernames(self, refresh: int, page: int = 1000) -> Iterator[str]:
        """The profiles the refresh checks: those stored when it began, in order, a page at a
        time (a cursor left open by a stopped crawl would keep the ledger from compacting)."""
        last = ""
        while rows := self.db.execute(
            "SELECT username FROM refresh_users WHERE refresh = ? AND username > ? ORDER BY username LIMIT ?",
            (refresh, last, page),
        ).fetchall():
            yield from (username for (username,) in rows)
            last = rows[-1][0]

    def checked(self, refresh: int) -> dict[str, int]:
        row = self.db.execute("SELECT checked FROM refreshes WHERE id = ?", (refresh,)).fetchone()
        return json.loads(row[0]) if row else {}

    def ids_of(self, task: Task) -> str:
        """The task's file: its ids, one per line."""
        row = self.db.execute(
            "SELECT ids FROM compliance_tasks WHERE refresh = ? AND category = ? AND chunk = ?",
            (task.refresh, task.category, task.chunk),
        ).fetchone()
        return row[0] or ""

    # -- answers -----------------------------------------------------------------------

    def _where(self, task: Task) -> tuple[int, str, int]:
        return (task.refresh, task.category, task.chunk)

    def task_created(self, task: Task, task_id: str) -> None:
        """Keep the task's id before it is polled: a re-run polls it instead of creating another."""
        task.created = clock.stamp()
        self.db.execute(
            "UPDATE compliance_tasks SET task_id = ?, created = ? WHERE refresh = ? AND category = ? AND chunk = ?",
            (task_id, task.created, *self._where(task)),
        )
        self.ledger.commit()
        task.task_id = task_id

    def task_lost(self, task: Task) -> int:
        """The API failed the task, forgot it, or keeps it processing too long: forget its id so
        that it is created again, with the same ids; how many times this happened."""
        self.db.execute(
            "UPDATE compliance_tasks SET task_id = NULL, created = NULL, attempts = attempts + 1 "
            "WHERE refresh = ? AND category = ? AND chunk = ?",
            self._where(task),
        )
        self.ledger.commit()
        task.task_id = task.created = None
        row = self.db.execute(
            "SELECT attempts FROM compliance_tasks WHERE refresh = ? AND category = ? AND chunk = ?", self._where(task)
        ).fetchone()
        return row[0]

    def task_answered(self, task: Task, valid: set[str]) -> int:
        """Stage what the task found gone (its ids not among the ``valid`` ones) and forget its
        ids; committed with the seed.  Returns how many are gone.

        A file naming an id that was never submitted is not an answer about these ids
        (another task's file, or a broken one): :class:`ForeignIds`, nothing staged.
        """
        submitted = [i for i in self.ids_of(task).split("\n") if i]
        foreign = valid - set(submitted)
        if foreign:
            example = min(foreign, key=lambda i: (len(i), i))
            raise ForeignIds(
                f"the file of valid ids names {len(foreign):,} ids that were not submitted (e.g. {example})"
            )
        gone = [(task.category, i) for i in submitted if i not in valid]
        self.db.executemany("INSERT OR IGNORE INTO gone (category, id) VALUES (?, ?)", gone)
        self.db.execute(
            "UPDATE compliance_tasks SET ids = NULL WHERE refresh = ? AND category = ? AND chunk = ?",
            self._where(task),
        )
        self.count(task.refresh, "checked", {f"{task.category}s": task.count})
        return len(gone)

    def user_answered(self, refresh: int, username: str, available: bool) -> None:
        """Stage a profile's check (committed with its seed)."""
        if not available:
            self.db.execute("INSERT OR IGNORE INTO gone (category, id) VALUES (?, ?)", (USER, username))
        self.count(refresh, "checked", {"users": 1})

    def proven_available(self, refresh: int, spider: str) -> int:
        """Close, as available, the profile checks of the accounts that posted a video this refresh
        checked and the compliance API did not find gone: an account whose videos are served is
        public.  Only when every video task was answered (else nothing is proven).  How many."""
        unanswered = self.db.execute(
            "SELECT COUNT(*) FROM compliance_tasks WHERE refresh = ? AND category = 'video' AND ids IS NOT NULL",
            (refresh,),
        ).fetchone()[0]
        if unanswered:
            return 0
        started = self.db.execute("SELECT started FROM refreshes WHERE id = ?", (refresh,)).fetchone()[0]
        authored = " UNION ".join(
            f"SELECT json_extract(data, '$.{ref.field}') AS username, {value_sql(kind, kind.identity.field)} AS id, "  # noqa: S608
            f"json_extract(data, '$.collected_at') AS at FROM records WHERE kind = '{kind.feed}'"
            for kind in KINDS.values()
            if kind.identity is not None and kind.identity.category == VIDEO
            for ref in kind.part_of
            if ref.category == USER
        )
        proven = [
            username
            for (username,) in self.db.execute(
                f"SELECT username FROM refresh_users WHERE refresh = ? AND username IN ("  # noqa: S608
                f"SELECT username FROM ({authored}) WHERE at <= ? "
                "AND CAST(id AS TEXT) NOT IN (SELECT id FROM gone WHERE category = 'video')) "
                "AND ? || username NOT IN (SELECT seed FROM seeds WHERE spider = ? AND status = 'done')",
                (refresh, started, f"{refresh}/{USER}/", spider),
            )
        ]
        now = clock.now().isoformat(timespec="seconds")
        for username in proven:
            self.user_answered(refresh, username, True)
        self.db.executemany(
            "INSERT INTO seeds (spider, seed, status, pages, updated) VALUES (?, ?, 'done', 0, ?) "
            "ON CONFLICT (spider, seed) DO UPDATE SET status = 'done'",
            [(spider, f"{refresh}/{USER}/{username}", now) for username in proven],
        )
        self.ledger.commit()
        return len(proven)

    def count(self, refresh: int, column: str, counts: dict[str, int]) -> None:
        assert column in ("checked", "purged")
        row = self.db.execute(f"SELECT {column} FROM refreshes WHERE id = ?", (refresh,)).fetchone()  # noqa: S608
        total = Counter(json.loads(row[0])) + Counter(counts)
        self.db.execute(f"UPDATE refreshes SET {column} = ? WHERE id = ?", (json.dumps(total), refresh))  # noqa: S608

    def pending(self) -> dict[str, int]:
        """What was found gone and is not purged yet, per category."""
        return dict(self.db.execute("SELECT category, COUNT(*) FROM gone GROUP BY category").fetchall())

    def finish(self, refresh: int, spider: str) -> None:
        """Close the refresh, keeping its counts only: which ids and usernames it checked go."""
        self.db.execute(
            "UPDATE refreshes SET finished = ?, outcome = ? WHERE id = ?", (clock.stamp(), COMPLETE, refresh)
        )
        self._forget_checks(refresh, spider)
        self.ledger.commit()

    # -- the audit trail ------------------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        """Every refresh: when, how it ended, and how many records of each kind it checked and purged."""
        rows = self.db.execute("SELECT started, finished, outcome, checked, purged FROM refreshes ORDER BY id")
        return [
            {
                "started": started,
                "finished": finished,
                "outcome": outcome or (COMPLETE if finished else "open"),
                "checked": json.loads(checked),
                "purged": json.loads(purged),
            }
            for started, finished, outcome, checked, purged in rows
        ]

    def last_complete(self) -> str | None:
        """When the last complete refresh began: what it checked was stored by then."""
        return self.db.execute(
            "SELECT MAX(started) FROM refreshes WHERE finished IS NOT NULL AND coalesce(outcome, ?) = ?",
            (COMPLETE, COMPLETE),
        ).fetchone()[0]

    def due(self, days: int, today: date | None = None) -> str | None:
        """One line when the study's last refresh (or, never refreshed, its first collection) is
        more than ``days`` old; None when it is not due."""
        age = self.age(today)
        if age is None or age[0] <= days:
            return None
        what = (
            f"was last refreshed {age[0]} days ago"
            if age[1]
            else f"was collected {age[0]} days ago and never refreshed"
        )
        return (
            f"This study's data {what} (TIKTOK_REFRESH_DAYS={days}): TikTok's terms ask you to refresh it "
            f"and delete what is no longer available. Run: {command('refresh')}"
        )

    def age(self, today: date | None = None) -> tuple[int, bool] | None:
        """``(days since the last complete refresh began, True)``, or since the first collection
        ``(days, False)``; None for a study that has collected nothing."""
        last = self.last_complete()
        since = last or self.db.execute("SELECT MIN(json_extract(run, '$.first_page_at')) FROM runs").fetchone()[0]
        if not since:
            return None
        return ((today or clock.today()) - date.fromisoformat(since[:10])).days, last is not None

    def is_open(self) -> bool:
        """Whether a refresh has begun and not ended, or found what it has not purged yet."""
        return self.current() is not None or bool(self.pending())


def refresh_due(ledger: Ledger, settings: BaseSettings) -> str | None:
    """:meth:`Refreshes.due` for ``TIKTOK_REFRESH_DAYS``."""
    return Refreshes(ledger).due(settings.getint("TIKTOK_REFRESH_DAYS"))

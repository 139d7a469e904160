"""Refreshes: what a study holds that TikTok no longer serves, found and purged.

TikTok's Research Tools terms ask researchers to refresh their data regularly and
delete what is no longer available.  A refresh (``spiders/refresh.py``) checks
every stored video and comment id through Batch Compliance tasks and every
stored profile through user info.  Its tasks are planned once, when it begins:
the ids stored then, at most 10,000 per task and category, kept in the ledger
until their answer is in, so a re-run after a crash or a quota stop asks about
the same ids and never creates a second task for them.  What a task or a profile
check finds gone goes into the ledger's ``gone`` table in the same transaction
that closes its seed; :meth:`Refreshes.purge` then deletes it with everything that
depends on it (an account's videos, a video's comments, a comment's replies) and
keeps only counts.  The ledger deletes securely and is compacted after a purge,
so the purged text survives in no free page.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from tiktok_spiders import api

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from tiktok_spiders.ledger import Ledger

VIDEO_KINDS = ("videos", "liked_videos", "pinned_videos", "reposted_videos")
COMMENT_KINDS = ("comments", "replies")
#: Kinds collected for a user (``seed_username``), and kinds whose ``username`` is an account.
SEEDED_KINDS = ("followers", "following", "liked_videos", "pinned_videos", "reposted_videos")
ACCOUNT_KINDS = ("followers", "following")
USER = "user"


def _in(kinds: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


#: The ids a refresh asks the compliance API about, per category, distinct and in order.
STORED_IDS = {
    "video": f"""
        SELECT CAST(key AS INTEGER) FROM records WHERE kind = 'videos'
        UNION SELECT json_extract(data, '$.id') FROM records WHERE kind IN {_in(VIDEO_KINDS[1:])}
        UNION SELECT json_extract(data, '$.video_id') FROM records WHERE kind = 'playlist_videos'
        ORDER BY 1""",
    "comment": f"SELECT DISTINCT CAST(key AS INTEGER) FROM records WHERE kind IN {_in(COMMENT_KINDS)} ORDER BY 1",
}

#: What depends on what is gone, added to the sets before anything is deleted.
CASCADE = (
    # an account takes its videos
    f"""INSERT OR IGNORE INTO temp.gone_videos SELECT json_extract(data, '$.id') FROM records
        WHERE kind IN {_in(VIDEO_KINDS)} AND json_extract(data, '$.username') IN (SELECT name FROM temp.gone_users)""",
    # a video its comments (and the replies mixed into them, and those stored as replies)
    f"""INSERT OR IGNORE INTO temp.gone_comments SELECT json_extract(data, '$.id') FROM records
        WHERE kind IN {_in(COMMENT_KINDS)} AND json_extract(data, '$.video_id') IN (SELECT id FROM temp.gone_videos)""",
    # a comment its replies
    f"""INSERT OR IGNORE INTO temp.gone_comments SELECT json_extract(data, '$.id') FROM records
        WHERE kind IN {_in(COMMENT_KINDS)}
        AND json_extract(data, '$.parent_comment_id') IN (SELECT id FROM temp.gone_comments)""",
)
DELETIONS = (
    f"""DELETE FROM records WHERE kind IN {_in(VIDEO_KINDS)}
        AND json_extract(data, '$.id') IN (SELECT id FROM temp.gone_videos) RETURNING kind""",
    """DELETE FROM records WHERE kind = 'playlist_videos'
        AND json_extract(data, '$.video_id') IN (SELECT id FROM temp.gone_videos) RETURNING kind""",
    f"""DELETE FROM records WHERE kind IN {_in(COMMENT_KINDS)}
        AND CAST(key AS INTEGER) IN (SELECT id FROM temp.gone_comments) RETURNING kind""",
    """DELETE FROM records WHERE (kind = 'users' OR kind LIKE '%\\_unavailable' ESCAPE '\\')
        AND key IN (SELECT name FROM temp.gone_users) RETURNING kind""",
    f"""DELETE FROM records WHERE kind IN {_in(SEEDED_KINDS)}
        AND json_extract(data, '$.seed_username') IN (SELECT name FROM temp.gone_users) RETURNING kind""",
    f"""DELETE FROM records WHERE kind IN {_in(ACCOUNT_KINDS)}
        AND json_extract(data, '$.username') IN (SELECT name FROM temp.gone_users) RETURNING kind""",
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Task:
    """One compliance task of a refresh: a chunk of ids of one category."""

    def __init__(self, refresh: int, category: str, chunk: int, count: int, task_id: str | None) -> None:
        self.refresh, self.category, self.chunk, self.count, self.task_id = refresh, category, chunk, count, task_id

    @property
    def seed(self) -> str:
        return f"{self.refresh}/{self.category}/{self.chunk}"


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
        refresh = self.db.execute("INSERT INTO refreshes (started) VALUES (?)", (_now(),)).lastrowid
        assert refresh is not None
        self.db.execute("INSERT INTO refresh_users SELECT ?, key FROM records WHERE kind = 'users'", (refresh,))
        for category, query in STORED_IDS.items():
            rows = self.db.execute(query)  # streamed: one chunk of ids in memory at a time
            chunk = 0
            while batch := rows.fetchmany(api.COMPLIANCE_MAX_IDS):
                self.db.execute(
                    "INSERT INTO compliance_tasks (refresh, category, chunk, ids, count) VALUES (?, ?, ?, ?, ?)",
                    (refresh, category, chunk, "\n".join(str(row[0]) for row in batch), len(batch)),
                )
                chunk += 1
        self.ledger.commit()
        return refresh

    def tasks(self, refresh: int) -> list[Task]:
        """The refresh's tasks, answered or not (videos first: a gone video takes its comments)."""
        rows = self.db.execute(
            "SELECT category, chunk, count, task_id FROM compliance_tasks WHERE refresh = ? "
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
        self.db.execute(
            "UPDATE compliance_tasks SET task_id = ? WHERE refresh = ? AND category = ? AND chunk = ?",
            (task_id, *self._where(task)),
        )
        self.ledger.commit()
        task.task_id = task_id

    def task_failed(self, task: Task) -> int:
        """The API failed the task: forget its id so it is created again; how many have failed."""
        self.db.execute(
            "UPDATE compliance_tasks SET task_id = NULL, attempts = attempts + 1 "
            "WHERE refresh = ? AND category = ? AND chunk = ?",
            self._where(task),
        )
        self.ledger.commit()
        task.task_id = None
        row = self.db.execute(
            "SELECT attempts FROM compliance_tasks WHERE refresh = ? AND category = ? AND chunk = ?", self._where(task)
        ).fetchone()
        return row[0]

    def task_answered(self, task: Task, valid: set[str]) -> int:
        """Stage what the task found gone (its ids not among the ``valid`` ones) and forget its
        ids; committed with the seed.  Returns how many are gone."""
        gone = [(task.category, i) for i in self.ids_of(task).split("\n") if i and i not in valid]
        self.db.executemany("INSERT OR IGNORE INTO gone (category, id) VALUES (?, ?)", gone)
        self.db.execute(
            "UPDATE compliance_tasks SET ids = NULL WHERE refresh = ? AND category = ? AND chunk = ?",
            self._where(task),
        )
        self._count(task.refresh, "checked", {f"{task.category}s": task.count})
        return len(gone)

    def user_answered(self, refresh: int, username: str, available: bool) -> None:
        """Stage a profile's check (committed with its seed)."""
        if not available:
            self.db.execute("INSERT OR IGNORE INTO gone (category, id) VALUES (?, ?)", (USER, username))
        self._count(refresh, "checked", {"users": 1})

    def _count(self, refresh: int, column: str, counts: dict[str, int]) -> None:
        assert column in ("checked", "purged")
        row = self.db.execute(f"SELECT {column} FROM refreshes WHERE id = ?", (refresh,)).fetchone()
        total = Counter(json.loads(row[0])) + Counter(counts)
        self.db.execute(f"UPDATE refreshes SET {column} = ? WHERE id = ?", (json.dumps(total), refresh))

    # -- purging ------------------------------------------------------------------------

    def pending(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM gone").fetchone()[0]

    def purge(self, refresh: int | None) -> Counter[str]:
        """Delete what is gone and what depends on it; the counts per kind go to the refresh."""
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS gone_videos (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS gone_comments (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS gone_users (name TEXT PRIMARY KEY)")
        for table in ("gone_videos", "gone_comments", "gone_users"):
            db.execute(f"DELETE FROM temp.{table}")
        db.execute("INSERT INTO temp.gone_videos SELECT CAST(id AS INTEGER) FROM gone WHERE category = 'video'")
        db.execute("INSERT INTO temp.gone_comments SELECT CAST(id AS INTEGER) FROM gone WHERE category = 'comment'")
        db.execute("INSERT INTO temp.gone_users SELECT id FROM gone WHERE category = ?", (USER,))
        for statement in CASCADE:
            db.execute(statement)
        purged: Counter[str] = Counter()
        for statement in DELETIONS:
            purged.update(kind for (kind,) in db.execute(statement).fetchall())
        db.execute("DELETE FROM gone")
        if purged:
            self.ledger.records_deleted()
        if refresh is not None:
            self._count(refresh, "purged", dict(purged))
        self.ledger.commit()
        return purged

    def finish(self, refresh: int, spider: str) -> None:
        """Close the refresh, keeping its counts only: which ids and usernames it checked go."""
        self.db.execute("UPDATE refreshes SET finished = ? WHERE id = ?", (_now(), refresh))
        self.db.execute("DELETE FROM refresh_users WHERE refresh = ?", (refresh,))
        self.db.execute("DELETE FROM compliance_tasks WHERE refresh = ?", (refresh,))
        self.db.execute("DELETE FROM seeds WHERE spider = ? AND seed LIKE ?", (spider, f"{refresh}/%"))
        self.ledger.commit()

    # -- the audit trail ------------------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        """Every refresh: when, and how many records of each kind it checked and purged."""
        rows = self.db.execute("SELECT started, finished, checked, purged FROM refreshes ORDER BY id")
        return [
            {"started": started, "finished": finished, "checked": json.loads(checked), "purged": json.loads(purged)}
            for started, finished, checked, purged in rows
        ]

    def due(self, days: int, today: date | None = None) -> str | None:
        """One line when the study's last refresh (or, never refreshed, its first collection) is
        more than ``days`` old; None when it is not due."""
        last = self.db.execute("SELECT MAX(finished) FROM refreshes").fetchone()[0]
        since = last or self.db.execute("SELECT MIN(json_extract(run, '$.first_page_at')) FROM runs").fetchone()[0]
        if not since:
            return None
        age = ((today or datetime.now(UTC).date()) - date.fromisoformat(since[:10])).days
        if age <= days:
            return None
        what = f"was last refreshed {age} days ago" if last else f"was collected {age} days ago and never refreshed"
        return (
            f"This study's data {what} (TIKTOK_REFRESH_DAYS={days}): TikTok's terms ask you to refresh it "
            "and delete what is no longer available. Run: scrapy refresh"
        )


def refresh_due(ledger: Ledger, settings: BaseSettings) -> str | None:
    """:meth:`Refreshes.due` for ``TIKTOK_REFRESH_DAYS``."""
    return Refreshes(ledger).due(settings.getint("TIKTOK_REFRESH_DAYS"))

"""The purge: what a refresh found gone leaves the study, every trace of it, whatever happens.

A purge is a state machine kept in the ledger, not a counter in memory:

1. *found*: a refresh stages what TikTok no longer serves in the ``gone`` table, with
   the seed whose answer said so (``refreshes.py``);
2. *deleted*: :meth:`Purge.delete` takes it out of the ledger in one transaction,
   with everything that stands on it (what ``kinds.py`` declares: an account its
   videos, a video its comments, a comment its replies, a list its entries, a playlist
   all of whose videos are gone), scrubs its ids and usernames from the ledger's other
   tables (seeds, runs), and records the files still to rewrite (``purge_steps``) and
   the identifiers still to remove from them (``purge_tokens``).  Before it commits,
   a purge that would take more than ``TIKTOK_REFRESH_MAX_PURGE_SHARE`` of any kind is
   rolled back and held (:class:`PurgeHeld`), until the researcher confirms it;
3. *finished*: :meth:`Purge.finish` rewrites each file (feeds, manifest, tables,
   report, logs, leftovers of killed runs) and compacts the ledger, crossing each step
   off as it is done.  A run killed, or out of disk, part way leaves the rest recorded,
   and every command that writes the data directory finishes it first
   (:func:`finish_pending`), so a purge once begun always ends.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiktok_spiders.files import atomic_write
from tiktok_spiders.kinds import COMMENT, KINDS, USER, VIDEO, RecordKind
from tiktok_spiders.ledger import LedgerWriteError
from tiktok_spiders.refreshes import Refreshes, value_sql
from tiktok_spiders.terminal import command

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from tiktok_spiders.ledger import Ledger

logger = logging.getLogger(__name__)

CATEGORIES = (VIDEO, COMMENT, USER)
#: What a purge rewrites after the ledger, in order (the tables are made from the feeds).
STEPS = ("feeds", "manifest", "tables", "report", "logs", "leftovers", "compact")
#: What the terminal calls each step.
STEP_NAMES = {
    "feeds": "the feeds",
    "manifest": "manifest.json",
    "tables": "the tables",
    "report": "report.html",
    "logs": "the run logs",
    "leftovers": "what killed runs left",
    "compact": "the ledger's free pages",
}
PURGED = "[purged]"


class PurgeHeld(Exception):
    """A purge that would take more of a kind than ``TIKTOK_REFRESH_MAX_PURGE_SHARE``: nothing deleted."""


class PurgeUnfinished(OSError):
    """A purge step that could not be done (disk full, a file in the way): the rest stays recorded."""


@dataclass(frozen=True)
class Share:
    feed: str
    purged: int
    stored: int

    @property
    def fraction(self) -> float:
        return self.purged / self.stored if self.stored else 0.0

    def __str__(self) -> str:
        return f"{self.purged:,} of {self.stored:,} {self.feed} ({self.fraction:.0%})"


def braked(kind: RecordKind) -> bool:
    """Whether the brake weighs a kind: the data collected, not the notes of what the API
    refused (``*_unavailable``) nor playlists, which go only when every video of theirs does."""
    return kind.members is None and not kind.feed.endswith("_unavailable")


def _gone_table(category: str) -> str:
    return f"temp.gone_{category}"


def _in_gone(kind: RecordKind, field: str, category: str) -> str:
    return f"{value_sql(kind, field)} IN (SELECT id FROM {_gone_table(category)})"


class Purge:
    """The purge of one data directory."""

    def __init__(self, ledger: Ledger, data_dir: str | Path, settings: BaseSettings) -> None:
        self.ledger = ledger
        self.db = ledger.connection
        self.data_dir = Path(data_dir)
        self.settings = settings
        self.private = settings.getbool("TIKTOK_PRIVATE_FILES")

    # -- 2. deleted --------------------------------------------------------------------

    def delete(self, refresh: int | None, max_share: float | None) -> Counter[str]:
        """Delete what was found gone and what stands on it, in one transaction; the count per feed.

        With ``max_share``, a purge that would take more than that share of any kind is rolled
        back: :class:`PurgeHeld` says what it found.
        """
        db = self.db
        try:
            self._fill_gone_sets()
            stored = Counter(dict(db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind").fetchall()))
            purged, containers = self._delete_records()
            held = [
                Share(feed, count, stored[feed])
                for feed, count in purged.items()
                if max_share is not None and braked(KINDS[feed]) and count > max_share * stored[feed]
            ]
            if held:
                db.rollback()
                raise PurgeHeld(self._held_message(held, max_share or 0.0))
            tokens = self._tokens(containers)
            self._scrub_ledger(tokens)
            db.execute("DELETE FROM gone")
            if purged:
                self.ledger.records_deleted()
            if refresh is not None:
                Refreshes(self.ledger).count(refresh, "purged", dict(purged))
            position = db.execute("SELECT COALESCE(MAX(position), 0) FROM purge_steps").fetchone()[0]
            db.executemany(
                "INSERT OR IGNORE INTO purge_steps VALUES (?, ?)",
                [(step, position + index + 1) for index, step in enumerate(STEPS)],
            )
            db.executemany("INSERT OR IGNORE INTO purge_tokens VALUES (?)", ((token,) for token in tokens))
            self.ledger.commit()
        except sqlite3.Error as error:
            db.rollback()
            raise LedgerWriteError(f"could not purge {self.ledger.path}: {error}") from None
        return purged

    def _fill_gone_sets(self) -> None:
        """The gone ids per category, then what they take with them, until nothing more joins."""
        db = self.db
        for category in CATEGORIES:
            affinity = "TEXT" if category == USER else "INTEGER"
            db.execute(f"CREATE TEMP TABLE IF NOT EXISTS gone_{category} (id {affinity} PRIMARY KEY)")
            db.execute(f"DELETE FROM {_gone_table(category)}")
            db.execute(f"INSERT INTO {_gone_table(category)} SELECT id FROM gone WHERE category = ?", (category,))
        spread = [(kind, ref) for kind in KINDS.values() if kind.identity for ref in kind.part_of]
        while True:  # an account takes its videos, a video its comments, a comment its replies
            joined = 0
            for kind, ref in spread:
                assert kind.identity is not None
                joined += db.execute(
                    f"INSERT OR IGNORE INTO {_gone_table(kind.identity.category)} "
                    f"SELECT {value_sql(kind, kind.identity.field)} FROM records "
                    f"WHERE kind = ? AND {_in_gone(kind, ref.field, ref.category)}",
                    (kind.feed,),
                ).rowcount
            if not joined:
                break

    def _delete_records(self) -> tuple[Counter[str], list[str]]:
        """Every record standing on something gone deleted; then the containers left empty.
        Returns the count per feed and the keys of the containers deleted."""
        db = self.db
        purged: Counter[str] = Counter()
        emptied: dict[str, set[str]] = {}
        members_of = {c.members[0]: (c, c.members[1]) for c in KINDS.values() if c.members is not None}
        for kind in KINDS.values():
            if not kind.refs:
                continue
            where = " OR ".join(_in_gone(kind, ref.field, ref.category) for ref in kind.refs)
            link = members_of.get(kind.feed)
            returning = f"json_extract(data, '$.{link[1]}')" if link else "1"
            rows = db.execute(
                f"DELETE FROM records WHERE kind = ? AND ({where}) RETURNING {returning}",
                (kind.feed,),
            ).fetchall()
            purged[kind.feed] += len(rows)
            if link:
                emptied.setdefault(link[0].feed, set()).update(str(value) for (value,) in rows if value is not None)
        containers = []
        for feed, keys in emptied.items():
            container = KINDS[feed]
            assert container.members is not None
            member, field = container.members
            for key in keys:
                remaining = db.execute(
                    f"SELECT 1 FROM records WHERE kind = ? AND json_extract(data, '$.{field}') = ? LIMIT 1",
                    (member, int(key) if key.lstrip("-").isdigit() else key),
                ).fetchone()
                if remaining is None:
                    deleted = db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (feed, key)).rowcount
                    purged[feed] += deleted
                    containers.extend([key] * deleted)
        return +purged, containers

    def _tokens(self, containers: list[str]) -> set[str]:
        """Every id and username that was purged (as text), to be removed wherever it is written."""
        tokens = set(containers)
        for category in CATEGORIES:
            tokens.update(str(value) for (value,) in self.db.execute(f"SELECT id FROM {_gone_table(category)}"))
        return tokens

    def _scrub_ledger(self, tokens: set[str]) -> None:
        """The ledger's other tables name no purged id or username: seeds keyed by one go, and
        the arguments and queries of its runs have them replaced by ``[purged]``."""
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS purged_tokens (token TEXT PRIMARY KEY)")
        db.execute("DELETE FROM temp.purged_tokens")
        db.executemany("INSERT OR IGNORE INTO temp.purged_tokens VALUES (?)", ((token,) for token in tokens))
        db.execute("DELETE FROM seeds WHERE seed IN (SELECT token FROM temp.purged_tokens)")
        # a refresh's own profile checks ("3/user/name") and its list of profiles to check
        db.execute(
            "DELETE FROM seeds WHERE instr(seed, '/user/') > 0 "
            "AND substr(seed, instr(seed, '/user/') + 6) IN (SELECT id FROM temp.gone_user)"
        )
        db.execute("DELETE FROM refresh_users WHERE username IN (SELECT id FROM temp.gone_user)")
        for rowid, run in db.execute("SELECT rowid, run FROM runs").fetchall():
            scrubbed = scrub(json.loads(run), tokens)
            text = json.dumps(scrubbed, ensure_ascii=False)
            if text != run:
                db.execute("UPDATE runs SET run = ? WHERE rowid = ?", (text, rowid))

    @staticmethod
    def _held_message(held: list[Share], max_share: float) -> str:
        found = "; ".join(str(share) for share in held)
        return (
            f"This refresh would purge {found}: more than TIKTOK_REFRESH_MAX_PURGE_SHARE={max_share:g}, so nothing "
            "was purged. An answer that cannot be right (an empty or cut-short file of valid ids) looks like this "
            f"too. If TikTok really no longer serves them, purge them: {command('refresh -a confirm_purge=true')} "
            f"(or check everything again: {command('refresh -a fresh=true')})"
        )

    # -- 3. finished -------------------------------------------------------------------

    def pending(self) -> list[str]:
        """The steps of a begun purge still to do, in order."""
        return self.pending_in(self.ledger)

    @staticmethod
    def pending_in(ledger: Ledger) -> list[str]:
        return [step for (step,) in ledger.connection.execute("SELECT step FROM purge_steps ORDER BY position")]

    def finish(self) -> list[str]:
        """Do every step still to do, crossing each off when it is done; what each did, in words.

        A step that fails raises :class:`PurgeUnfinished` naming it; it and the rest stay recorded.
        """
        said: list[str] = []
        steps = self.pending()
        for step in steps:
            try:
                result = getattr(self, f"_step_{step}")()
                if step != "compact":
                    self.db.execute("DELETE FROM purge_steps WHERE step = ?", (step,))
                    self.ledger.commit()
                    if step != "manifest":
                        self._step_manifest()  # it says which files are still to rewrite
            except (OSError, sqlite3.Error, ValueError) as error:
                raise PurgeUnfinished(f"could not rewrite {STEP_NAMES[step]} after the purge: {error}") from None
            if result:
                said.append(result)
        return said

    def _step_feeds(self) -> str:
        from tiktok_spiders.feeds import rewrite_feeds

        return f"rewrote {len(rewrite_feeds(self.ledger, self.data_dir, self.private))} feeds"

    def _step_manifest(self) -> str:
        from tiktok_spiders.manifest import FILENAME, write_manifest

        if (self.data_dir / FILENAME).exists():
            write_manifest(self.ledger, self.data_dir, self.private)
        return ""

    def _step_tables(self) -> str:
        from tiktok_spiders.publish import TABLE_DIRS, made_as
        from tiktok_spiders.staging import rewrite_tables

        said = []
        for name in TABLE_DIRS:  # as collected, pseudonymised, the ids alone: each made again as it was
            tables_dir = self.data_dir / name
            if not tables_dir.is_dir():
                continue
            rewritten, removed = rewrite_tables(
                self.data_dir,
                tables_dir,
                self.private,
                self.settings.getint("TIKTOK_TABLES_MEMORY_MB"),
                made_as(name, self.ledger),
            )
            said.append(f"rewrote {len(rewritten)} files in {name}/")
            if removed:
                gone = ", ".join(path.name for path in removed)
                said[-1] += f" and removed {gone} (no feed of this study makes them)"
        return "; ".join(said)

    def _step_report(self) -> str:
        from tiktok_spiders.files import remove_tree
        from tiktok_spiders.report import data_dir_of, write_report

        path = self.data_dir / "report.html"
        if not path.exists():
            remove_tree(data_dir_of(path))  # the numbers of a report that is gone hold ids too
            return ""
        try:
            write_report(self.data_dir, self.settings, path)
        except Exception as error:  # the report failed: it goes rather than keep what was purged
            path.unlink()
            remove_tree(data_dir_of(path))
            return f"removed report.html ({error}): write it again with {command('report')}"
        return "rewrote report.html and the numbers behind its plots"

    def _step_logs(self) -> str:
        tokens = {token for (token,) in self.db.execute("SELECT token FROM purge_tokens")}
        logs = self.data_dir / "logs"
        if not tokens or not logs.is_dir():
            return ""
        lines = sum(scrub_log(path, tokens, self.private) for path in sorted(logs.glob("*.log")))
        return f"removed {lines} lines naming what was purged from the run logs" if lines else ""

    def _step_leftovers(self) -> str:
        from tiktok_spiders.files import partial_files, remove_tree
        from tiktok_spiders.publish import TABLE_DIRS
        from tiktok_spiders.staging import STAGING_NAMES

        removed = 0
        for name in STAGING_NAMES:  # of a tables or report run that was killed: the study's data
            removed += remove_tree(self.data_dir / name)
        for directory in (self.data_dir, *(self.data_dir / name for name in TABLE_DIRS)):
            for partial in partial_files(directory):
                partial.unlink()
                removed += 1
        return f"removed {removed} files left by killed runs" if removed else ""

    def _step_compact(self) -> str:
        """The purged text out of the ledger's free pages and log: the identifiers first, then
        the file rebuilt; the step is crossed off only once that is done."""
        self.db.execute("DELETE FROM purge_tokens")
        self.ledger.commit()
        self.ledger.compact()
        self.db.execute("DELETE FROM purge_steps WHERE step = 'compact'")
        self.ledger.commit()
        self.ledger.checkpoint()  # that commit's log too
        return ""


def scrub(value: Any, tokens: set[str]) -> Any:
    """A run's record with every purged id or username in it replaced by ``[purged]``: whole
    values, elements of lists, and items of comma lists (``-a usernames=a,b``)."""
    if isinstance(value, dict):
        return {key: scrub(element, tokens) for key, element in value.items()}
    if isinstance(value, list):
        return [scrub(element, tokens) for element in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return PURGED if str(value) in tokens else value
    if isinstance(value, str):
        if value.lstrip().startswith(("{", "[")):  # an inline query
            try:
                return json.dumps(scrub(json.loads(value), tokens), ensure_ascii=False)
            except ValueError:
                pass
        parts = value.split(",")
        kept = [PURGED if part.strip().lstrip("@#") in tokens else part for part in parts]
        return ",".join(kept)
    return value


WORD = re.compile(r"[\w.]+")


def names_any(line: str, tokens: set[str]) -> bool:
    """Whether a line names one of ``tokens`` as a whole word (a username may hold dots)."""
    return any(word in tokens or word.strip(".") in tokens for word in WORD.findall(line))


def scrub_log(path: Path, tokens: set[str], private: bool = True) -> int:
    """Drop the lines of a log file that name a purged id or username; how many were dropped.

    The file is replaced whole (a reader never sees half of it); a run log still being
    written by this process is opened again on the new file.
    """
    dropped = 0
    with path.open(encoding="utf-8", errors="replace") as source:
        kept = []
        for line in source:
            if names_any(line, tokens):
                dropped += 1
            else:
                kept.append(line)
    if dropped:
        with atomic_write(path, private=private) as handle:
            handle.writelines(kept)
        _reopen_run_logs(path)
    return dropped


def _reopen_run_logs(path: Path) -> None:
    from tiktok_spiders.terminal import RunLog

    for handler in logging.getLogger().handlers:
        if isinstance(handler, RunLog) and handler.path is not None and handler.path.resolve() == path.resolve():
            handler.reopen()


def finish_pending(
    ledger: Ledger,
    data_dir: str | Path,
    settings: BaseSettings,
    say: Callable[[str], None] | None = None,
    purge_found: bool = True,
) -> bool:
    """Finish the purge an earlier run began, before anything else; whether there was one.

    What a refresh found gone and did not delete (it was killed first) is deleted now, within
    the brake (``purge_found``: the refresh itself does that when it closes, with its
    ``confirm_purge``); then the files still to rewrite are rewritten.  Raises
    :class:`PurgeUnfinished` when a step still cannot be done.
    """
    say = say or logger.warning
    purge = Purge(ledger, data_dir, settings)
    refreshes = Refreshes(ledger)
    found = refreshes.pending() if purge_found else {}
    if found:
        what = ", ".join(f"{count:,} {category}s" for category, count in sorted(found.items()))
        try:
            purged = purge.delete(refreshes.current(), settings.getfloat("TIKTOK_REFRESH_MAX_PURGE_SHARE"))
        except PurgeHeld as held:
            say(f"A refresh found {what} gone and was stopped before purging them. {held}")
        else:
            say(f"A refresh found {what} gone and was stopped before purging them: purged now ({_counted(purged)}).")
    steps = purge.pending()
    if not steps:
        return bool(found)
    say(
        "An earlier refresh purged records and was interrupted before it rewrote every file: finishing it now "
        f"({', '.join(STEP_NAMES[step] for step in steps)})."
    )
    for line in purge.finish():
        say(f"purge: {line}")
    return True


def _counted(purged: Counter[str]) -> str:
    return ", ".join(f"{count:,} {feed}" for feed, count in sorted(purged.items())) or "nothing"

"""A study's data directory, opened by a command that writes it: checked, locked, made whole.

Every command that writes a data directory — ``crawl``, ``study``, ``refresh``,
``tables``, ``report`` — opens it here first: no symbolic link where the tool
writes, one command at a time (the lock says which process holds it), the ledger
bound to this API and key, and a purge that an earlier refresh began finished
before anything else (``purge.py``).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tiktok_spiders.config import ConfigError
from tiktok_spiders.feeds import WRITABLE, feed_path
from tiktok_spiders.files import LOCK_FILENAME, DataDirBusy, DataDirLock, LinkInTheWay, check_no_links, keep_private
from tiktok_spiders.kinds import KINDS
from tiktok_spiders.ledger import FILENAME, Ledger
from tiktok_spiders.publish import DESCRIPTIONS, TABLE_DIRS
from tiktok_spiders.purge import finish_pending
from tiktok_spiders.quota_file import QuotaFile
from tiktok_spiders.quota_file import default_path as default_quota_path
from tiktok_spiders.refreshes import refresh_due

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

#: What the tool writes in a data directory besides the feeds (the staging directories of
#: ``tables`` and ``report``, removed when they end, are checked by the same name).
FIXED_NAMES = (
    FILENAME,
    f"{FILENAME}-wal",
    f"{FILENAME}-shm",
    f"{FILENAME}-journal",
    LOCK_FILENAME,
    "manifest.json",
    "report.html",
    "report-data",
    "logs",
    *TABLE_DIRS,
    ".tables-staging",
    ".report-staging",
    *(f"{directory}/{name}" for directory in TABLE_DIRS for name in DESCRIPTIONS),
    *(f"{directory}/study.duckdb" for directory in TABLE_DIRS),
)


class DataDirError(ValueError):
    """A data directory that cannot be used: said in one line, exit status 2, nothing written."""


def written_names() -> list[str]:
    """Every name, relative to the data directory, that the tool writes."""
    feeds = [feed_path("", kind, fmt).name for kind in KINDS.values() for fmt in WRITABLE]
    tables = [
        f"{directory}/{kind.feed}.{suffix}"
        for directory in TABLE_DIRS
        for kind in KINDS.values()
        for suffix in ("parquet", "csv", "xlsx")
    ]
    return [*FIXED_NAMES, *feeds, *tables]


def check_links(data_dir: str | Path) -> None:
    """:class:`DataDirError` naming a symbolic link where the tool would write."""
    try:
        check_no_links(Path(data_dir), written_names())
    except LinkInTheWay as error:
        raise DataDirError(str(error)) from None


def open_data_dir(settings: BaseSettings, *, refresh: bool = False, say: Callable[[str], None] | None = None) -> Ledger:
    """Lock the data directory and open its ledger, bound to this API and key; finish a purge an
    earlier refresh began; say once when the study is due for a refresh (unless this is one:
    ``refresh``, which also purges what it found itself, with its own ``confirm_purge``).

    A linked, busy, damaged, read-only or other-API directory is a :class:`DataDirError`,
    before anything is written; the lock is held until the ledger is closed.  A purge that
    still cannot be finished raises :class:`purge.PurgeUnfinished` (exit status 1).
    """
    data_dir = settings["TIKTOK_DATA_DIR"]
    check_links(data_dir)
    keep_private(settings.getbool("TIKTOK_PRIVATE_FILES"))
    try:
        ledger = Ledger(data_dir, private=settings.getbool("TIKTOK_PRIVATE_FILES"), lock=True, check=True)
    except (ConfigError, DataDirBusy, LinkInTheWay) as error:
        raise DataDirError(str(error)) from None
    try:
        ledger.bind(
            settings["TIKTOK_API_BASE_URL"],
            settings["TIKTOK_CLIENT_KEY"],
            allow_change=settings.getbool("TIKTOK_ALLOW_API_CHANGE"),
        )
        finish_pending(ledger, data_dir, settings, say, purge_found=not refresh)
    except ConfigError as error:
        ledger.close()
        raise DataDirError(str(error)) from None
    except BaseException:
        ledger.close()
        raise
    try:
        check_quota_file(settings)
    except DataDirError:
        ledger.close()
        raise
    due = None if refresh else refresh_due(ledger, settings)
    if due:
        (say or logger.warning)(due)
    return ledger


def remove_created(data_dir: Path, ledger_existed: bool, dir_existed: bool) -> None:
    """Take back what a crawl created in the data directory when it ends with exit status 2
    (credentials refused): exit status 2 means nothing was written."""
    if not ledger_existed:
        for name in (FILENAME, f"{FILENAME}-wal", f"{FILENAME}-shm", LOCK_FILENAME):
            with contextlib.suppress(OSError):
                (data_dir / name).unlink()
    if not dir_existed:
        with contextlib.suppress(OSError):
            data_dir.rmdir()


def check_quota_file(settings: BaseSettings) -> None:
    """The key's quota file can be read and counted in (:class:`DataDirError` saying what to do if not)."""
    try:
        quota = QuotaFile(settings["TIKTOK_QUOTA_FILE"], settings["TIKTOK_CLIENT_KEY"], check=True)
    except (sqlite3.Error, OSError) as error:
        path = settings["TIKTOK_QUOTA_FILE"] or default_quota_path()
        raise DataDirError(
            f"cannot use the quota file {path}: {error}. If it is damaged, delete it (today's requests so far are "
            "then not counted: lower TIKTOK_DAILY_REQUEST_LIMIT for today), or set TIKTOK_QUOTA_FILE to another file"
        ) from None
    quota.close()


@contextlib.contextmanager
def held_for_tables(data_dir: Path, settings: BaseSettings, say: Callable[[str], None]) -> Iterator[Ledger | None]:
    """The data directory locked while ``tables`` or ``report`` writes into it, with an earlier
    purge finished first; the ledger (None for a folder of feeds without one)."""
    check_links(data_dir)
    private = settings.getbool("TIKTOK_PRIVATE_FILES")
    keep_private(private)
    lock = DataDirLock(data_dir)
    try:
        lock.acquire(private)
    except (DataDirBusy, LinkInTheWay) as error:
        raise DataDirError(str(error)) from None
    ledger = None
    try:
        if (data_dir / FILENAME).is_file():
            try:
                ledger = Ledger(data_dir, private=private, check=True)
            except ConfigError as error:
                raise DataDirError(str(error)) from None
            finish_pending(ledger, data_dir, settings, say)
        yield ledger
    finally:
        if ledger is not None:
            ledger.close()
        lock.release()

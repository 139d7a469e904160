"""``scrapy crawl`` for the Research API spiders: one-line errors, honest exit statuses.

Arguments, settings and the data directory are checked before the crawl starts,
so bad input is one sentence on stderr (never a traceback), exit status 2, and
no file is touched.  After the crawl the exit status says whether it is complete:

- 0: finished, everything collected and written;
- 1: incomplete — something failed, the quota ran out, the crawl was
  interrupted or a file could not be written; running the same command again
  continues (after fixing what the error line names);
- 2: bad input or configuration (including credentials the API refuses).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands import crawl

from tiktok_spiders.config import ConfigError
from tiktok_spiders.files import LOCK_FILENAME, DataDirBusy
from tiktok_spiders.ledger import FILENAME, Ledger
from tiktok_spiders.purge import refresh_due
from tiktok_spiders.spiders.base import ApiSpider, BadArgument
from tiktok_spiders.terminal import QuietRun

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

BAD_INPUT_REASONS = frozenset({"invalid_credentials"})
logger = logging.getLogger(__name__)


def exit_status(crawler: Crawler) -> int:
    """0 complete, 1 incomplete (run again), 2 bad input; a failed write is never complete."""
    if crawler.stats.get_value("tiktok/write_failed"):
        return 1
    finish_reason = crawler.stats.get_value("finish_reason")
    if finish_reason == "finished":
        return 0
    return 2 if finish_reason in BAD_INPUT_REASONS else 1


def open_data_dir(settings: BaseSettings, *, warn_if_due: bool = True) -> Ledger:
    """Lock the data directory and open its ledger, bound to this API and key; say once
    when the study is due for a refresh.

    A busy, damaged, read-only or other-API directory is a :class:`BadArgument`
    here, before the crawl starts; the lock is held until the ledger is closed.
    """
    try:
        ledger = Ledger(settings["TIKTOK_DATA_DIR"], private=settings.getbool("TIKTOK_PRIVATE_FILES"), lock=True)
    except (ConfigError, DataDirBusy) as error:
        raise BadArgument(str(error)) from None
    try:
        ledger.bind(
            settings["TIKTOK_API_BASE_URL"],
            settings["TIKTOK_CLIENT_KEY"],
            allow_change=settings.getbool("TIKTOK_ALLOW_API_CHANGE"),
        )
    except ConfigError as error:
        ledger.close()
        raise BadArgument(str(error)) from None
    due = refresh_due(ledger, settings) if warn_if_due else None
    if due:
        logger.warning(due)
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


class Command(QuietRun, crawl.Command):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)
            return
        assert self.crawler_process is not None
        assert self.settings is not None
        try:
            spidercls = self.crawler_process.spider_loader.load(args[0])
        except KeyError:
            print(f"error: no spider named {args[0]!r} (see: scrapy list)", file=sys.stderr)
            self.exitcode = 2
            return
        ledger = None
        data_dir = Path(self.settings["TIKTOK_DATA_DIR"])
        existed = (data_dir / FILENAME).exists(), data_dir.exists()
        if issubclass(spidercls, ApiSpider):
            try:
                spidercls.check(self.settings, **opts.spargs)
                ledger = open_data_dir(self.settings, warn_if_due=spidercls.name != "refresh")
            except BadArgument as error:
                print(f"error: {error}", file=sys.stderr)
                self.exitcode = 2
                return
            self.start_run_log(data_dir, args[0])
        try:
            crawler = self.crawler_process.create_crawler(spidercls)
            self.crawler_process.crawl(crawler, **opts.spargs)
            self.crawler_process.start()
        finally:
            if ledger is not None:
                ledger.close()
        self.exitcode = 1 if self.crawler_process.bootstrap_failed else exit_status(crawler)
        if self.exitcode == 2:
            self.discard_run_log()
            remove_created(data_dir, *existed)
        # Everything the crawl wrote is committed and closed: spare the interpreter's
        # final garbage collection of Scrapy's object graph (~0.25 s of every stage; docs/scrapy-internals.md).
        gc.freeze()

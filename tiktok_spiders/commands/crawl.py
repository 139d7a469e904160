"""``scrapy crawl`` for the Research API spiders: one-line errors, honest exit statuses.

Arguments, settings and the data directory are checked before the crawl starts
(``datadir.py``), so bad input is one sentence on stderr (never a traceback), exit
status 2, and no file is touched; after the crawl the exit status says whether it
is complete (:func:`stopping.exit_status`).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands import crawl

from tiktok_spiders.commands import Named
from tiktok_spiders.datadir import DataDirError, open_data_dir, remove_created
from tiktok_spiders.ledger import FILENAME
from tiktok_spiders.spiders.arguments import BadArgument
from tiktok_spiders.spiders.base import ApiSpider
from tiktok_spiders.stopping import exit_status
from tiktok_spiders.terminal import QuietRun, command

if TYPE_CHECKING:
    import argparse


class Command(Named, QuietRun, crawl.Command):
    option_hint = ": spider arguments are given as -a name=value ({option})"

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if self.refused(args):
            return
        if len(args) != 1:
            super().run(args, opts)
            return
        assert self.crawler_process is not None
        assert self.settings is not None
        try:
            spidercls = self.crawler_process.spider_loader.load(args[0])
        except KeyError:
            print(f"error: no spider named {args[0]!r} (see: {command('list')})", file=sys.stderr)
            self.exitcode = 2
            return
        ledger = None
        data_dir = Path(self.settings["TIKTOK_DATA_DIR"])
        existed = (data_dir / FILENAME).exists(), data_dir.exists()
        if issubclass(spidercls, ApiSpider):
            with self.one_line_errors(BadArgument, DataDirError):
                spidercls.check(self.settings, **opts.spargs)
                ledger = open_data_dir(self.settings, refresh=spidercls.name == "refresh")
            if ledger is None:
                return
            self.start_run_log(data_dir, args[0])
        try:
            crawler = self.crawler_process.create_crawler(spidercls)
            if ledger is not None:
                ledger.lend_to(crawler)
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

"""``scrapy refresh``: the ``refresh`` spider under a name of its own.

Checks every video, comment and profile the data directory holds against the
API and purges what is no longer available (``spiders/refresh.py``), with the
exit statuses of ``scrapy crawl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import UsageError

from tiktok_spiders.commands import crawl
from tiktok_spiders.terminal import command

if TYPE_CHECKING:
    import argparse


class Command(crawl.Command):
    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Check every stored record against the API and purge what is no longer available"

    option_hint = ": its arguments are given as -a name=value ({option})"

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if self.refused(args):
            return
        if args:
            raise UsageError(f"{command('refresh')} takes no arguments (the data directory is TIKTOK_DATA_DIR)")
        super().run(["refresh"], opts)

"""Project commands (``COMMANDS_MODULE``): ``crawl``, ``study``, ``refresh``, ``tables``, ``report``.

Each says its name as the researcher typed it (``tiktok-spiders study``, or ``scrapy
study`` inside the checkout), and an option it does not know is one line, exit 2,
before anything is done (Scrapy would take ``--fressh`` for a second study file).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from tiktok_spiders.terminal import command

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator


class Named:
    """A mixin for the project's commands (put first in the bases)."""

    #: What a stray option usually meant, per command.
    option_hint = ""

    @property
    def name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)  # type: ignore[misc]
        parser.prog = command(self.name)
        if parser.usage:
            parser.usage = parser.usage.replace("scrapy ", f"{command('')}", 1)

    def refused(self, args: list[str]) -> bool:
        """Say the first unknown option and set exit status 2; whether there was one."""
        unknown = [arg for arg in args if arg.startswith("-") and arg != "-"]
        if not unknown:
            return False
        hint = self.option_hint.format(option=unknown[0].lstrip("-"))
        print(f"error: unknown option {unknown[0]} for {command(self.name)}{hint} (see --help)", file=sys.stderr)
        self.exitcode = 2
        return True

    @contextlib.contextmanager
    def one_line_errors(self, *bad_input: type[Exception]) -> Iterator[None]:
        """What stops a command before it writes anything, said in one line: bad input (``bad_input``)
        with exit status 2, a purge an earlier refresh began and that still cannot finish with 1."""
        from tiktok_spiders.purge import PurgeUnfinished

        try:
            yield
        except bad_input as error:
            print(f"error: {error}", file=sys.stderr)
            self.exitcode = 2
        except PurgeUnfinished as error:
            print(f"error: {error}. Fix it and run the same command again.", file=sys.stderr)
            self.exitcode = 1

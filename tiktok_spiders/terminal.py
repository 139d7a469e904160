"""What a run shows on the terminal, and the log file that keeps the rest.

Of the hundred lines a Scrapy crawl logs, a researcher needs a handful: the
progress, warnings, errors and the closing summary.  By default the terminal
shows those (a progress bar on a terminal, a periodic line otherwise), and
everything Scrapy logs — banner, components, stats — goes to a log file per run
in ``<data dir>/logs/``, whose path is said once.  ``--verbose`` (or ``-L`` /
``--logfile``) gives Scrapy's own logging back.  Nothing is written before the
data directory has been checked: the log is held in memory until then, so bad
input (exit status 2) still writes nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from scrapy.utils.log import _get_formatter

from tiktok_spiders import clock
from tiktok_spiders.files import LinkInTheWay, make_dir, restrict

if TYPE_CHECKING:
    import argparse

    from scrapy.settings import BaseSettings, Settings

#: The loggers of the progress lines and closing summaries, and of notes on the input, which the
#: terminal always shows.
PROGRESS_LOGGER = "tiktok_spiders.extensions.progress"
NOTE_LOGGER = "tiktok_spiders.note"


#: The command as the researcher typed it, for the messages that tell them what to run next:
#: ``tiktok-spiders`` (set by ``cli.main``), else this project's ``scrapy``.
invoked_as = "scrapy"


def command(rest: str) -> str:
    """``tiktok-spiders refresh`` or ``scrapy refresh``, as the researcher runs this tool."""
    return f"{invoked_as} {rest}"


def note(text: str) -> None:
    """Tell the researcher something about their input that is not a problem (shown as ``note:``)."""
    logging.getLogger(NOTE_LOGGER).info(text)


def write_line(text: str) -> None:
    """A line on stderr that a progress bar, if one is drawn, makes room for."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


class TerminalHandler(logging.Handler):
    """Warnings, errors, progress lines and summaries, without Scrapy's prefixes."""

    def filter(self, record: logging.LogRecord) -> bool:
        shown = record.name in (PROGRESS_LOGGER, NOTE_LOGGER) and record.levelno >= logging.INFO
        return shown or record.levelno >= logging.WARNING

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                message = f"{record.levelname.lower()}: {message}"
            elif record.name == NOTE_LOGGER:
                message = f"note: {message}"
            write_line(message)
        except Exception:
            self.handleError(record)


class RunLog(logging.Handler):
    """Everything logged, for the run's log file: held in memory until :meth:`open`."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(level=settings.get("LOG_LEVEL"))
        self.setFormatter(_get_formatter(self, settings))
        self.held: list[logging.LogRecord] = []
        self.stream: TextIO | None = None
        self.path: Path | None = None
        self.private = True

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            self.held.append(record)
            return
        try:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)

    def open(self, data_dir: str | Path, command: str, private: bool = True) -> Path:
        """Start writing (what was held first) to a new file in ``<data dir>/logs``."""
        logs = Path(data_dir) / "logs"
        make_dir(logs, private)
        stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
        self.path = logs / f"{stamp}-{command}.log"
        self.private = private
        self.reopen()
        for record in self.held:
            self.emit(record)
        self.held.clear()
        return self.path

    def reopen(self) -> None:
        """(Re)open the log file for appending, never through a link: after a purge replaced it
        with a copy without the lines naming what was purged, writing goes on in the copy."""
        assert self.path is not None
        if self.stream is not None:
            self.stream.close()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(self.path, flags, 0o600 if self.private else 0o666)
        except OSError:
            if self.path.is_symlink():
                raise LinkInTheWay(self.path) from None
            raise
        self.stream = os.fdopen(descriptor, "a", encoding="utf-8")
        restrict(self.path, self.private)

    def discard(self) -> None:
        """Take the file back (a run that ends with exit status 2 writes nothing)."""
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            if not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        super().close()


def verbose(settings: BaseSettings) -> bool:
    """Whether Scrapy's own logging was asked for (``--verbose``, ``-L``, ``--logfile``)."""
    return (
        settings.getbool("TIKTOK_VERBOSE")
        or bool(settings.get("LOG_FILE"))
        or (settings.getpriority("LOG_LEVEL") or 0) >= 40
    )  # set on the command line (-L) or by -s


def quiet_logging(settings: Settings) -> RunLog | None:
    """The terminal shows what a researcher needs and the run log keeps the rest; None when verbose."""
    if verbose(settings):
        return None
    settings.set("LOG_ENABLED", False, priority="cmdline")  # Scrapy's own stderr handler: off
    run_log = RunLog(settings)
    root = logging.getLogger()
    root.setLevel(min(run_log.level, logging.INFO))  # below LOG_LEVEL nothing is even formatted
    root.addHandler(run_log)
    root.addHandler(TerminalHandler())
    return run_log


class QuietRun:
    """For the commands that crawl: ``--verbose``, the terminal and the run log set up before
    Scrapy's crawler process starts logging, and the run log opened once the data directory is known."""

    run_log: RunLog | None = None

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)  # type: ignore[misc]
        parser.add_argument(
            "--verbose", action="store_true", help="Scrapy's whole log on the terminal (default: <data dir>/logs/)"
        )

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)  # type: ignore[misc]
        settings = self.settings  # type: ignore[attr-defined]
        if opts.verbose:
            settings.set("TIKTOK_VERBOSE", True, priority="cmdline")
        self.run_log = quiet_logging(settings)

    def start_run_log(self, data_dir: str | Path, command: str) -> None:
        if self.run_log is not None:
            path = self.run_log.open(data_dir, command, self.settings.getbool("TIKTOK_PRIVATE_FILES"))  # type: ignore[attr-defined]
            write_line(f"Scrapy's log of this run: {path}")

    def discard_run_log(self) -> None:
        if self.run_log is not None:
            self.run_log.discard()

"""``tiktok-spiders``: the project's commands from any folder.

A study folder holds its ``.env``, its study files and its ``data/``; from there::

    tiktok-spiders study climate.toml
    tiktok-spiders crawl videos -a hashtags=climate -a start_date=2024-01-01 -a end_date=2024-01-31
    tiktok-spiders tables
    tiktok-spiders refresh
    tiktok-spiders sandbox --port 8000     # the Research API emulator

They are the ``scrapy`` commands of this project, with the same arguments; inside
the project's checkout ``scrapy …`` works as well.
"""

from __future__ import annotations

import os
import sys

#: The commands a researcher runs, with what each does (``scrapy``'s own are left out).
COMMANDS = {
    "study": "run the stages of a study file in order, resumably (--plan: what it will cost)",
    "crawl": "run one stage: crawl SPIDER -a name=value ...",
    "tables": "write the feeds as typed, joined tables (Parquet, CSV, DuckDB, xlsx; --pseudonymize to share)",
    "report": "write the study's report: one HTML file with plots, readable offline",
    "refresh": "check every stored record against the API and purge what is gone",
    "list": "the spiders (stages) there are",
    "sandbox": "run the Research API emulator (--help for its options)",
}


#: Every command goes on where it stopped, or starts again, when run again.
INTERRUPTED = "interrupted: run the same command again to go on"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    return "usage: tiktok-spiders COMMAND [options]   (COMMAND -h for its options; --version)\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    try:
        run(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # what reads the output went away (``| head``): nothing more to say, and no traceback;
        # stdout to /dev/null, so the interpreter's last flush fails silently too (Python's advice)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


def run(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0)
    if argv[0] in ("--version", "-V"):  # what to cite (CITATION.cff) and what each manifest names
        from importlib.metadata import version

        print(f"tiktok-spiders {version('tiktok-spiders')}")
        sys.exit(0)
    if argv[0] not in COMMANDS and argv[0] not in ("settings", "version"):
        print(f"error: unknown command {argv[0]!r} (one of: {', '.join(COMMANDS)})", file=sys.stderr)
        sys.exit(2)
    if argv[:1] == ["sandbox"]:
        from tiktok_spiders.emulator.__main__ import main as sandbox

        sys.exit(sandbox(argv[1:]))
    # the project's settings wherever this runs: a study folder is not a Scrapy project
    os.environ["SCRAPY_SETTINGS_MODULE"] = "tiktok_spiders.settings"
    try:
        from scrapy.cmdline import execute

        from tiktok_spiders import terminal

        terminal.invoked_as = "tiktok-spiders"

        execute(["tiktok-spiders", *argv])
    except KeyboardInterrupt:  # before a command handles Ctrl-C itself: while Scrapy and pandas load
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

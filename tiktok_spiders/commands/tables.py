"""``scrapy tables``: a study's feeds as analysis-ready CSV or Parquet tables.

    scrapy tables                                   # every table of TIKTOK_DATA_DIR -> <data dir>/tables/*.parquet
    scrapy tables videos comments --format csv      # some of them, as CSV
    scrapy tables videos --inputs a/videos.jsonl b/videos.csv --output all-videos.parquet
    scrapy tables videos --where "view_count > 1000" --columns id,username --output popular.csv
    scrapy tables --format duckdb                   # every table in one database, <data dir>/tables/study.duckdb

Videos come with their URL and their authors' profiles (``author_*``), comments
with their video's URL and author (``video_*``).  ``--where`` (a pandas query;
times compare with UTC date strings, ``@has(hashtag_names, 'climate')`` tests a
list) and ``--columns`` select what the next stage should be seeded with: the
result is a feed ``scrapy crawl comments -a videos=popular.csv`` can read.  A
selection goes to its own ``--output`` file, never over the full tables, and
every error is found before anything is written.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tiktok_spiders.commands import Named
from tiktok_spiders.feeds import feed_format
from tiktok_spiders.files import atomic_write, make_dir
from tiktok_spiders.where import Where, WhereError

if TYPE_CHECKING:
    import argparse

    import pandas as pd


INTERRUPTED = "interrupted: the files written before are complete, the one being written is not there"


class Command(Named, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[TABLE ...] [options]"

    def short_desc(self) -> str:
        return "Write a study's feeds as typed, joined Parquet, CSV or DuckDB tables"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--data-dir", help="the study's data directory (default TIKTOK_DATA_DIR)")
        parser.add_argument(
            "--format",
            choices=("parquet", "csv", "duckdb"),
            default="parquet",
            help="one file per table, or (duckdb) every table and views joining them in one database",
        )
        parser.add_argument("--output-dir", help="where tables go (default <data dir>/tables)")
        parser.add_argument("--output", help="one table's file (its suffix sets the format)")
        parser.add_argument(
            "--inputs", nargs="+", help="feed files to combine into one table (instead of the data dir)"
        )
        parser.add_argument("--where", help='keep the rows matching a pandas query, e.g. "view_count > 1000"')
        parser.add_argument("--columns", help="keep these columns, e.g. id,username")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from tiktok_spiders.config import ConfigError, check_settings
        from tiktok_spiders.datadir import DataDirError, held_for_tables
        from tiktok_spiders.purge import PurgeUnfinished

        assert self.settings is not None
        if self.refused(args):
            return
        data_dir = Path(opts.data_dir or self.settings["TIKTOK_DATA_DIR"])
        try:
            check_settings(self.settings)
            if opts.inputs:
                self.write(args, opts, data_dir)
                return
            if not data_dir.is_dir():
                raise ConfigError(f"data directory {data_dir} does not exist")
            # one command writes a data directory at a time: a refresh purging it meanwhile
            # would have these tables written back with what it purged
            with held_for_tables(data_dir, self.settings, say=lambda line: print(f"note: {line}", file=sys.stderr)):
                self.write(args, opts, data_dir)
        except (ConfigError, DataDirError) as error:
            self._fail(f"error: {error}", 2)
        except PurgeUnfinished as error:
            self._fail(f"error: {error}. Fix it and run the same command again.", 1)

    def write(self, args: list[str], opts: argparse.Namespace, data_dir: Path) -> None:
        """The tables asked for, every mistake found before anything is written."""
        # pandas, pyarrow and DuckDB: imported only when tables are asked for
        import duckdb
        import pyarrow as pa

        from tiktok_spiders import table_writer, tables

        assert self.settings is not None
        try:
            if (opts.where or opts.columns) and not opts.output:
                raise UsageError("a selection (--where, --columns) goes to its own file: add --output FILE")
            if opts.output and Path(opts.output).suffix not in (".csv", ".parquet", ".duckdb"):
                raise UsageError(f"--output {opts.output}: end it in .csv, .parquet or .duckdb")
            feeds, names = self._feeds(tables, args, opts, data_dir)
            if opts.output and len(names) != 1:
                raise UsageError("--output writes one table: name it")
        except (ValueError, OSError, UsageError) as error:
            self._fail(f"error: {error}", 2)
            return
        private = self.settings.getbool("TIKTOK_PRIVATE_FILES")
        memory_mb = self.settings.getint("TIKTOK_TABLES_MEMORY_MB")
        out_dir = Path(opts.output_dir) if opts.output_dir else data_dir / "tables"
        output = Path(opts.output) if opts.output else None
        fmt = output.suffix.lstrip(".") if output else opts.format
        try:
            where = Where(opts.where) if opts.where else None
        except WhereError as error:
            self._fail(f"error: --where {opts.where!r}: {error}", 2)
            return
        select = partial(self._select, where, opts) if opts.where or opts.columns else None
        if not opts.inputs:
            self._warn_if_due(data_dir)
        try:
            # staged beside where the tables go (the data directory, by default), private, and removed
            # however the run ends: an error leaves no directory behind, not even the tables'
            staging = make_dir(output.parent if output else out_dir.parent, private) / table_writer.TABLES_STAGING
            with (
                table_writer.ctrl_c_stops(),
                table_writer.StudyDatabase(staging, private=private, memory_mb=memory_mb, progress=True) as study,
            ):
                if opts.inputs:
                    study.add(names[0], feeds[names[0]], key=tables.FEED_KEYS.get(names[0]))
                else:
                    table_writer.stage_study(study, {name: paths[0] for name, paths in feeds.items()}, names)
                if fmt == "duckdb":
                    path = output or out_dir / "study.duckdb"
                    written = table_writer.write_database(study, names, path, select, private)
                    print(f"{path}  ({len(written)} tables: {', '.join(written)})")
                    return
                for name in names:
                    path = output or out_dir / f"{name}.{fmt}"
                    rows, columns = table_writer.write_table(study, name, path, fmt, select, private)
                    print(f"{path}  ({rows:,} rows, {columns} columns)")
        except (ValueError, KeyError, UsageError, pa.ArrowException) as error:  # a feed's record, or the selection
            self._fail(f"error: {error}", 2)
            return
        except KeyboardInterrupt:  # ctrl_c_stops: whatever DuckDB made of it
            self._fail(INTERRUPTED, 1)
            return
        except (OSError, duckdb.Error) as error:
            self._fail(f"error: could not write the tables: {error}", 1)
            return
        if not output:  # what every column means, beside the tables
            from tiktok_spiders.codebook import markdown

            with atomic_write(out_dir / "codebook.md", private=private) as handle:
                handle.write(markdown())
            print(f"{out_dir / 'codebook.md'}  (what every column means)")

    def _fail(self, message: str, status: int) -> None:
        print(message, file=sys.stderr)
        self.exitcode = status

    def _warn_if_due(self, data_dir: Path) -> None:
        """Tables are what gets published: say when the data behind them is due for a refresh."""
        from tiktok_spiders.config import ConfigError
        from tiktok_spiders.ledger import FILENAME, Ledger
        from tiktok_spiders.refreshes import refresh_due

        assert self.settings is not None
        if not (data_dir / FILENAME).is_file():
            return
        try:
            ledger = Ledger(data_dir, private=self.settings.getbool("TIKTOK_PRIVATE_FILES"))
        except ConfigError:
            return  # a ledger that cannot be read has no say in the tables
        try:
            due = refresh_due(ledger, self.settings)
        finally:
            ledger.close()
        if due:
            print(f"warning: {due}", file=sys.stderr)

    @staticmethod
    def _feeds(
        tables: Any, names: list[str], opts: argparse.Namespace, data_dir: Path
    ) -> tuple[dict[str, list[Path]], list[str]]:
        """The feed files of each table, and the tables to write."""
        if opts.inputs:
            name = names[0] if names else Path(opts.inputs[0]).stem
            missing = [path for path in opts.inputs if not Path(path).is_file()]
            if missing:
                raise ValueError(f"{missing[0]} does not exist")
            for path in opts.inputs:
                feed_format(Path(path))  # a file of an unknown format is named before any work
            return {name: [Path(path) for path in opts.inputs]}, [name]
        if not data_dir.is_dir():
            raise ValueError(f"data directory {data_dir} does not exist")
        found = tables.study_feeds(data_dir)
        unknown = [name for name in names if name not in found]
        if unknown:
            raise ValueError(f"no {unknown[0]} feed in {data_dir} (found: {', '.join(found) or 'none'})")
        return {name: [path] for name, path in found.items()}, names or list(found)

    @staticmethod
    def _select(where: Where | None, opts: argparse.Namespace, frame: pd.DataFrame) -> pd.DataFrame:
        if where is not None:
            try:
                frame = frame[where.mask(frame)]
            except (WhereError, TypeError, ValueError) as error:  # a column compared with a value of another type
                raise ValueError(f"--where {opts.where!r}: {error}") from None
        if opts.columns:
            columns = [column.strip() for column in opts.columns.split(",") if column.strip()]
            unknown = [column for column in columns if column not in frame.columns]
            if unknown:
                raise ValueError(f"--columns: no column {unknown[0]!r}")
            frame = frame[columns]
        return frame

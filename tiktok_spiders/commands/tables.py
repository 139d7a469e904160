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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tiktok_spiders.files import atomic_write

if TYPE_CHECKING:
    import argparse

    import pandas as pd


class Command(ScrapyCommand):
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
        from tiktok_spiders import tables  # pandas: imported only when tables are asked for

        assert self.settings is not None
        data_dir = Path(opts.data_dir or self.settings["TIKTOK_DATA_DIR"])
        try:
            if (opts.where or opts.columns) and not opts.output:
                raise UsageError("a selection (--where, --columns) goes to its own file: add --output FILE")
            found = self._tables(tables, args, opts, data_dir, joined=opts.format != "duckdb")
            if opts.output and len(found) != 1:
                raise UsageError("--output writes one table: name it")
            if opts.output:
                suffix = Path(opts.output).suffix.lstrip(".")
                if suffix not in ("csv", "parquet", "duckdb"):
                    raise UsageError(f"--output {opts.output}: end it in .csv, .parquet or .duckdb")
            out_dir = Path(opts.output_dir) if opts.output_dir else data_dir / "tables"
            # every table and selection is made before the first file is written
            selected = {name: self._select(tables, frame, opts) for name, frame in found.items()}
        except (ValueError, KeyError, OSError, UsageError) as error:
            print(f"error: {error}", file=sys.stderr)
            self.exitcode = 2
            return
        private = self.settings.getbool("TIKTOK_PRIVATE_FILES")
        if not opts.inputs:
            self._warn_if_due(data_dir)
        try:
            if opts.format == "duckdb" or (opts.output or "").endswith(".duckdb"):
                path = Path(opts.output) if opts.output else out_dir / "study.duckdb"
                tables.export_duckdb(selected, path, private=private)
                print(f"{path}  ({len(selected)} tables: {', '.join(selected)})")
                return
            for name, frame in selected.items():
                path = Path(opts.output) if opts.output else out_dir / f"{name}.{opts.format}"
                tables.export(frame, path, private=private)
                print(f"{path}  ({len(frame):,} rows, {len(frame.columns)} columns)")
            if not opts.output:  # what every column means, beside the tables
                from tiktok_spiders.codebook import markdown

                with atomic_write(out_dir / "codebook.md", private=private) as handle:
                    handle.write(markdown())
                print(f"{out_dir / 'codebook.md'}  (what every column means)")
        except OSError as error:
            print(f"error: could not write the tables: {error}", file=sys.stderr)
            self.exitcode = 1

    def _warn_if_due(self, data_dir: Path) -> None:
        """Tables are what gets published: say when the data behind them is due for a refresh."""
        from tiktok_spiders.config import ConfigError
        from tiktok_spiders.ledger import FILENAME, Ledger
        from tiktok_spiders.purge import refresh_due

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
    def _tables(
        tables: Any, names: list[str], opts: argparse.Namespace, data_dir: Path, joined: bool = True
    ) -> dict[str, pd.DataFrame]:
        if opts.inputs:
            name = names[0] if names else Path(opts.inputs[0]).stem
            missing = [path for path in opts.inputs if not Path(path).is_file()]
            if missing:
                raise ValueError(f"{missing[0]} does not exist")
            frame = tables.load(opts.inputs, key=tables.FEED_KEYS.get(name))
            return {name: tables.with_urls(frame) if name == "videos" else frame}
        if not data_dir.is_dir():
            raise ValueError(f"data directory {data_dir} does not exist")
        found = tables.study_tables(data_dir, joined=joined)
        unknown = [name for name in names if name not in found]
        if unknown:
            raise ValueError(f"no {unknown[0]} feed in {data_dir} (found: {', '.join(found) or 'none'})")
        return {name: found[name] for name in names} if names else found

    @staticmethod
    def _select(tables: Any, frame: pd.DataFrame, opts: argparse.Namespace) -> pd.DataFrame:
        if opts.where:
            try:
                frame = tables.select(frame, opts.where)
            except Exception as error:  # pandas raises many kinds for a bad expression
                raise ValueError(f"--where {opts.where!r}: {error}") from None
        if opts.columns:
            columns = [column.strip() for column in opts.columns.split(",") if column.strip()]
            unknown = [column for column in columns if column not in frame.columns]
            if unknown:
                raise ValueError(f"--columns: no column {unknown[0]!r}")
            frame = frame[columns]
        return frame

"""``scrapy tables``: a study's feeds as analysis-ready Parquet, CSV, DuckDB or spreadsheet tables.

    scrapy tables                                   # every table of TIKTOK_DATA_DIR -> <data dir>/tables/*.parquet
    scrapy tables videos comments --format csv      # some of them, as CSV (or xlsx: ids kept as text)
    scrapy tables videos --inputs a/videos.jsonl b/videos.csv --output all-videos.parquet
    scrapy tables videos --where "view_count > 1000" --columns id,username --output popular.csv
    scrapy tables --format duckdb                   # every table in one database, <data dir>/tables/study.duckdb
    scrapy tables --pseudonymize                    # to share: <data dir>/tables-pseudonymized (publish.py)
    scrapy tables --ids-only                        # to collect again: <data dir>/tables-ids

Videos come with their URL and their authors' profiles (``author_*``), comments
with their video's URL and author (``video_*``).  ``--where`` (the small language
of ``where.py``; times compare with UTC date strings, ``@has(hashtag_names,
'climate')`` tests a list) and ``--columns`` select what the next stage should be
seeded with: the result is a feed ``scrapy crawl comments -a videos=popular.csv``
can read.  A selection goes to its own ``--output`` file, never over the full
tables, and every error is found before anything is written.  Beside the tables:
``codebook.md`` and ``datapackage.json``.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tiktok_spiders import publish
from tiktok_spiders.commands import Named
from tiktok_spiders.feeds import feed_format
from tiktok_spiders.files import make_dir
from tiktok_spiders.where import Where, WhereError

if TYPE_CHECKING:
    import argparse

    import pandas as pd

    from tiktok_spiders.ledger import Ledger


INTERRUPTED = "interrupted: the files written before are complete, the one being written is not there"


class Command(Named, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[TABLE ...] [options]"

    def short_desc(self) -> str:
        return "Write a study's feeds as typed, joined Parquet, CSV, DuckDB or spreadsheet tables"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--data-dir", help="the study's data directory (default TIKTOK_DATA_DIR)")
        parser.add_argument(
            "--format",
            choices=("parquet", "csv", "duckdb", "xlsx"),
            help="one file per table (default parquet; csv with --ids-only; xlsx: a workbook per table, ids as "
            "text, no formulas), or (duckdb) every table and views joining them in one database",
        )
        parser.add_argument(
            "--pseudonymize",
            action="store_true",
            help="usernames and display names replaced by keyed pseudonyms, identifying profile fields left out: "
            "into <data dir>/tables-pseudonymized",
        )
        parser.add_argument(
            "--ids-only",
            action="store_true",
            help="only the ids another researcher can collect the study again from, into <data dir>/tables-ids",
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

        assert self.settings is not None
        if self.refused(args):
            return
        data_dir = Path(opts.data_dir or self.settings["TIKTOK_DATA_DIR"])
        with self.one_line_errors(ConfigError, DataDirError):
            check_settings(self.settings)
            if opts.inputs:
                self.write(args, opts, data_dir)
                return
            if not data_dir.is_dir():
                raise ConfigError(f"data directory {data_dir} does not exist")
            # one command writes a data directory at a time: a refresh purging it meanwhile
            # would have these tables written back with what it purged
            with held_for_tables(
                data_dir, self.settings, say=lambda line: print(f"note: {line}", file=sys.stderr)
            ) as ledger:
                self.write(args, opts, data_dir, ledger)

    def write(self, args: list[str], opts: argparse.Namespace, data_dir: Path, ledger: Ledger | None = None) -> None:
        """The tables asked for, every mistake found before anything is written."""
        # pandas, pyarrow and DuckDB: imported only when tables are asked for
        import duckdb
        import pyarrow as pa

        from tiktok_spiders import staging, tables

        assert self.settings is not None
        try:
            if (opts.where or opts.columns) and not opts.output:
                raise UsageError("a selection (--where, --columns) goes to its own file: add --output FILE")
            if opts.output and Path(opts.output).suffix not in staging.TABLE_SUFFIXES:
                raise UsageError(f"--output {opts.output}: end it in .csv, .parquet, .duckdb or .xlsx")
            if (opts.pseudonymize or opts.ids_only) and ledger is None:
                raise UsageError("--pseudonymize and --ids-only work on a study's data directory, not --inputs")
            if opts.pseudonymize and opts.ids_only:
                raise UsageError("--ids-only holds no name to pseudonymize: give one of them")
            feeds, names = self._feeds(tables, args, opts, data_dir)
            if opts.ids_only:
                without = [name for name in names if not publish.with_ids(name)]
                names = [name for name in names if publish.with_ids(name)]
                unshared = "no ids to share (an account's id is its username): collected again from the videos"
                if not names:
                    raise UsageError(f"{', '.join(without) or 'this study'}: {unshared}")
                if without and args:  # named, and left out: say so
                    print(f"note: {', '.join(without)}: {unshared}", file=sys.stderr)
            if opts.output and len(names) != 1:
                raise UsageError("--output writes one table: name it")
        except (ValueError, OSError, UsageError) as error:
            self._fail(f"error: {error}", 2)
            return
        private = self.settings.getbool("TIKTOK_PRIVATE_FILES")
        memory_mb = self.settings.getint("TIKTOK_TABLES_MEMORY_MB")
        default_dir = (
            publish.PSEUDONYMIZED_DIR if opts.pseudonymize else publish.IDS_DIR if opts.ids_only else publish.TABLES_DIR
        )
        out_dir = Path(opts.output_dir) if opts.output_dir else data_dir / default_dir
        output = Path(opts.output) if opts.output else None
        fmt = output.suffix.lstrip(".") if output else opts.format or ("csv" if opts.ids_only else "parquet")
        try:
            where = Where(opts.where) if opts.where else None
        except WhereError as error:
            self._fail(f"error: --where {opts.where!r}: {error}", 2)
            return
        steps: list[Any] = [partial(self._select, where, opts)] if opts.where or opts.columns else []
        made_as = publish.made_as(default_dir, ledger) if ledger is not None else None
        if made_as is not None:  # pseudonyms, the ids alone: after the selection, which sees the data as it is
            steps.append(made_as)
        select = _chain(steps)
        if not opts.inputs:
            self._warn_if_due(data_dir)
        try:
            # staged beside where the tables go (the data directory, by default), private, and removed
            # however the run ends: an error leaves no directory behind, not even the tables'
            staging_dir = make_dir(output.parent if output else out_dir.parent, private) / staging.TABLES_STAGING
            with (
                staging.ctrl_c_stops(),
                staging.StudyDatabase(staging_dir, private=private, memory_mb=memory_mb, progress=True) as study,
            ):
                if opts.inputs:
                    study.add(names[0], feeds[names[0]], key=tables.FEED_KEYS.get(names[0]))
                else:
                    staging.stage_study(study, {name: paths[0] for name, paths in feeds.items()}, names)
                files = staging.write_tables(study, names, out_dir, fmt, select, private, output)
                for path, what in files:
                    print(f"{path}  ({what})")
                if not output:  # what every column means, beside the tables
                    if opts.pseudonymize and ledger is not None:
                        _note_pseudonyms(ledger, data_dir, out_dir, study.columns, private)
                    manifest = (
                        json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
                        if (data_dir / "manifest.json").is_file()
                        else {}
                    )
                    described = staging.describe_tables(
                        study, files, out_dir, manifest, private, made_as, None if opts.inputs else data_dir
                    )
                    for path in described:
                        print(f"{path}  ({'what every column means' if path.suffix == '.md' else 'the data package'})")
        except (ValueError, KeyError, UsageError, pa.ArrowException) as error:  # a feed's record, or the selection
            self._fail(f"error: {error}", 2)
            return
        except KeyboardInterrupt:  # ctrl_c_stops: whatever DuckDB made of it
            self._fail(INTERRUPTED, 1)
            return
        except (OSError, duckdb.Error) as error:
            self._fail(f"error: could not write the tables: {error}", 1)
            return

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


def _chain(steps: list[Any]) -> Any:
    """The selection that applies ``steps`` to a chunk in turn (None: none)."""
    if not steps:
        return None

    def chained(frame: pd.DataFrame) -> pd.DataFrame:
        for step in steps:
            frame = step(frame)
        return frame

    return chained


def _note_pseudonyms(
    ledger: Ledger, data_dir: Path, out_dir: Path, columns: dict[str, list[str]], private: bool
) -> None:
    """The manifest says where pseudonymised tables are and what each column got."""
    from tiktok_spiders import publish
    from tiktok_spiders.manifest import write_manifest

    note = publish.pseudonymized_note(out_dir, columns)
    ledger.set_meta("pseudonymized_tables", json.dumps(note))
    if (data_dir / "manifest.json").is_file():
        write_manifest(ledger, data_dir, private)

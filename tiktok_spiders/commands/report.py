"""``scrapy report``: the study at a glance, as one HTML file that opens offline (``report.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands import ScrapyCommand

from tiktok_spiders.commands import Named

if TYPE_CHECKING:
    import argparse


class Command(Named, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Write the study's report: one HTML file with its plots, readable offline"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--data-dir", help="the study's data directory (default TIKTOK_DATA_DIR)")
        parser.add_argument("--output", help="where the report goes (default <data dir>/report.html)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        import duckdb

        from tiktok_spiders.config import ConfigError, check_settings
        from tiktok_spiders.datadir import DataDirError, held_for_tables
        from tiktok_spiders.report import write_report  # matplotlib, pandas, DuckDB: imported only for a report
        from tiktok_spiders.staging import ctrl_c_stops

        assert self.settings is not None
        if self.refused(args):
            return
        data_dir = Path(opts.data_dir or self.settings["TIKTOK_DATA_DIR"])
        path = Path(opts.output) if opts.output else data_dir / "report.html"
        try:
            with self.one_line_errors(ConfigError, DataDirError):
                check_settings(self.settings)
                if not data_dir.is_dir():
                    raise ConfigError(f"data directory {data_dir} does not exist")
                with (
                    held_for_tables(data_dir, self.settings, say=lambda line: print(f"note: {line}", file=sys.stderr)),
                    ctrl_c_stops(),
                ):
                    write_report(data_dir, self.settings, path)
            if self.exitcode:
                return
        except KeyboardInterrupt:  # ctrl_c_stops: whatever DuckDB made of it
            print("interrupted: no report written", file=sys.stderr)
            self.exitcode = 1
            return
        except OSError as error:
            print(f"error: could not write {path}: {error}", file=sys.stderr)
            self.exitcode = 1
            return
        except (ValueError, KeyError, duckdb.Error) as error:  # a feed that cannot be read
            print(f"error: {error}", file=sys.stderr)
            self.exitcode = 2
            return
        print(f"{path}  (open it in any browser; it needs no network)")

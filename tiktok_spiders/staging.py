"""A study's feeds staged in DuckDB, joined there, written in chunks: ``tables`` at any size, and
the report's queries.

:func:`tables.study_tables` gives whole pandas frames, which is handy and needs
memory in proportion to the study (1.7 GB for 100,000 videos and a million comments).  Here every
feed is read :data:`CHUNK_ROWS` records at a time and typed by the same
:func:`tables.typed` (ids exact, a float id an error), staged in a DuckDB file
beside the output (JSON values as their text), deduplicated and joined by SQL
that DuckDB spills to disk beyond :data:`MEMORY_MB`, and written out again a
chunk at a time in feed order.  Peak memory depends on the chunk size, not on
the number of records.  The staging database lives in a directory of its own beside
the output, private like the tables (0700), and is removed however the run ends.

For Parquet and DuckDB, a column of lists or objects needs one type for the
whole file: the JSON columns are read once before writing and their types
unified (a column that mixes lists and objects, or whose values no one type can
hold, is written as JSON text, each value as sent).
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tiktok_spiders import tables
from tiktok_spiders.feeds import feed_format, read_records
from tiktok_spiders.files import atomic_path, atomic_write, make_dir
from tiktok_spiders.kinds import KINDS

#: Records per chunk, read, typed and written at a time (a few hundred MB for videos).
CHUNK_ROWS = 20_000
#: What DuckDB may hold (MB) before its joins, deduplication and sorts spill to disk
#: (``TIKTOK_TABLES_MEMORY_MB``).
MEMORY_MB = 1024
_SQL_TYPES = {"int": "BIGINT", "time": "TIMESTAMPTZ", "bool": "BOOLEAN"}
_ARROW_TO_PANDAS = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get

#: Where ``scrapy tables`` and ``scrapy report`` stage a study (in its data directory, by default):
#: a run that is killed leaves it behind, and the next run, or a refresh, removes it.
TABLES_STAGING, REPORT_STAGING = ".tables-staging", ".report-staging"
STAGING_NAMES = (TABLES_STAGING, REPORT_STAGING)

#: A function of one typed chunk: the rows and columns to keep (``--where``, ``--columns``).
Selection = Callable[[pd.DataFrame], pd.DataFrame]


@contextlib.contextmanager
def ctrl_c_stops() -> Iterator[None]:
    """Ctrl-C ends the block as KeyboardInterrupt, whatever DuckDB made of it.

    A KeyboardInterrupt raised while DuckDB works comes out of it as errors of its own (a
    RuntimeError "Query interrupted", an InvalidInputException "reading the schema"), which
    would be a traceback or a wrong message, or may be dropped by it; so Ctrl-C is remembered
    here, and the block ends as KeyboardInterrupt however it was interrupted.
    """
    if threading.current_thread() is not threading.main_thread():  # only it gets signals
        yield
        return
    pressed = False

    def on_ctrl_c(signum: int, frame: object) -> None:
        nonlocal pressed
        pressed = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    except BaseException as error:
        if pressed and not isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt from error
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def feed_chunks(paths: Iterable[Path], chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[Path, int, pd.DataFrame]]:
    """The records of feed files, ``chunk_rows`` at a time, as raw frames (``dtype=object``,
    CSV as text) to be typed, with their file and the row of the file each starts at: the
    streaming counterpart of :func:`tables.read_feed`."""
    for path in paths:

        def malformed(path: Path = path) -> None:
            raise ValueError(f"{path}: a line is not a JSON record")

        start = 0
        if feed_format(path) == "csv":
            for chunk in pd.read_csv(
                path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8", chunksize=chunk_rows
            ):
                yield path, start, chunk
                start += len(chunk)
            continue
        batch: list[dict[str, Any]] = []
        for record in read_records(path, malformed):
            batch.append(record)
            if len(batch) == chunk_rows:
                yield path, start, pd.DataFrame(batch, dtype=object)
                start += len(batch)
                batch = []
        if batch:
            yield path, start, pd.DataFrame(batch, dtype=object)


class StudyDatabase:
    """Feeds staged in a DuckDB file, each as a table of the same name with its rows' feed
    order in ``_row``; :meth:`sql` and :meth:`chunks` give a table (joined, unless not asked) back
    in chunks."""

    def __init__(
        self,
        directory: Path,
        private: bool = True,
        chunk_rows: int = CHUNK_ROWS,
        memory_mb: int = MEMORY_MB,
        progress: bool = False,
    ) -> None:
        #: Created for the staging database, its write-ahead log and what DuckDB spills to disk,
        #: private (0700) like the data: removed by :meth:`close`.
        self.directory = directory
        self.memory_mb = memory_mb
        self.chunk_rows = chunk_rows
        #: A progress bar for each feed read and each table written, on a terminal (minutes at 10M rows).
        self.progress = progress
        #: Per table, the columns its feeds held, in the order they first appeared.
        self.columns: dict[str, list[str]] = {}
        shutil.rmtree(directory, ignore_errors=True)  # left by a run that was killed
        directory.mkdir(parents=True, mode=0o700 if private else 0o777)
        try:
            self.connection = duckdb.connect(str(directory / "staging.duckdb"))
            self.connection.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
            self.connection.execute(f"SET temp_directory = '{directory / 'spill'}'")
            self.connection.execute("SET TimeZone = 'UTC'")  # days and times as the tables give them
        except BaseException:  # Ctrl-C included: no staging is left behind
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def close(self) -> None:
        try:
            self.connection.close()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def bar(self, description: str, unit: str, total: int | None = None) -> Any:
        from tqdm import tqdm

        # disable=None: on a terminal only, never into a redirected stderr
        disable = None if self.progress else True
        return tqdm(desc=description, unit=unit, total=total, unit_scale=True, leave=False, disable=disable)

    def __enter__(self) -> StudyDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, name: str, paths: list[Path], key: list[str] | None = None) -> None:
        """Stage the feeds ``paths`` as table ``name``, each record once by ``key`` (the first kept)."""
        staged = _quote(f"staged_{name}")
        seen: list[str] = []
        known: set[str] = set()
        rows = 0
        bar = self.bar(f"reading {name}", " records")
        for path, start, raw in feed_chunks(paths, self.chunk_rows):
            bar.update(len(raw))
            try:
                frame = tables.typed(raw)
            except tables.BadValue as bad:  # the feed's file, line and column, not pandas' words
                raise ValueError(tables.where_in(path, start + bad.row) + f": {bad}") from None
            new = [column for column in frame.columns if column not in seen]
            if not seen:
                columns = [*new, *(c for c in tables.columns_of(name) if c not in new)]
                definition = ", ".join(f"{_quote(c)} {_sql_type(c)}" for c in columns)
                self.connection.execute(f"CREATE TABLE {staged} (_row BIGINT, {definition})")
                known.update(columns)
            for column in new:
                if column not in known:
                    self.connection.execute(f"ALTER TABLE {staged} ADD COLUMN {_quote(column)} {_sql_type(column)}")
                    known.add(column)
            seen += new
            self._insert(staged, frame.assign(_row=range(rows, rows + len(frame))))
            rows += len(frame)
        bar.close()
        if not seen:  # an empty feed: the columns its kind has
            seen = list(tables.columns_of(name))
            definition = ", ".join(f"{_quote(c)} {_sql_type(c)}" for c in seen)
            self.connection.execute(f"CREATE TABLE {staged} (_row BIGINT{', ' if seen else ''}{definition})")
        self.columns[name] = seen
        fallback = ["id"] if "id" in seen else ["username"] if "username" in seen else []
        key = key or list(tables.FEED_KEYS.get(name, ())) or fallback
        if key and all(column in seen for column in key):
            first = f"SELECT min(_row) FROM {staged} GROUP BY {', '.join(map(_quote, key))}"
            where = f"WHERE _row IN ({first})"
        else:
            where = ""
        self.connection.execute(f"CREATE TABLE {_quote(name)} AS SELECT * FROM {staged} {where}")
        self.connection.execute(f"DROP TABLE {staged}")

    def _insert(self, table: str, frame: pd.DataFrame) -> None:
        prepared = frame.copy()
        for column in prepared.columns:
            if column == "_row":
                continue
            kind = tables.column_type(column)
            if kind == "json" or (kind is None and prepared[column].dtype == object):
                prepared[column] = [_as_text(value) for value in prepared[column]]
        incoming = pa.Table.from_pandas(prepared, preserve_index=False)
        self.connection.register("incoming", incoming)
        try:
            self.connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        finally:
            self.connection.unregister("incoming")

    def sql(
        self, name: str, joined: bool = True, tables: dict[str, list[str]] | None = None, with_row: bool = True
    ) -> str:
        """The query of a table, with each row's feed order in ``_row``: the feed, or
        (``joined``) with what the study knows of it, as :func:`tables.study_tables` joins them;
        ``tables``: the tables it may join and their columns (default: all staged), with ``with_row``
        false for a view of an output database (whose tables have no ``_row``)."""
        if not joined:
            return f"SELECT * FROM {_quote(name)}"
        staged = self.columns if tables is None else tables
        columns = staged[name]
        added: dict[str, str] = {}  # the joined columns, by name: their expressions
        joins: list[str] = []
        if name == "videos":
            added["url"] = _URL.format(username="t.username", id="t.id")
            if "users" in staged and "username" in columns:
                authors = [c for c in staged["users"] if c != "username"]
                added |= {f"author_{c}": f"u.{_quote(c)}" for c in authors}
                joins.append("LEFT JOIN users u ON t.username = u.username")
        if name == "replies" and "comments" in staged and "parent_comment_id" in columns:
            parent = [c for c in ("text", "display_name", "like_count", "create_time") if c in staged["comments"]]
            added |= {f"parent_{c}": f"p.{_quote(c)}" for c in parent}
            joins.append("LEFT JOIN comments p ON t.parent_comment_id = p.id")
        if name in ("comments", "replies") and "videos" in staged and "video_id" in columns:
            video = staged["videos"]
            if "username" in video:
                added["video_username"] = "v.username"
            added["video_url"] = _URL.format(username="v.username", id="v.id")
            if "create_time" in video:
                added["video_create_time"] = "v.create_time"
            joins.append("LEFT JOIN videos v ON t.video_id = v.id")
        # a table read back (--inputs) may hold joined columns already: made again, in their place, once
        select = [
            *(["t._row"] if with_row else []),
            *(f"{added.pop(c)} AS {_quote(c)}" if c in added else f"t.{_quote(c)}" for c in columns),
        ]
        select += [f"{expression} AS {_quote(column)}" for column, expression in added.items()]
        return f"SELECT {', '.join(select)} FROM {_quote(name)} t {' '.join(joins)}"

    def chunks(self, query: str) -> Iterator[pd.DataFrame]:
        """The rows of a :meth:`sql` query in feed order, typed, :attr:`chunk_rows` at a time
        (at least one frame, maybe empty)."""
        return self._chunks(f"SELECT * EXCLUDE (_row) FROM ({query}) ORDER BY _row")

    def _chunks(self, query: str) -> Iterator[pd.DataFrame]:
        reader = self.connection.sql(query).to_arrow_reader(self.chunk_rows)
        empty = True
        for batch in reader:
            if batch.num_rows or empty:
                yield tables.typed(batch.to_pandas(types_mapper=_ARROW_TO_PANDAS))
                empty = False
        if empty:
            yield tables.typed(reader.schema.empty_table().to_pandas(types_mapper=_ARROW_TO_PANDAS))

    def json_types(self, query: str) -> dict[str, pa.DataType | None]:
        """Per JSON column of a :meth:`sql` query, the one Arrow type that holds all its values,
        or None where none does (lists mixed with objects, clashing types): JSON text there."""
        json_columns = [c for c in self.connection.sql(query).columns if tables.column_type(c) == "json"]
        if not json_columns:
            return {}
        found: dict[str, pa.DataType] = {}
        text: set[str] = set()
        shapes: dict[str, set[bool]] = {column: set() for column in json_columns}
        for chunk in self._chunks(f"SELECT {', '.join(map(_quote, json_columns))} FROM ({query})"):
            for column in (c for c in json_columns if c not in text):
                values = list(chunk[column])
                shapes[column] |= {isinstance(value, list) for value in values if value is not None}
                try:
                    arrow = pa.array(values).type
                    found[column] = _unify(found[column], arrow) if column in found else arrow
                except (pa.ArrowException, ValueError):
                    text.add(column)
                if len(shapes[column]) > 1:
                    text.add(column)
        # a column with no value at all has no type to find: JSON text, a type still (never NULL)
        return {
            column: None if column in text or pa.types.is_null(found.get(column, pa.null())) else found[column]
            for column in json_columns
        }


_URL = (
    "CASE WHEN {username} <> '' AND {id} IS NOT NULL "
    "THEN 'https://www.tiktok.com/@' || {username} || '/video/' || CAST({id} AS VARCHAR) END"
)


def _sql_type(column: str) -> str:
    kind = tables.column_type(column)
    return _SQL_TYPES.get(kind or "", "VARCHAR")


def _as_text(value: Any) -> str | None:
    """A JSON value as its text (a string as itself), for a staging column."""
    if value is None or (not isinstance(value, list | dict | str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _unify(first: pa.DataType, second: pa.DataType) -> pa.DataType:
    schemas = [pa.schema([("value", first)]), pa.schema([("value", second)])]
    return pa.unify_schemas(schemas, promote_options="permissive").field("value").type


def _prepared(frame: pd.DataFrame, text_columns: Iterable[str]) -> pd.DataFrame:
    """A chunk as it is written: the JSON text columns as text."""
    return tables.as_json_text(frame, [c for c in text_columns if c in frame.columns])


def _schema(frame: pd.DataFrame, json_types: dict[str, pa.DataType | None]) -> pa.Schema:
    """The whole file's schema: a typed chunk's own for plain columns, the unified one for JSON."""
    # no rows: the types follow the dtypes alone, and pandas' metadata reads JSON columns back as objects
    probe = frame.head(0).astype({column: object for column in json_types if column in frame})
    plain = pa.Schema.from_pandas(probe, preserve_index=False)
    return pa.schema(
        [
            pa.field(field.name, json_types[field.name] or pa.large_string()) if field.name in json_types else field
            for field in plain
        ],
        metadata=plain.metadata,  # pandas' own: ids read back as Int64, not float
    )


def write_csv(chunks: Iterable[pd.DataFrame], path: Path, private: bool = True) -> tuple[int, int]:
    """The chunks as one CSV file (as :func:`tables.export` writes it), atomically; rows and columns written."""
    rows = columns = 0
    make_dir(path.parent, private)
    with atomic_path(path, private=private) as partial:
        for index, chunk in enumerate(chunks):
            json_columns = [column for column in chunk.columns if tables.column_type(column) == "json"]
            tables.as_json_text(chunk, json_columns).to_csv(
                partial, index=False, encoding="utf-8", mode="w" if index == 0 else "a", header=index == 0
            )
            rows, columns = rows + len(chunk), len(chunk.columns)
    return rows, columns


def write_parquet(
    chunks: Iterable[pd.DataFrame], json_types: dict[str, pa.DataType | None], path: Path, private: bool = True
) -> tuple[int, int]:
    """The chunks as one Parquet file with one schema, atomically; rows and columns written."""
    rows = columns = 0
    make_dir(path.parent, private)
    with atomic_path(path, private=private) as partial, contextlib.ExitStack() as stack:
        writer: pq.ParquetWriter | None = None
        text = [column for column, arrow in json_types.items() if arrow is None]
        for chunk in chunks:
            if writer is None:
                schema = _schema(chunk, json_types)
                writer = stack.enter_context(pq.ParquetWriter(partial, schema))
            writer.write_table(pa.Table.from_pandas(_prepared(chunk, text), schema=schema, preserve_index=False))
            rows, columns = rows + len(chunk), len(chunk.columns)
    return rows, columns


def _write_duckdb_table(
    database: duckdb.DuckDBPyConnection,
    name: str,
    chunks: Iterable[pd.DataFrame],
    json_types: dict[str, pa.DataType | None],
) -> int:
    """The chunks as table ``name`` of an output database (times in microseconds, as its clients read them)."""
    rows = 0
    text = [column for column, arrow in json_types.items() if arrow is None]
    for index, chunk in enumerate(chunks):
        if index == 0:
            schema = _schema(chunk, json_types)
            schema = pa.schema(
                [pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f for f in schema]
            )
        prepared = _prepared(chunk, text)
        for column in prepared.columns:
            if isinstance(prepared[column].dtype, pd.DatetimeTZDtype):
                prepared[column] = prepared[column].astype("datetime64[us, UTC]")
        database.register("incoming", pa.Table.from_pandas(prepared, schema=schema, preserve_index=False))
        try:
            verb = f"CREATE TABLE {_quote(name)} AS" if index == 0 else f"INSERT INTO {_quote(name)}"
            database.execute(f"{verb} SELECT * FROM incoming")
        finally:
            database.unregister("incoming")
        rows += len(chunk)
    return rows


#: The tables a joined table takes columns from.
NEEDS = {"videos": ("users",), "comments": ("videos",), "replies": ("comments", "videos")}

#: Views of a DuckDB study, each the table of that name as ``tables`` writes it joined (the same query:
#: the same columns as ``videos.parquet``, ``comments.parquet``, ``replies.parquet``).
DUCKDB_VIEWS = {"videos_with_authors": "videos", "comments_with_videos": "comments", "replies_with_comments": "replies"}


def stage_study(study: StudyDatabase, feeds: dict[str, Path], names: Iterable[str]) -> None:
    """Stage the feeds of the tables ``names`` and of the tables they are joined with."""
    wanted = set(names)
    wanted |= {need for name in wanted for need in NEEDS.get(name, ())}
    for name, path in feeds.items():
        if name in wanted:
            study.add(name, [path])


def _written(study: StudyDatabase, name: str, query: str, select: Selection | None) -> Iterator[pd.DataFrame]:
    """The chunks of a table as they are written: selected, and counted on the progress bar."""
    total = study.connection.execute(f"SELECT count(*) FROM {_quote(name)}").fetchall()[0][0]
    with study.bar(f"writing {name}", " rows", total) as bar:
        for chunk in study.chunks(query):
            bar.update(len(chunk))
            yield chunk if select is None else select(chunk)


def write_table(
    study: StudyDatabase, name: str, path: Path, fmt: str, select: Selection | None = None, private: bool = True
) -> tuple[int, int]:
    """One staged table, joined, as a CSV, Parquet or XLSX file; ``select`` picks from each chunk."""
    query = study.sql(name)
    chunks = _written(study, name, query, select)
    if fmt == "csv":
        return write_csv(chunks, path, private)
    if fmt == "parquet":
        return write_parquet(chunks, study.json_types(query), path, private)
    if fmt == "xlsx":
        return write_xlsx(chunks, path, name, private)
    raise ValueError(f"unknown table format {fmt!r} (use csv, parquet or xlsx)")


#: A worksheet's rows (its header one of them) and the characters a cell holds (Excel's limits).
SHEET_ROWS = 1_048_576
CELL_CHARS = 32_767
#: The columns written as text in a spreadsheet: every id, so that all 19 digits survive (a spreadsheet
#: keeps 15), and never read as a number when typed back.
ID_COLUMNS = frozenset(field for kind in KINDS.values() for field in kind.id_fields)


def write_xlsx(
    chunks: Iterable[pd.DataFrame], path: Path, name: str, private: bool = True, rows_per_sheet: int = SHEET_ROWS - 1
) -> tuple[int, int]:
    """The chunks as one workbook, atomically: ids as text, every string a string (never a formula,
    a link or a number), times as UTC dates, lists and objects as JSON text; more rows than a sheet
    holds go on to a next sheet (``videos``, ``videos (2)``, ...).  A text longer than a cell holds
    is an error naming it, never cut short."""
    import xlsxwriter

    rows = columns = 0
    make_dir(path.parent, private)
    with atomic_path(path, private=private) as partial:
        options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
        options["strings_to_numbers"] = False
        workbook = xlsxwriter.Workbook(str(partial), options)
        when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        try:

            def next_sheet(header: list[str], kinds: list[str | None]) -> Any:
                count = len(workbook.worksheets())
                sheet = workbook.add_worksheet(f"{name} ({count + 1})" if count else name)
                for column, title in enumerate(header):  # a time's header says its zone
                    sheet.write_string(0, column, f"{title} (UTC)" if kinds[column] == "time" else title)
                return sheet

            sheet, at = None, 0
            for chunk in chunks:
                header = list(chunk.columns)
                kinds = [tables.column_type(column) for column in header]
                columns = len(header)
                for record in chunk.itertuples(index=False):
                    if sheet is None or at > rows_per_sheet:
                        sheet, at = next_sheet(header, kinds), 1
                    for column, value in enumerate(record):
                        _cell(sheet, at, column, value, header[column], kinds[column], when, rows)
                    at += 1
                    rows += 1
                if sheet is None and header:  # an empty table: its header
                    sheet = next_sheet(header, kinds)
            if sheet is None:
                workbook.add_worksheet(name)
        finally:
            workbook.close()
    return rows, columns


def _cell(sheet: Any, row: int, column: int, value: Any, name: str, kind: str | None, when: Any, index: int) -> None:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return
    if kind == "int":
        if name in ID_COLUMNS or name.removeprefix("parent_").removeprefix("video_") in ID_COLUMNS:
            sheet.write_string(row, column, str(int(value)))
        else:
            sheet.write_number(row, column, int(value))
    elif kind == "time":
        sheet.write_datetime(row, column, value.tz_convert("UTC").tz_localize(None).to_pydatetime(), when)
    elif kind == "bool":
        sheet.write_boolean(row, column, bool(value))
    else:
        text = value if isinstance(value, str) else json.dumps(tables.plain(value), ensure_ascii=False)
        if len(text) > CELL_CHARS:
            raise ValueError(
                f"row {index + 1}, column {name}: {len(text):,} characters, more than a spreadsheet cell holds "
                f"({CELL_CHARS:,}): write this table as Parquet or CSV"
            )
        sheet.write_string(row, column, text)


def write_database(
    study: StudyDatabase, names: Iterable[str], path: Path, select: Selection | None = None, private: bool = True
) -> dict[str, int]:
    """Staged tables, unjoined, in one DuckDB database with the :data:`DUCKDB_VIEWS` it can hold;
    the rows of each table."""
    written: dict[str, int] = {}
    make_dir(path.parent, private)
    with atomic_path(path, private=private) as partial:
        partial.unlink(missing_ok=True)  # DuckDB makes its own file
        with duckdb.connect(str(partial)) as database:
            database.execute(f"SET memory_limit = '{int(study.memory_mb)}MB'")
            for name in names:
                query = study.sql(name, joined=False)
                chunks = _written(study, name, query, select)
                written[name] = _write_duckdb_table(database, name, chunks, study.json_types(query))
            held = {
                name: [row[0] for row in database.execute(f"DESCRIBE {_quote(name)}").fetchall()] for name in written
            }
            for view, table in DUCKDB_VIEWS.items():
                if table in written:  # joined with whatever else the database holds, as the table files are
                    database.execute(f"CREATE VIEW {_quote(view)} AS {study.sql(table, tables=held, with_row=False)}")
    return written


def database_tables(path: Path) -> list[str]:
    """The tables of a DuckDB database written by :func:`write_database`."""
    with duckdb.connect(str(path), read_only=True) as database:
        rows = database.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
    return [name for (name,) in rows]


TABLE_SUFFIXES = (".parquet", ".csv", ".duckdb", ".xlsx")


def write_tables(
    study: StudyDatabase,
    names: list[str],
    out_dir: Path,
    fmt: str,
    select: Selection | None = None,
    private: bool = True,
    output: Path | None = None,
) -> list[tuple[Path, str]]:
    """The tables ``names`` written into ``out_dir`` (or, one of them, to ``output``): the files,
    each with what it holds in words."""
    if fmt == "duckdb":
        path = output or out_dir / "study.duckdb"
        written = write_database(study, names, path, select, private)
        return [(path, f"{len(written)} tables: {', '.join(written)}")]
    files = []
    for name in names:
        path = output or out_dir / f"{name}.{fmt}"
        rows, columns = write_table(study, name, path, fmt, select, private)
        files.append((path, f"{rows:,} rows, {columns} columns"))
    return files


def describe_tables(
    study: StudyDatabase,
    files: list[tuple[Path, str]],
    out_dir: Path,
    manifest: dict[str, Any],
    private: bool,
    made_as: Selection | None = None,
    data_dir: Path | None = None,
) -> list[Path]:
    """What every column of the tables in ``out_dir`` means, beside them: ``codebook.md``, and
    ``datapackage.json`` (Frictionless Data Package v2) for the table files; the files written.
    ``made_as``: how the tables were made (pseudonyms: the package's queries get them too)."""
    from tiktok_spiders import publish
    from tiktok_spiders.codebook import markdown

    described = [out_dir / "codebook.md"]
    with atomic_write(described[0], private=private) as handle:
        handle.write(markdown())
    resources = {
        path.stem: (path, _columns_of(path))
        for path, _ in files
        if path.suffix in (".csv", ".parquet") and path.stem in study.columns
    }
    if resources:

        def holds(table: str, fields: list[str], other: str, other_fields: list[str]) -> bool:
            on = " AND ".join(f"o.{_quote(o)} = t.{_quote(f)}" for f, o in zip(fields, other_fields, strict=True))
            present = " AND ".join(f"t.{_quote(f)} IS NOT NULL" for f in fields)
            missing = study.connection.execute(
                f"SELECT count(*) FROM {_quote(table)} t WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {_quote(other)} o WHERE {on})"
            ).fetchall()[0][0]
            return missing == 0

        pseudonyms = made_as if isinstance(made_as, publish.Pseudonyms) else None
        title = publish.study_title(data_dir or out_dir.parent)
        package = publish.data_package(out_dir, resources, manifest, holds, title, pseudonyms)
        publish.write_json(out_dir / "datapackage.json", package, private)
        described.append(out_dir / "datapackage.json")
    return described


def _columns_of(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return pq.read_schema(path).names
    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), [])


def rewrite_tables(
    data_dir: Path, tables_dir: Path, private: bool, memory_mb: int, select: Selection | None = None
) -> tuple[list[Path], list[Path]]:
    """Every table in ``tables_dir`` written again from the study's feeds (after a purge), with
    ``select`` as they were made (pseudonyms, the ids alone): ``(rewritten, removed)``.  A table
    no feed of the study makes any more (its records all gone), or a file of study data the tool
    cannot remake there (a selection written with ``--output`` into it), is removed: it may hold
    what was purged."""
    written = sorted(p for p in tables_dir.glob("*.*") if p.suffix in TABLE_SUFFIXES)
    if not written:
        return [], []
    feeds = tables.study_feeds(data_dir)
    rewritten: list[Path] = []
    removed: list[Path] = []
    with StudyDatabase(data_dir / TABLES_STAGING, private=private, memory_mb=memory_mb) as study:
        stage_study(study, feeds, feeds)
        for path in written:
            if path.suffix == ".duckdb":
                names = [name for name in database_tables(path) if name in feeds]
                write_database(study, names, path, select, private=private)
            elif path.stem in feeds:
                write_table(study, path.stem, path, path.suffix[1:], select, private=private)
            else:
                path.unlink()
                removed.append(path)
                continue
            rewritten.append(path)
        if (tables_dir / "datapackage.json").exists():
            from tiktok_spiders.manifest import FILENAME

            manifest_path = data_dir / FILENAME
            manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
            describe_tables(study, [(p, "") for p in rewritten], tables_dir, manifest, private, select, data_dir)
    return rewritten, removed

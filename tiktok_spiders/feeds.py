"""Feeds: the files a study's records are written to, and read back from, in every format.

Each format is declared once in :data:`FORMATS` — the suffixes it is read from, and
how records are written to it (``jsonl`` and ``csv``; a JSON array is read only, as
Scrapy's ``-o x.json`` writes it); an unknown format is an error, never a silent CSV.

Writing: a feed is a view of the ledger, written to a temporary file that is then
renamed, so a reader never sees half a file; a feed unchanged since it was written
grows by the records stored after it (:func:`write_feed`), else it is written whole,
each record once.  JSON Lines are the ledger's own JSON text, copied; CSV rows are
what Scrapy's ``CsvItemExporter`` writes, with lists and objects as JSON text.

Reading: ``comments`` and ``users`` read the ``video_id``s or ``username``s of a
feed one record at a time, so a million-line feed never sits in memory.  Feeds may
be UTF-8 with or without a byte-order mark (as Excel saves CSV) and with CRLF line
ends; a file in another encoding is refused before the crawl.  Malformed lines are
skipped and counted, never fatal.  A spider that knows how much work a seed is
(comments: the video's ``comment_count``) gets the heaviest of the next
:data:`LOOKAHEAD` seeds first.
"""

from __future__ import annotations

import codecs
import csv
import heapq
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from tiktok_spiders.files import atomic_write, copy_into

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from tiktok_spiders.kinds import RecordKind
    from tiktok_spiders.ledger import Ledger

csv.field_size_limit(sys.maxsize)

#: Feeds are UTF-8; ``utf-8-sig`` also takes the byte-order mark Excel writes.
ENCODING = "utf-8-sig"


class SeedFileError(ValueError):
    """A feed that cannot be used at all (missing, unknown format, not UTF-8)."""


# -- writing ---------------------------------------------------------------------------------

#: Writes the records of a kind stored after a rowid to an open file: ``(how many, the last rowid)``.
Writer = Callable[["Ledger", "RecordKind", IO[str], int, bool], tuple[int, int]]


def csv_cell(value: Any) -> Any:
    """A CSV cell as ``CsvItemExporter`` writes it, but lists and objects as JSON text
    (Scrapy's default joins lists with commas, which cannot be read back)."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_jsonl(
    ledger: Ledger, kind: RecordKind, handle: IO[str], after: int = 0, header: bool = True
) -> tuple[int, int]:
    """The records stored after rowid ``after`` as JSON lines: ``(how many, the last rowid)``."""
    # The ledger holds each record as the JSON line Scrapy's JsonLinesItemExporter
    # would write (json.dumps of the item, fields in order, UTF-8): copy it, which is
    # six times faster than serialising every record again (bench/run.py).
    count = last = 0
    for last, line in ledger.record_rows(kind.feed, after):  # noqa: B007 - the last rowid is returned
        handle.write(line + "\n")
        count += 1
    return count, last


def write_csv(
    ledger: Ledger, kind: RecordKind, handle: IO[str], after: int = 0, header: bool = True
) -> tuple[int, int]:
    """The records stored after rowid ``after`` as CSV rows, under the header when ``header``."""
    # csv.writer set up as CsvItemExporter sets it up, fed rows directly: the exporter's
    # per-field machinery took 1.95 s against 0.26 s for 25,210 comments (cProfile of the
    # comments stage).  test_parsing checks that the bytes are the same.
    names = [field.name for field in fields(kind.item_class)]
    writer = csv.writer(handle)
    if header:
        writer.writerow(names)  # also for an empty table: it reads back with its columns
    count = last = 0
    for last, line in ledger.record_rows(kind.feed, after):  # noqa: B007
        record = json.loads(line)
        writer.writerow([csv_cell(record.get(name)) for name in names])
        count += 1
    return count, last


@dataclass(frozen=True)
class FeedFormat:
    name: str
    #: The file suffixes it is read from; the first is what it is written as.
    suffixes: tuple[str, ...]
    #: How records are written to it (None: read only).
    writer: Writer | None


#: Every feed format, by name.
FORMATS = {
    "jsonl": FeedFormat("jsonl", (".jsonl", ".jl"), write_jsonl),
    "csv": FeedFormat("csv", (".csv",), write_csv),
    "json": FeedFormat("json", (".json",), None),
}
WRITABLE = tuple(name for name, fmt in FORMATS.items() if fmt.writer is not None)


def feed_formats(settings: BaseSettings) -> list[str]:
    """``TIKTOK_FEED_FORMATS``, checked (a ``ValueError`` names an unknown one)."""
    formats = [fmt.strip().lower() for fmt in settings.getlist("TIKTOK_FEED_FORMATS") if fmt.strip()]
    unknown = [fmt for fmt in formats if fmt not in WRITABLE]
    if unknown:
        raise ValueError(f"TIKTOK_FEED_FORMATS: unknown format {unknown[0]!r} (use {', '.join(WRITABLE)})")
    return formats


def feed_path(data_dir: str | Path, kind: RecordKind, fmt: str) -> Path:
    return Path(data_dir) / f"{kind.feed}{FORMATS[fmt].suffixes[0]}"


class Written(NamedTuple):
    records: int  # in the feed
    new: int  # of which written now
    grown: bool  # whether the feed grew (else it was written whole)


def write_feed(ledger: Ledger, kind: RecordKind, path: Path, fmt: str, private: bool = True) -> Written:
    """Write every stored record of ``kind`` to ``path`` atomically.

    A feed this ledger wrote, unchanged since (its size and time as recorded) and with no
    record deleted since, grows by what is new: the old file is copied by the kernel into
    the new one and only the new records are written, so a close that stored N records
    costs about N, not the whole feed.  The result is the same bytes a full rewrite gives
    (a reader still never sees half a file; each record still appears once).
    """
    writer = FORMATS[fmt].writer
    if writer is None:
        raise ValueError(f"feeds are not written as {fmt}")
    state = ledger.feed_state(str(path))
    on_disk = path.stat() if state is not None and path.is_file() else None
    grows = (
        state is not None
        and on_disk is not None
        and state[0] == kind.feed
        and (state[3], state[4], state[5]) == (on_disk.st_size, on_disk.st_mtime_ns, ledger.deletions())
    )
    after, count = (state[1], state[2]) if grows and state is not None else (0, 0)
    with atomic_write(path, private=private) as handle:
        if grows:
            copy_into(path, handle)
        added, last = writer(ledger, kind, handle, after, not grows)
    stat = path.stat()
    ledger.feed_written(str(path), kind.feed, max(last, after), count + added, stat.st_size, stat.st_mtime_ns)
    return Written(count + added, added, grows)


def rewrite_feeds(ledger: Ledger, data_dir: Path, private: bool = True) -> list[Path]:
    """Every feed file of a data directory written again from the ledger (after a purge); the paths."""
    from tiktok_spiders.kinds import KINDS

    written = []
    for kind in KINDS.values():
        for fmt in WRITABLE:
            path = feed_path(data_dir, kind, fmt)
            if path.exists() or path.is_symlink():
                write_feed(ledger, kind, path, fmt, private)
                written.append(path)
    return written


# -- reading ---------------------------------------------------------------------------------


def feed_format(path: Path) -> str:
    suffix = path.suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt.name
    known = ", ".join(suffix for fmt in FORMATS.values() for suffix in fmt.suffixes)
    raise SeedFileError(f"{path}: unknown feed format (use {known})")


def check_feed(path: str | Path, column: str | None = None, argument: str = "videos") -> Path:
    """A seed file that can be read: it exists, is UTF-8 throughout, and (CSV) has the ``column``;
    ``argument`` names the spider argument that points at another file."""
    path = Path(path)
    fmt = feed_format(path)
    if not path.is_file():
        raise SeedFileError(
            f"seed file {path} does not exist (run the earlier stage first, or pass -a {argument}=PATH)"
        )
    decoder = codecs.getincrementaldecoder(ENCODING)()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):  # streamed: a million-line feed is not held
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise SeedFileError(
                    f"{path} is not UTF-8 (byte {offset + error.start}): save it as UTF-8 (in Excel: CSV UTF-8)"
                ) from None
            offset += len(chunk)
    if fmt == "csv" and column is not None:
        with path.open(encoding=ENCODING, newline="") as handle:
            header = next(csv.reader(handle), [])
        if column not in header:
            raise SeedFileError(f"{path} has no column {column!r} (its columns: {', '.join(header) or 'none'})")
    return path


def has_column(path: Path, column: str) -> bool:
    """Whether a feed's records carry ``column``: its CSV header, or its first JSON record's keys."""
    for record in read_records(path, lambda: None):
        return column in record
    return False


def read_records(path: Path, on_malformed: Callable[[], None]) -> Iterator[dict[str, Any]]:
    """Records of a feed, one at a time; ``on_malformed()`` is called for each bad line."""
    fmt = feed_format(path)
    with path.open(encoding=ENCODING, newline="" if fmt == "csv" else None) as handle:
        if fmt == "csv":
            yield from csv.DictReader(handle)
            return
        for line in handle:
            text = line.strip()
            if fmt == "json":
                text = text.strip("[]").rstrip(",").strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except ValueError:
                on_malformed()
                continue
            if isinstance(record, dict):
                yield record
            else:
                on_malformed()


#: How many seeds ahead the heaviest is looked for: a few hundred KB at most.
LOOKAHEAD = 1000


def read_values(
    path: Path,
    column: str,
    convert: Callable[[Any], Any],
    note: Callable[[str], None],
    optional: bool = False,
    passed_over: Callable[[dict[str, Any]], str | None] | None = None,
    weigh: Callable[[dict[str, Any]], float] | None = None,
    context: Callable[[dict[str, Any]], Any] | None = None,
) -> Iterator[Any]:
    """The ``column`` of every record, converted, but those ``passed_over`` names a reason for;
    records without a usable value are ``"malformed"``, unless the column is ``optional`` and
    simply empty.  Each record passed over is told to ``note`` with its reason.  With
    ``context``, each value comes as ``(value, context(record))``.

    In feed order, or with ``weigh`` the heaviest first among the next :data:`LOOKAHEAD`."""
    weighted = _weighted_values(path, column, convert, note, optional, passed_over, weigh, context)
    return heaviest_first(weighted, LOOKAHEAD) if weigh else (value for _, value in weighted)


def _weighted_values(
    path: Path,
    column: str,
    convert: Callable[[Any], Any],
    note: Callable[[str], None],
    optional: bool,
    passed_over: Callable[[dict[str, Any]], str | None] | None,
    weigh: Callable[[dict[str, Any]], float] | None,
    context: Callable[[dict[str, Any]], Any] | None = None,
) -> Iterator[tuple[float, Any]]:
    for record in read_records(path, lambda: note("malformed")):
        why = passed_over(record) if passed_over is not None else None
        if why is not None:
            note(why)
            continue
        raw = record.get(column)
        if optional and raw in (None, ""):
            continue
        value = convert(raw)
        if value is None:
            note("malformed")
        else:
            yield (weigh(record) if weigh else 0), (value if context is None else (value, context(record)))


def heaviest_first(weighted: Iterable[tuple[float, Any]], lookahead: int) -> Iterator[Any]:
    """The values, each the heaviest of the next ``lookahead`` not yet given (ties in stream order).

    A stage lasts at least as long as its longest chain of pages, one round trip
    each: a 10-page video started last runs alone at the end of the crawl.  Starting
    the longest chains first (longest-processing-time-first scheduling) lets the
    short ones fill the slots beside them, while the feed is still read as a stream.
    """
    heap: list[tuple[float, int, Any]] = []
    order = itertools.count()
    for weight, value in weighted:
        heapq.heappush(heap, (-weight, next(order), value))
        if len(heap) >= lookahead:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]

"""Streaming seeds out of a feed written by an earlier stage.

``comments`` and ``users`` read the ``video_id``s or ``username``s of a videos
feed one record at a time — JSON Lines, a JSON array written one record per line
(as Scrapy writes it) or CSV — so a million-line feed never sits in memory.
Feeds may be UTF-8 with or without a byte-order mark (as Excel saves CSV) and with
CRLF line ends; a file in another encoding is refused before the crawl.
Malformed lines are skipped and counted, never fatal.  A spider that knows how much
work a seed is (comments: the video's ``comment_count``) gets the heaviest of the
next :data:`LOOKAHEAD` seeds first.
"""

from __future__ import annotations

import codecs
import csv
import heapq
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

FORMATS = {".jsonl": "jsonl", ".jl": "jsonl", ".json": "json", ".csv": "csv"}

csv.field_size_limit(sys.maxsize)


class SeedFileError(ValueError):
    """A seed file that cannot be used at all (missing, unknown format)."""


def feed_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise SeedFileError(f"{path}: unknown feed format (use .jsonl, .json or .csv)") from None


#: Feeds are UTF-8; ``utf-8-sig`` also takes the byte-order mark Excel writes.
ENCODING = "utf-8-sig"


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
    on_malformed: Callable[[], None],
    optional: bool = False,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    weigh: Callable[[dict[str, Any]], float] | None = None,
    context: Callable[[dict[str, Any]], Any] | None = None,
) -> Iterator[Any]:
    """The ``column`` of every record (that ``keep`` keeps), converted; records without a
    usable value count as malformed, unless the column is ``optional`` and simply empty.
    With ``context``, each value comes as ``(value, context(record))``.

    In feed order, or with ``weigh`` the heaviest first among the next :data:`LOOKAHEAD`."""
    weighted = _weighted_values(path, column, convert, on_malformed, optional, keep, weigh, context)
    return heaviest_first(weighted, LOOKAHEAD) if weigh else (value for _, value in weighted)


def _weighted_values(
    path: Path,
    column: str,
    convert: Callable[[Any], Any],
    on_malformed: Callable[[], None],
    optional: bool,
    keep: Callable[[dict[str, Any]], bool] | None,
    weigh: Callable[[dict[str, Any]], float] | None,
    context: Callable[[dict[str, Any]], Any] | None = None,
) -> Iterator[tuple[float, Any]]:
    for record in read_records(path, on_malformed):
        if keep is not None and not keep(record):
            continue
        raw = record.get(column)
        if optional and raw in (None, ""):
            continue
        value = convert(raw)
        if value is None:
            on_malformed()
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

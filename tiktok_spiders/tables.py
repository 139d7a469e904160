"""Analysis-ready tables: feeds as pandas DataFrames with the right dtypes, joined.

This replaces the R step that glued JSON pages into tables::

    from tiktok_spiders import tables
    videos = tables.load("data/videos.jsonl")               # one feed, or many: load([...])
    study = tables.study_tables("data")                       # every feed of a study, joined
    tables.export(study["videos"], "videos.parquet")

Ids and counts are pandas' nullable ``Int64`` (whether or not the API left some
out) and never pass through floats: records are read as Python objects, never
through pandas' type inference, which turns a column of int64 ids with a gap
into float64 and rounds them.  ``create_time``, ``playlist_last_updated`` and
``collected_at`` are UTC datetimes; lists stay lists and objects dicts (also when
read from CSV); flags are booleans.

These functions hold whole tables in memory (1.7 GB for 100,000 videos and a million comments).
``scrapy tables`` writes tables of any size in bounded memory instead
(:mod:`tiktok_spiders.staging`), and ``scrapy tables --format duckdb`` gives
a database to query lazily, out of core, from Python or R.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from tiktok_spiders.feeds import feed_format, read_records
from tiktok_spiders.files import atomic_path, make_dir
from tiktok_spiders.kinds import KINDS

#: Fields that hold a time: unix seconds from the API, ISO 8601 text for ``collected_at``.
TIME_COLUMNS = ("create_time", "playlist_last_updated", "collected_at")
INT64_RANGE = (-(2**63), 2**63 - 1)


def _field_types() -> dict[str, str]:
    """``int``, ``time``, ``bool`` or ``json`` per field name, from the items' annotations."""
    types: dict[str, str] = {}
    for kind in KINDS.values():
        for field in fields(kind.item_class):
            annotation = str(field.type)
            if field.name in TIME_COLUMNS:
                types[field.name] = "time"
            elif annotation.startswith(("list", "dict")):
                types[field.name] = "json"
            elif annotation.startswith("bool"):
                types[field.name] = "bool"
            elif annotation.startswith("int"):
                types[field.name] = "int"
    return types


FIELD_TYPES = _field_types()
#: The feeds of a study, and the columns that identify a record in each.
FEED_KEYS = {kind.feed: list(kind.key_fields) for kind in KINDS.values()}
FEED_COLUMNS = {kind.feed: [field.name for field in fields(kind.item_class)] for kind in KINDS.values()}


def columns_of(feed: str) -> list[str]:
    """The columns of a feed, known even when it is empty."""
    return FEED_COLUMNS.get(feed, [])


def video_url(username: Any, video_id: Any) -> str | None:
    if not isinstance(username, str) or not username or pd.isna(video_id):
        return None
    return f"https://www.tiktok.com/@{username}/video/{int(video_id)}"


def column_type(column: str) -> str | None:
    """``int``, ``time``, ``bool``, ``json`` or None, also for joined ``author_*`` / ``video_*`` columns."""
    for prefix in ("", "author_", "video_", "parent_"):
        name = column.removeprefix(prefix)
        if name in FIELD_TYPES:
            return FIELD_TYPES[name]
    return None


def _missing(value: Any) -> bool:
    if isinstance(value, str):
        return value == ""
    if value is None or isinstance(value, list | dict) or hasattr(value, "__len__"):
        return value is None
    return bool(pd.isna(value))


def _plain_ints(values: list[Any]) -> list[int | None] | None:
    """The values when each is an int (not a bool) or None, as JSON gives whole numbers; else None."""
    return values if all(type(value) is int or value is None for value in values) else None


#: The end of an ISO 8601 time that says its offset from UTC (``Z``, ``+00:00``, ``-0500``).
TIME_LIKE = re.compile(r".*\d\d")  # a time has digits; "yesterday" is not one
UTC_OFFSET = re.compile(r"\d\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$", re.IGNORECASE)


def _check_offsets(column: str, texts: Iterable[str]) -> None:
    """A time written without its offset (a spreadsheet may drop it) could be any zone: an error,
    never a guess of UTC that is hours off."""
    for text in texts:
        if not TIME_LIKE.match(text.strip()):
            raise ValueError(f"column {column}: {text!r} is not a time (unix seconds, or ISO 8601 with its UTC offset)")
        if not UTC_OFFSET.search(text.strip()):
            raise ValueError(f"column {column}: time {text!r} does not say its UTC offset (write it with Z or +00:00)")


def _times(column: str, values: list[Any]) -> pd.Series:
    """Unix seconds (the API's) or ISO 8601 text with its UTC offset (our CSV tables) as UTC datetimes."""
    seconds = _plain_ints(values)
    if seconds is not None:  # the usual case, at C speed
        return pd.Series(pd.to_datetime(pd.array(seconds, dtype="Int64"), unit="s", utc=True)).astype(
            "datetime64[ns, UTC]"
        )
    texts = [value for value in values if isinstance(value, str) and value and not value.isdigit()]
    _check_offsets(column, dict.fromkeys(texts))  # each time once: a page's records share collected_at
    if len(texts) == sum(value is not None for value in values):  # all ISO text: at C speed too
        return pd.Series(pd.to_datetime(values, format="ISO8601", utc=True)).astype("datetime64[ns, UTC]")
    return pd.Series(
        [
            pd.NaT
            if _missing(value)
            else pd.Timestamp(int(value), unit="s", tz="UTC")
            if isinstance(value, int) or str(value).isdigit()
            else pd.Timestamp(value).tz_convert("UTC")
            for value in values
        ],
        dtype="datetime64[ns, UTC]",
    )


def plain(value: Any) -> Any:
    """Parquet gives lists back as arrays: make them lists again (also inside objects)."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, list):
        return [plain(element) for element in value]
    if isinstance(value, dict):
        return {key: plain(element) for key, element in value.items()}
    return value


def _exact_ints(column: str, values: list[Any]) -> pd.api.extensions.ExtensionArray:
    """Whole numbers as ``Int64``, exactly; a float (which may already be rounded) or a number
    outside int64 is an error, never a silently wrong value."""
    whole = _plain_ints(values)
    if whole is not None:  # the usual case: checked at once
        present = [value for value in whole if value is not None]
        if not present or (INT64_RANGE[0] <= min(present) and max(present) <= INT64_RANGE[1]):
            return pd.array(whole, dtype="Int64")
    numbers: list[int | None] = []
    for value in values:
        if _missing(value):
            numbers.append(None)
            continue
        if isinstance(value, float | bool) or not str(value).strip().lstrip("-").isdigit():
            raise ValueError(f"column {column}: {value!r} is not a whole number as the API sends it")
        number = int(value)
        if not INT64_RANGE[0] <= number <= INT64_RANGE[1]:
            raise ValueError(f"column {column}: {number} is outside int64, which no table can hold exactly")
        numbers.append(number)
    return pd.array(numbers, dtype="Int64")


class BadValue(ValueError):
    """A value a column cannot hold, at a row of the frame being typed (0-based): the caller
    says in which file and line."""

    def __init__(self, column: str, row: int, problem: str) -> None:
        super().__init__(f"column {column}: {problem}")
        self.column, self.row, self.problem = column, row, problem


def _truth(value: Any) -> bool | None:
    """A flag as sent (a bool) or as CSV writes it (``True``, ``false``); anything else is an error."""
    if _missing(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"{value!r} is not true or false")
    return text == "true"


def _json(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a JSON list or object") from None
    return plain(value)


def _typed_column(column: str, kind: str | None, values: list[Any], index: pd.Index) -> Any:
    if kind == "int":
        return _exact_ints(column, values)
    if kind == "time":
        return _times(column, values).set_axis(index)  # UTC-aware even when all empty
    if kind == "bool":
        return pd.array([_truth(value) for value in values], dtype="boolean")
    if kind == "json":
        return [_json(value) for value in values]
    return pd.Series(values, dtype="str", index=index)  # text, as read from CSV


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The documented dtypes, whatever the feed's format.  A value a column cannot hold is a
    :class:`BadValue` naming the column and the row."""
    frame = frame.copy()
    for column in frame.columns:
        dtype = frame[column].dtype
        kind = column_type(column)
        if (kind == "int" and dtype == "Int64") or (kind == "bool" and dtype == "boolean"):
            continue  # typed already (read back from Parquet or DuckDB)
        if kind == "time" and isinstance(dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
            continue
        if kind not in ("int", "time", "bool", "json") and not pd.api.types.is_object_dtype(dtype):
            continue  # text typed already (read back from Parquet or DuckDB): nothing to convert
        values = list(frame[column])
        if kind is None and not all(value is None or isinstance(value, str) for value in values):
            continue  # not text: kept as it is
        try:
            frame[column] = _typed_column(column, kind, values, frame.index)
        except (ValueError, TypeError, OverflowError) as error:  # typed one by one only now, to say where
            row, problem = _first_failure(column, kind, values) or (0, str(error))
            raise BadValue(column, row, problem.removeprefix(f"column {column}: ")) from None
    return frame


def _first_failure(column: str, kind: str | None, values: list[Any]) -> tuple[int, str] | None:
    """The row of the first value a column cannot hold, and why."""
    for row, value in enumerate(values):
        try:
            _typed_column(column, kind, [value], pd.RangeIndex(1))
        except (ValueError, TypeError, OverflowError) as error:
            return row, str(error)
    return None


def read_feed(path: str | Path) -> pd.DataFrame:
    """One feed file (JSON Lines, JSON or CSV, as the spiders write them), typed."""
    path = Path(path)
    if feed_format(path) == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    else:

        def malformed() -> None:
            raise ValueError(f"{path}: a line is not a JSON record")

        # dtype=object: pandas would infer float64 for an id column with a gap, and round the ids
        frame = pd.DataFrame(list(read_records(path, malformed)), dtype=object)
    try:
        return typed(frame)
    except BadValue as bad:
        raise ValueError(where_in(path, bad.row) + f": {bad}") from None


def where_in(path: Path, row: int) -> str:
    """``videos.csv, line 12``: where a feed's ``row`` (0-based, a record of the file) is."""
    header = 1 if feed_format(path) == "csv" else 0
    return f"{path}, line {row + 1 + header}"


def load(paths: str | Path | Iterable[str | Path], key: list[str] | None = None) -> pd.DataFrame:
    """One feed, or many feeds of the same kind combined, each record once.

    ``key`` names the columns that identify a record (default: from the feed's
    name, e.g. ``id`` for videos, ``seed_username`` + ``username`` for followers).
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(path) for path in paths]
    frames = [read_feed(path) for path in files]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if frame.empty and not len(frame.columns):
        frame = pd.DataFrame(columns=columns_of(files[0].stem))
    key = key or FEED_KEYS.get(files[0].stem) or [column for column in ("id", "username") if column in frame][:1]
    if key and all(column in frame for column in key) and len(frame):
        frame = frame.drop_duplicates(subset=key, keep="first", ignore_index=True)
    return frame


def with_urls(
    videos: pd.DataFrame, username: str = "username", video_id: str = "id", column: str = "url"
) -> pd.DataFrame:
    videos = videos.copy()
    videos[column] = [video_url(u, v) for u, v in zip(videos[username], videos[video_id], strict=True)]
    return videos


def _retyped(joined: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns a left join brought in, typed again (a missing row leaves NaN in a list or text column)."""
    joined[columns] = typed(joined[columns])
    return joined


def videos_with_authors(videos: pd.DataFrame, users: pd.DataFrame | None) -> pd.DataFrame:
    """Each video with its URL and its author's profile (``author_*`` columns)."""
    videos = with_urls(videos)
    if users is None or users.empty:
        return videos
    authors = users.rename(columns={column: f"author_{column}" for column in users.columns if column != "username"})
    joined = videos.merge(authors, how="left", on="username", validate="many_to_one")
    return _retyped(joined, list(authors.columns.drop("username")))


def comments_with_videos(comments: pd.DataFrame, videos: pd.DataFrame) -> pd.DataFrame:
    """Each comment with the URL, author and creation time of its video (``video_*`` columns)."""
    videos = with_urls(videos)[["id", "username", "url", "create_time"]].rename(
        columns={"id": "video_id", "username": "video_username", "url": "video_url", "create_time": "video_create_time"}
    )
    joined = comments.merge(videos, how="left", on="video_id", validate="many_to_one")
    return _retyped(joined, list(videos.columns.drop("video_id")))


def replies_with_parents(replies: pd.DataFrame, comments: pd.DataFrame | None) -> pd.DataFrame:
    """Each reply with the text, author name, likes and time of the comment it answers
    (``parent_*`` columns): the conversation, one row per reply."""
    if comments is None:
        return replies
    parents = comments[[c for c in ("id", "text", "display_name", "like_count", "create_time") if c in comments]]
    parents = parents.rename(columns={column: f"parent_{column}" for column in parents.columns})
    parents = parents.rename(columns={"parent_id": "parent_comment_id"})
    joined = replies.merge(parents, how="left", on="parent_comment_id", validate="many_to_one")
    return _retyped(joined, list(parents.columns.drop("parent_comment_id")))


def study_feeds(data_dir: Path) -> dict[str, Path]:
    """The feed file of each table a data directory holds (JSON Lines before CSV)."""
    found: dict[str, Path] = {}
    for feed in FEED_KEYS:
        for suffix in (".jsonl", ".csv"):
            if (data_dir / f"{feed}{suffix}").is_file():
                found[feed] = data_dir / f"{feed}{suffix}"
                break
    return found


def study_tables(data_dir: str | Path, joined: bool = True) -> dict[str, pd.DataFrame]:
    """Every feed of a data directory as a table; unless ``joined`` is false, videos with
    authors, comments and replies with their video, replies with the comment they answer.
    All in memory: for a study that does not fit, see the module's docstring."""
    found = {feed: load(path) for feed, path in study_feeds(Path(data_dir)).items()}
    if not joined:
        return found
    if "replies" in found:
        found["replies"] = replies_with_parents(found["replies"], found.get("comments"))
    if "videos" in found:
        for feed in ("comments", "replies"):
            if feed in found:
                found[feed] = comments_with_videos(found[feed], found["videos"])
        found["videos"] = videos_with_authors(found["videos"], found.get("users"))
    return found


def select(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The rows matching a ``--where`` expression (``where.py``: columns, comparisons, ``@has``)."""
    from tiktok_spiders.where import Where

    return frame[Where(where).mask(frame)]


def as_json_text(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The columns' lists and objects as JSON text (for CSV, and Parquet columns no one type holds)."""
    out = frame.copy()
    for column in columns:
        out[column] = [None if value is None else json.dumps(value, ensure_ascii=False) for value in out[column]]
    return out


def _mixed_shapes(values: Iterable[Any]) -> bool:
    """Whether a column holds both lists and objects (``video_tag`` may be either), which a
    Parquet column cannot: such a column is written as JSON text, each value as sent."""
    return len({isinstance(value, list) for value in values if value is not None}) > 1


def export(frame: pd.DataFrame, path: str | Path, fmt: str | None = None, private: bool = True) -> Path:
    """Write a table as CSV (lists and objects as JSON text, times ISO 8601) or Parquet
    (lists and objects as Parquet lists and structs, or JSON text where rows mix the two), atomically."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown table format {fmt!r} (use csv or parquet)")
    make_dir(path.parent, private)
    with atomic_path(path, private=private) as partial:
        json_columns = [column for column in frame.columns if column_type(column) == "json"]
        if fmt == "parquet":
            mixed = [column for column in json_columns if _mixed_shapes(frame[column])]
            as_json_text(frame, mixed).to_parquet(partial, index=False)
        else:
            as_json_text(frame, json_columns).to_csv(partial, index=False, encoding="utf-8")
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """A table written by :func:`export` read back with its dtypes."""
    path = Path(path)
    if path.suffix == ".parquet":
        return typed(pd.read_parquet(path))
    return read_feed(path)

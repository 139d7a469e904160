"""Every id and count in every table equals the feed, exactly, in every format.

The corpus is made for it: ids that need all 64 bits (above 2**53, where a float
would round them, up to the int64 maximum) and gaps (a record without a
``playlist_id``, a user missing from the users feed), so any float on any path
shows as a wrong number.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import scrapy_cli
from tiktok_spiders import tables

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

INT64_MAX = 2**63 - 1
RNG = random.Random(63)


def big_id() -> int:
    """An id a float64 cannot hold: between 2**53 and the int64 maximum, odd."""
    return RNG.randrange(2**53 + 1, INT64_MAX, 2)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("exact")
    users = [{"username": f"user{n}", "follower_count": big_id(), "likes_count": n} for n in range(5)]
    videos = []
    for n in range(40):
        video: dict[str, Any] = {
            "id": INT64_MAX - n if n < 3 else big_id(),
            "username": f"user{n % 7}",  # user5 and user6 are not in the users feed: a gap in every join
            "create_time": 1_704_067_200 + n,
            "view_count": big_id(),
            "like_count": n,
        }
        if n % 3:
            video["playlist_id"] = big_id()  # a sparse id column
        if n % 4:
            video["music_id"] = big_id()
        if n % 5 == 0:
            del video["like_count"]  # a sparse count
        videos.append(video)
    comments = [
        {"id": big_id(), "video_id": video["id"], "parent_comment_id": video["id"], "like_count": big_id()}
        for video in videos[:20]
    ]
    comments[0]["video_id"] = comments[0]["parent_comment_id"] = big_id()  # a comment whose video is not in the feed
    write_jsonl(data_dir / "videos.jsonl", videos)
    write_jsonl(data_dir / "users.jsonl", users)
    write_jsonl(data_dir / "comments.jsonl", comments)
    return data_dir


def feed_values(data_dir: Path, feed: str, column: str) -> list[int | None]:
    with (data_dir / f"{feed}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line).get(column) for line in handle]


def as_python(values: Any) -> list[int | None]:
    return [None if value is None or value is pd.NA else int(value) for value in values]


INT_COLUMNS = {
    "videos": ["id", "music_id", "playlist_id", "view_count", "like_count"],
    "comments": ["id", "video_id", "parent_comment_id", "like_count"],
    "users": ["follower_count", "likes_count"],
}


def test_pandas_tables_hold_every_id_and_count_exactly(feeds: Path) -> None:
    study = tables.study_tables(feeds)
    for feed, columns in INT_COLUMNS.items():
        for column in columns:
            frame = study[feed]
            assert str(frame[column].dtype) == "Int64", (feed, column)
            assert as_python(frame[column].astype(object)) == feed_values(feeds, feed, column), (feed, column)
    # joined columns: an author missing from the users feed is missing, the others exact
    users = (feeds / "users.jsonl").read_text(encoding="utf-8").splitlines()
    followers = {user["username"]: user["follower_count"] for user in map(json.loads, users)}
    videos = study["videos"]
    assert as_python(videos["author_follower_count"].astype(object)) == [followers.get(u) for u in videos["username"]]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_table_files_hold_every_id_and_count_exactly(feeds: Path, tmp_path: Path, fmt: str) -> None:
    done = scrapy_cli(tmp_path, {}, "tables", "--data-dir", str(feeds), "--format", fmt, "--output-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for feed, columns in INT_COLUMNS.items():
        path = tmp_path / f"{feed}.{fmt}"
        if fmt == "parquet":  # as R's arrow or any other reader sees it: the file's own int64 column
            table = pq.read_table(path)
            for column in columns:
                assert str(table.schema.field(column).type) == "int64", (feed, column)
                assert table.column(column).to_pylist() == feed_values(feeds, feed, column), (feed, column)
        else:  # as a spreadsheet or readr with ids as text sees it: the digits as the API sent them
            text = pd.read_csv(path, dtype=str, keep_default_na=False)
            for column in columns:
                expected = ["" if value is None else str(value) for value in feed_values(feeds, feed, column)]
                assert text[column].tolist() == expected, (feed, column)
        back = tables.read_table(path)  # and read back with pandas, typed
        for column in columns:
            assert as_python(back[column].astype(object)) == feed_values(feeds, feed, column), (feed, column)


def test_an_id_outside_int64_is_an_error_not_a_wrong_number(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "videos.jsonl", [{"id": INT64_MAX + 1, "username": "x"}])
    done = scrapy_cli(tmp_path, {}, "tables", "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert "outside int64" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "tables").exists()

"""Feeds: every format written and read through one table, the grow path, and what a reader passes over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scrapy.settings import Settings

from tiktok_spiders.feeds import (
    SeedFileError,
    check_feed,
    feed_formats,
    read_records,
    read_values,
    write_feed,
)
from tiktok_spiders.kinds import VIDEOS
from tiktok_spiders.ledger import Ledger


def store(ledger: Ledger, *ids: int) -> None:
    for number in ids:
        record = {"id": number, "username": f"user{number}", "hashtag_names": ["a", "b"], "region_code": "GB"}
        ledger.add_record(VIDEOS.feed, str(number), record)
    ledger.commit()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_feed_grows_by_what_is_new_into_the_bytes_a_whole_rewrite_gives(tmp_path: Path, fmt: str) -> None:
    ledger = Ledger(tmp_path / "data")
    feed, whole = tmp_path / f"videos.{fmt}", tmp_path / "whole" / f"videos.{fmt}"
    whole.parent.mkdir()
    store(ledger, 1, 2, 3)
    assert write_feed(ledger, VIDEOS, feed, fmt) == (3, 3, False)
    store(ledger, 4, 5)
    assert write_feed(ledger, VIDEOS, feed, fmt) == (5, 2, True)
    assert write_feed(ledger, VIDEOS, whole, fmt).grown is False
    assert feed.read_bytes() == whole.read_bytes()
    rows = list(read_records(feed, lambda: None))
    assert [str(row["id"]) for row in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0]["hashtag_names"] == (["a", "b"] if fmt == "jsonl" else '["a", "b"]'), "a list: JSON text in CSV"

    os.utime(feed, ns=(0, 0))  # saved again by someone else (a spreadsheet): its time changed
    assert write_feed(ledger, VIDEOS, feed, fmt).grown is False, "not as this tool wrote it: written whole"
    store(ledger, 6)
    ledger.forget("videos", (VIDEOS.feed,))  # records deleted since: what was written may hold them
    assert write_feed(ledger, VIDEOS, feed, fmt) == (0, 0, False)
    ledger.close()


def test_an_unknown_format_is_an_error_never_a_silent_csv(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "data")
    with pytest.raises(ValueError, match="not written as json"):
        write_feed(ledger, VIDEOS, tmp_path / "videos.json", "json")  # read only, as Scrapy's -o x.json
    with pytest.raises(KeyError):
        write_feed(ledger, VIDEOS, tmp_path / "videos.xml", "xml")
    ledger.close()
    with pytest.raises(ValueError, match="unknown format 'parquet'"):
        feed_formats(Settings({"TIKTOK_FEED_FORMATS": "jsonl, parquet"}))
    assert feed_formats(Settings({"TIKTOK_FEED_FORMATS": "JSONL, csv"})) == ["jsonl", "csv"]
    (tmp_path / "videos.txt").write_text("id\n1\n")
    with pytest.raises(SeedFileError, match="unknown feed format"):
        check_feed(tmp_path / "videos.txt")


def test_a_feed_is_read_as_excel_and_scrapy_save_it_and_refused_in_another_encoding(tmp_path: Path) -> None:
    excel = tmp_path / "videos.csv"
    excel.write_bytes("\ufeffid,username\r\n7,zoë\r\n".encode())
    assert check_feed(excel, "id") == excel
    assert list(read_records(excel, lambda: None)) == [{"id": "7", "username": "zoë"}]
    scrapy_json = tmp_path / "videos.json"
    scrapy_json.write_text('[\n{"id": 7},\n{"id": 8}\n]\n', encoding="utf-8")
    assert [row["id"] for row in read_records(scrapy_json, lambda: None)] == [7, 8]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,username\n7,zo\xeb\n".encode("latin-1"))
    with pytest.raises(SeedFileError, match=r"not UTF-8 \(byte 16\)"):
        check_feed(latin, "id")
    with pytest.raises(SeedFileError, match="has no column 'video_id'"):
        check_feed(excel, "video_id")
    with pytest.raises(SeedFileError, match="does not exist"):
        check_feed(tmp_path / "missing.jsonl")


def test_values_are_read_once_each_reason_to_pass_one_over_told_the_heaviest_first(tmp_path: Path) -> None:
    feed = tmp_path / "videos.jsonl"
    lines = [
        '{"id": 1, "comment_count": 5}',
        "not json",
        '{"id": "x", "comment_count": 9}',
        '{"id": 2, "comment_count": 0}',
        '["a list"]',
        '{"id": 3, "comment_count": 50}',
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    told: list[str] = []

    def below_one(record: dict) -> str | None:
        return "below_minimum" if record.get("comment_count") == 0 else None

    def as_id(value: object) -> int | None:
        return value if isinstance(value, int) else None

    values = list(read_values(feed, "id", as_id, told.append, passed_over=below_one))
    assert values == [1, 3] and sorted(told) == ["below_minimum", "malformed", "malformed", "malformed"]
    heaviest = list(read_values(feed, "id", as_id, lambda _: None, weigh=lambda record: record["comment_count"]))
    assert heaviest == [3, 1, 2]

"""Tables: feeds read back with the documented dtypes, joined, exported as CSV and Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import STUDY_ARGS, cli_env, crawl, read_jsonl, scrapy_cli, settings_for
from tiktok_spiders import tables
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.users import UsersSpider
from tiktok_spiders.spiders.videos import VideosSpider


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tables")


@deferred_f_from_coro_f
async def test_collect_a_study_to_tabulate(emulator: Emulator, study_dir: Path) -> None:
    settings = settings_for(emulator, study_dir)
    for spidercls, arguments in ((VideosSpider, STUDY_ARGS), (CommentsSpider, {}), (UsersSpider, {})):
        crawler = await crawl(spidercls, settings, **arguments)
        assert crawler.stats.get_value("finish_reason") == "finished"


def test_feeds_load_with_the_documented_dtypes_from_any_format(study_dir: Path) -> None:
    records = read_jsonl(study_dir / "videos.jsonl")
    for path in (study_dir / "videos.jsonl", study_dir / "videos.csv"):
        frame = tables.load(path)
        assert frame["id"].dtype == "int64" and frame["id"].tolist() == [r["id"] for r in records]
        assert frame["music_id"].tolist() == [r["music_id"] for r in records]
        assert frame["playlist_id"].dtype == "Int64"  # sparse: nullable, never float
        assert str(frame["create_time"].dtype) == "datetime64[ns, UTC]"
        assert frame["create_time"].iloc[0] == pd.Timestamp(records[0]["create_time"], unit="s", tz="UTC")
        assert frame["hashtag_names"].tolist() == [r["hashtag_names"] for r in records]
        assert frame["video_label"].iloc[0] == records[0]["video_label"]
        assert frame["is_stem_verified"].dtype == "boolean"


def test_many_feed_files_combine_each_record_once(study_dir: Path, tmp_path: Path) -> None:
    records = read_jsonl(study_dir / "videos.jsonl")
    half = tmp_path / "videos.jsonl"
    half.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[: len(records) // 2]))
    combined = tables.load([half, study_dir / "videos.csv"])
    assert sorted(combined["id"]) == sorted(r["id"] for r in records)


def test_study_tables_join_videos_authors_and_comments(study_dir: Path) -> None:
    study = tables.study_tables(study_dir)
    videos, comments = study["videos"], study["comments"]
    users = {row["username"]: row for row in read_jsonl(study_dir / "users.jsonl")}
    row = videos[videos["username"].isin(list(users))].iloc[0]
    assert row["url"] == f"https://www.tiktok.com/@{row['username']}/video/{row['id']}"
    assert row["author_follower_count"] == users[row["username"]]["follower_count"]
    assert videos["author_follower_count"].dtype == "Int64"  # unavailable authors: missing, not float
    assert len(comments) == len(read_jsonl(study_dir / "comments.jsonl"))
    first = comments.iloc[0]
    video = videos[videos["id"] == first["video_id"]].iloc[0]
    assert first["video_url"] == video["url"] and first["video_username"] == video["username"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_round_trip(study_dir: Path, tmp_path: Path, fmt: str) -> None:
    study = tables.study_tables(study_dir)
    for name in ("videos", "comments", "users_unavailable"):
        frame = study[name]
        back = tables.read_table(tables.export(frame, tmp_path / f"{name}.{fmt}"))
        if fmt == "csv":  # CSV cannot tell an empty string from a missing one
            frame = frame.assign(**{c: frame[c].fillna("") for c in frame.columns if frame[c].dtype == "str"})
        pd.testing.assert_frame_equal(back, frame)


def test_the_tables_command_selects_seeds_for_the_next_stage(
    emulator: Emulator, study_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "popular.csv"
    done = scrapy_cli(
        tmp_path,
        cli_env(emulator, study_dir),
        "tables",
        "videos",
        "--where",
        "view_count > 50",
        "--columns",
        "id,username",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    popular = pd.read_csv(out, dtype={"id": "int64"})
    expected = [r["id"] for r in read_jsonl(study_dir / "videos.jsonl") if r.get("view_count", 0) > 50]
    assert popular["id"].tolist() == expected and list(popular.columns) == ["id", "username"]
    seeded = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "next"), "crawl", "comments", "-a", f"videos={out}")
    assert seeded.returncode == 0
    assert {row["video_id"] for row in read_jsonl(tmp_path / "next" / "comments.jsonl")} <= set(expected)


def test_the_tables_command_writes_every_table(emulator: Emulator, study_dir: Path, tmp_path: Path) -> None:
    done = scrapy_cli(tmp_path, cli_env(emulator, study_dir), "tables", "--output-dir", str(tmp_path / "t"))
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "t").iterdir()} == {
        "videos.parquet",
        "comments.parquet",
        "users.parquet",
        "users_unavailable.parquet",
    }
    bad = scrapy_cli(tmp_path, cli_env(emulator, study_dir), "tables", "videos", "--where", "no_such_column > 1")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr

"""Tables: feeds read back with the documented dtypes, joined, exported as CSV and Parquet."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import STUDY_ARGS, cli_env, read_jsonl, scrapy_cli, spider_args
from tiktok_spiders import codebook, staging, tables
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.kinds import KINDS

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> Path:
    """A study to tabulate: videos, comments (capped at 100 a video: 6,334, enough to join), users."""
    study_dir = tmp_path_factory.mktemp("tables")
    env = cli_env(emulator, study_dir, TIKTOK_COMMENT_CAP="100", TIKTOK_DAILY_REQUEST_LIMIT="100000")
    for command in (("crawl", "videos", *spider_args(STUDY_ARGS)), ("crawl", "comments"), ("crawl", "users")):
        done = scrapy_cli(study_dir, env, *command)
        assert done.returncode == 0, done.stderr[-2000:]
    return study_dir


def test_feeds_load_with_the_documented_dtypes_from_any_format(study_dir: Path) -> None:
    records = read_jsonl(study_dir / "videos.jsonl")
    for path in (study_dir / "videos.jsonl", study_dir / "videos.csv"):
        frame = tables.load(path)
        assert frame["id"].dtype == "Int64" and frame["id"].tolist() == [r["id"] for r in records]
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


def test_tables_written_a_few_rows_at_a_time_are_the_tables_of_whole_frames(study_dir: Path, tmp_path: Path) -> None:
    study = tables.study_tables(study_dir)
    chunk = 149
    assert len(study["videos"]) > chunk and len(study["comments"]) > chunk, "every big table in several chunks"
    staged_in = tmp_path / "staging"
    with staging.StudyDatabase(staged_in, chunk_rows=chunk) as staged:
        staging.stage_study(staged, tables.study_feeds(study_dir), list(study))
        assert {path.stat().st_mode & 0o777 for path in (staged_in, *staged_in.iterdir()) if path.is_dir()} == {0o700}
        for name, frame in study.items():
            for fmt in ("csv", "parquet"):
                chunked, whole = tmp_path / f"{name}.{fmt}", tmp_path / "whole" / f"{name}.{fmt}"
                assert staging.write_table(staged, name, chunked, fmt) == frame.shape, name
                expected = tables.read_table(tables.export(frame, whole))
                pd.testing.assert_frame_equal(tables.read_table(chunked), expected)
                if fmt == "csv":
                    assert chunked.read_bytes() == whole.read_bytes(), name
    assert not list(tmp_path.glob("staging*")), "the staging database outlives the run"

    records = read_jsonl(study_dir / "videos.jsonl")
    half = tmp_path / "half.jsonl"
    half.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[1::2]), encoding="utf-8")
    with staging.StudyDatabase(staged_in, chunk_rows=chunk) as staged:
        staged.add("videos", [half, study_dir / "videos.csv"])
        combined = pd.concat(list(staged.chunks(staged.sql("videos", joined=False))))
    assert combined["id"].tolist() == [r["id"] for r in records[1::2]] + [r["id"] for r in records[::2]]

    # a table read back as a feed (--inputs): its url is made again in its place, not added twice
    with staging.StudyDatabase(staged_in, chunk_rows=chunk) as staged:
        staged.add("videos", [tmp_path / "videos.csv"])
        again = pd.concat(list(staged.chunks(staged.sql("videos"))), ignore_index=True)
    pd.testing.assert_frame_equal(again, tables.read_table(tmp_path / "videos.csv"))


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
        "codebook.md",
        "datapackage.json",
    }
    assert (tmp_path / "t" / "codebook.md").read_text(encoding="utf-8") == codebook.markdown()
    bad = scrapy_cli(tmp_path, cli_env(emulator, study_dir), "tables", "videos", "--where", "no_such_column > 1")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_a_selection_never_replaces_the_tables_and_every_error_comes_first(
    emulator: Emulator, study_dir: Path, tmp_path: Path
) -> None:
    env = cli_env(emulator, study_dir)
    out = tmp_path / "t"
    assert scrapy_cli(tmp_path, env, "tables", "--output-dir", str(out)).returncode == 0
    full = {path.name: path.read_bytes() for path in out.iterdir()}
    videos = read_jsonl(study_dir / "videos.jsonl")

    def tables_cli(*args: str):
        return scrapy_cli(tmp_path, env, "tables", "--output-dir", str(out), *args)

    for args, message in (
        (("videos", "comments", "--where", "like_count > 5"), "add --output FILE"),
        (("videos", "--where", "no_such_column > 1", "--output", str(tmp_path / "x.csv")), "no_such_column"),
        (("videos", "--where", "view_count >", "--output", str(tmp_path / "x.csv")), "--where"),
        (("videos", "--columns", "id,nope", "--output", str(tmp_path / "x.csv")), "no column 'nope'"),
        (("videos", "--where", "view_count > 1", "--output", str(tmp_path / "x.txt")), "end it in .csv"),
        (
            (
                "videos",
                "--where",
                f"@pd.io.common.os.system('id > {tmp_path / 'ran'}') == 0",
                "--output",
                str(tmp_path / "x.csv"),
            ),
            "the only one allowed is @has",
        ),
    ):
        bad = tables_cli(*args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert bad.stderr.startswith("error: ") and message in bad.stderr, bad.stderr
        assert {path.name: path.read_bytes() for path in out.iterdir()} == full
        assert not (tmp_path / "x.csv").exists()
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "ran").exists(), "the expression ran a command"

    since = tables_cli("videos", "--where", "create_time >= '2024-02-01'", "--output", str(tmp_path / "feb.csv"))
    assert since.returncode == 0, since.stderr
    cutoff = int(pd.Timestamp("2024-02-01", tz="UTC").timestamp())
    expected = [video["id"] for video in videos if video["create_time"] >= cutoff]
    assert 0 < len(expected) < len(videos)
    assert pd.read_csv(tmp_path / "feb.csv", dtype={"id": "int64"})["id"].tolist() == expected

    tagged = tables_cli("videos", "--where", "@has(hashtag_names, 'climate')", "--output", str(tmp_path / "c.parquet"))
    assert tagged.returncode == 0, tagged.stderr
    expected = [video["id"] for video in videos if "climate" in video["hashtag_names"]]
    assert 0 < len(expected) < len(videos)
    assert tables.read_table(tmp_path / "c.parquet")["id"].tolist() == expected


def test_the_codebook_covers_every_column_and_is_the_one_in_docs() -> None:
    for feed, item_class in codebook.feeds():
        for field in fields(item_class):
            source, meaning = codebook.meaning(feed, field.name)  # KeyError: a column without an entry
            assert source in (codebook.API, codebook.PROJECT) and meaning
    assert codebook.meaning("videos", "collected_at")[0] == codebook.PROJECT
    assert codebook.meaning("users", "username")[0] == codebook.PROJECT
    docs = Path(__file__).resolve().parent.parent / "docs" / "codebook.md"
    assert docs.read_text(encoding="utf-8") == codebook.markdown(), "run: python -m tiktok_spiders.codebook"


def test_the_duckdb_views_are_the_tables_column_for_column_all_typed_all_in_the_codebook(
    emulator: Emulator, study_dir: Path, tmp_path: Path
) -> None:
    import duckdb
    import pyarrow.parquet as pq

    out = tmp_path / "t"
    env = cli_env(emulator, study_dir)
    for fmt in ("parquet", "duckdb"):
        assert scrapy_cli(tmp_path, env, "tables", "--format", fmt, "--output-dir", str(out)).returncode == 0
    with duckdb.connect(str(out / "study.duckdb"), read_only=True) as database:
        described = {
            name: database.execute(f'DESCRIBE "{name}"').fetchall()
            for (name,) in database.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert {"videos_with_authors", "comments_with_videos"} <= set(described), "the views of videos and comments"
    for view, table in staging.DUCKDB_VIEWS.items():
        if view in described:
            schema = pq.read_schema(out / f"{table}.parquet")
            assert [row[0] for row in described[view]] == schema.names, f"{view} is not {table}.parquet"
    for name, columns in described.items():
        table = staging.DUCKDB_VIEWS.get(name, name)
        for column, sql_type, *_ in columns:
            assert sql_type != "NULL", f"{name}.{column} has no type"
            assert codebook.documents(table, column), f"the codebook does not say what {name}.{column} is"
    for path in out.glob("*.parquet"):
        for field in pq.read_schema(path):
            assert str(field.type) != "null", f"{path.name}: {field.name} has no type"
            assert codebook.documents(path.stem, field.name), (
                f"the codebook does not say what {path.stem}.{field.name} is"
            )


def test_every_csv_read_with_the_readmes_recipe_holds_every_id_exactly(
    emulator: Emulator, study_dir: Path, tmp_path: Path
) -> None:
    """The README's pandas recipe, run as written, on every CSV table and feed."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    recipe = readme.split("```python\nimport pandas as pd")[1].split("videos = pd.read_csv")[0]
    namespace: dict = {}
    exec("import pandas as pd" + recipe, namespace)  # noqa: S102 - the README's own lines
    ids = namespace["IDS"]
    assert set(ids) == {field for kind in KINDS.values() for field in kind.id_fields}, "every id column named"
    out = tmp_path / "t"
    assert (
        scrapy_cli(
            tmp_path, cli_env(emulator, study_dir), "tables", "--format", "csv", "--output-dir", str(out)
        ).returncode
        == 0
    )
    files = [*out.glob("*.csv"), *study_dir.glob("*.csv")]
    assert {path.stem for path in files} >= {"videos", "comments", "users"}
    for path in files:
        frame = namespace["pd"].read_csv(path, dtype=ids)
        feed = read_jsonl(study_dir / f"{path.stem}.jsonl")
        for column in (c for c in ids if c in frame.columns):
            assert frame[column].dtype == "Int64", (path, column)
            read = [None if value is pd.NA else int(value) for value in frame[column]]
            assert read == [record.get(column) for record in feed], f"{path.name}: {column} is not what the API sent"

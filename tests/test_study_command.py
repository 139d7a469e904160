"""``scrapy study``: every stage of a study file in order, resumable, one summary."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import STUDY_DATES, STUDY_QUERY, cli_env, read_jsonl, request_log, scrapy_cli
from tiktok_spiders import api
from tiktok_spiders.emulator import Emulator

STUDY = """
[study]
stages = ["videos", "comments", "users", "followers", "playlists"]
data_dir = "{data_dir}"

[videos]
hashtags = ["climate", "vote", "fyp", "news", "music"]
regions = ["US", "GB", "DE"]
start_date = "2024-01-01"
end_date = "2024-03-30"
window_days = 30
"""


def write_study(tmp_path: Path) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(data_dir=tmp_path / "data"))
    return path


def test_a_study_file_runs_every_stage_and_an_interrupted_study_resumes(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    corpus = fresh_emulator.corpus
    fresh_emulator.faults.daily_requests = 300  # runs out during the comments stage
    env = cli_env(fresh_emulator, tmp_path / "ignored")  # the study file's data_dir wins
    first = scrapy_cli(tmp_path, env, "study", str(write_study(tmp_path)))
    assert first.returncode == 1
    assert re.search(r"^videos +finished", first.stdout, re.M)
    assert re.search(r"^comments +stopped \(exit 1\)", first.stdout, re.M)
    assert "The study is incomplete: run the same command again to continue." in first.stdout

    fresh_emulator.advance_days(1)
    fresh_emulator.faults.daily_requests = 100_000
    before = len(request_log(fresh_emulator))
    second = scrapy_cli(tmp_path, env, "study", str(write_study(tmp_path)))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "== videos: finished in an earlier run, skipped" in second.stdout
    assert not [e for e in request_log(fresh_emulator)[before:] if e["path"] == api.VIDEO_QUERY_PATH]
    for stage in ("videos", "comments", "users", "followers", "playlists"):
        assert any(line.startswith(stage) for line in second.stdout.splitlines()), stage

    data = tmp_path / "data"
    videos = corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert sorted(row["id"] for row in read_jsonl(data / "videos.jsonl")) == sorted(v["id"] for v in videos)
    comments = corpus.expected_comments(v["id"] for v in videos)
    assert sorted(row["id"] for row in read_jsonl(data / "comments.jsonl")) == sorted(c["id"] for c in comments)
    available, _ = corpus.expected_users({corpus.real_username(v) for v in videos})
    followers, _ = corpus.expected_user_lists("followers", available)
    assert len(read_jsonl(data / "followers.jsonl")) == sum(map(len, followers.values()))
    assert not (tmp_path / "ignored").exists()


def test_bad_study_files_get_one_line(emulator: Emulator, tmp_path: Path) -> None:
    cases = {
        'stages = ["videos", "cats"]': "unknown stage 'cats'",
        "stages = []": "needs stages",
        "stages = [": "not valid TOML",
    }
    for body, message in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(f"[study]\n{body}\n")
        done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "data"), "study", str(path))
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "data"), "study", str(tmp_path / "none.toml"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    path = tmp_path / "bad.toml"
    path.write_text(
        '[study]\nstages = ["videos"]\n[videos]\nhashtags = "x"\nstart_date = "2024-02-01"\nend_date = "2024-01-01"\n'
    )
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "data"), "study", str(path))
    assert done.returncode == 2 and "end_date 2024-01-01 is before start_date 2024-02-01" in done.stderr
    assert not (tmp_path / "data").exists()

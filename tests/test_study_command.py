"""``scrapy study``: every stage of a study file in order, resumable, one summary."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    MONTH_DATES,
    STUDY_QUERY,
    assert_one_line_error,
    cli_env,
    read_jsonl,
    request_log,
    scrapy_cli,
    scrapy_env,
)
from tiktok_spiders import api
from tiktok_spiders.emulator import Emulator

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

STUDY = """
[study]
stages = ["videos", "comments", "users", "followers", "playlists"]
data_dir = "{data_dir}"

[videos]
hashtags = ["climate", "vote", "fyp", "news", "music"]
regions = ["US", "GB", "DE"]
start_date = "2024-01-01"
end_date = "2024-01-30"
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
    fresh_emulator.faults.daily_requests = 100  # runs out during the comments stage (150 requests)
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
    asked = [entry["path"] for entry in request_log(fresh_emulator)[before:]]
    assert api.VIDEO_QUERY_PATH not in asked
    assert asked.count(api.TOKEN_PATH) == 1  # four stages ran, one token
    for stage in ("videos", "comments", "users", "followers", "playlists"):
        assert any(line.startswith(stage) for line in second.stdout.splitlines()), stage

    data = tmp_path / "data"
    videos = corpus.expected_videos(STUDY_QUERY, *MONTH_DATES)
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


def test_ctrl_c_stops_the_running_stage_and_the_same_command_finishes_the_study(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    fresh_emulator.faults.latency = 0.1  # the comments stage takes seconds: Ctrl-C lands inside it
    study = tmp_path / "study.toml"
    study.write_text(STUDY.replace('"users", "followers", "playlists"', '"users"').format(data_dir=tmp_path / "data"))
    env = scrapy_env(cli_env(fresh_emulator, tmp_path / "ignored"))
    with (
        (tmp_path / "stderr").open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "scrapy.cmdline", "study", str(study)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        said = []
        for line in process.stdout:
            said.append(line)
            if line.startswith("== comments"):
                break
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        said.append(process.communicate(timeout=60)[0])
    out = "".join(said)
    assert process.returncode == 1
    assert re.search(r"^comments +stopped \(exit 1\)", out, re.M)
    assert re.search(r"^users +not run", out, re.M)
    assert "Traceback" not in (tmp_path / "stderr").read_text()

    again = scrapy_cli(tmp_path, cli_env(fresh_emulator, tmp_path / "ignored"), "study", str(study))
    assert again.returncode == 0, again.stderr[-3000:]
    pages = [
        (entry["body"]["video_id"], entry["body"]["cursor"])
        for entry in request_log(fresh_emulator)
        if entry["path"] == api.COMMENT_LIST_PATH and entry["status"] == 200
    ]
    assert len(pages) == len(set(pages)), "a stored comments page was asked again"
    videos = read_jsonl(tmp_path / "data" / "videos.jsonl")
    comments = fresh_emulator.corpus.expected_comments(video["id"] for video in videos)
    assert sorted(row["id"] for row in read_jsonl(tmp_path / "data" / "comments.jsonl")) == sorted(
        comment["id"] for comment in comments
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[study]\nstages = ["videos"]\ndatadir = "x"\n', "unknown key 'datadir' in [study] (did you mean data_dir?"),
        (
            '[study]\nstages = ["videos"]\n[videos]\nhashtag = "climate"\n',
            "unknown argument 'hashtag' for spider videos (did you mean hashtags?",
        ),
        (
            '[study]\nstages = ["comments"]\n[comments]\nmin_coments = 2\n',
            "unknown argument 'min_coments' for spider comments (did you mean min_comments?",
        ),
    ],
)
def test_a_misspelled_key_of_a_study_file_is_exit_2_and_spends_nothing(
    fresh_emulator: Emulator, tmp_path: Path, text: str, said: str
) -> None:
    study = tmp_path / "study.toml"
    study.write_text(text, encoding="utf-8")
    done = scrapy_cli(tmp_path, cli_env(fresh_emulator, tmp_path / "data"), "study", str(study))
    assert_one_line_error(done, said)
    assert fresh_emulator.usage().requests == 0 and not (tmp_path / "data").exists()


#: Two queries of different sizes and shapes: stages and filters as researchers write them.
PLANNED_STUDIES = {
    "climate": '[study]\nstages = ["videos", "comments", "replies", "users"]\n'
    '[videos]\nhashtags = ["climate", "vote"]\nstart_date = "2024-01-01"\nend_date = "2024-01-30"\n'
    "[replies]\nmin_replies = 2\n",
    "fyp": '[study]\nstages = ["videos", "comments", "users"]\n[videos]\nhashtags = ["fyp"]\nregions = ["US", "GB"]\n'
    'start_date = "2024-02-01"\nend_date = "2024-04-15"\nwindow_days = 10\n[comments]\nmin_comments = 1\n',
}


@pytest.mark.parametrize("name", sorted(PLANNED_STUDIES))
def test_a_plan_before_the_first_request_is_within_a_factor_of_two(
    fresh_emulator: Emulator, tmp_path: Path, name: str
) -> None:
    import json

    study = tmp_path / "study.toml"
    study.write_text(PLANNED_STUDIES[name], encoding="utf-8")
    env = cli_env(fresh_emulator, tmp_path / "data", TIKTOK_DAILY_REQUEST_LIMIT="100000")
    done = scrapy_cli(tmp_path, env, "study", str(study), "--plan", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    plan = json.loads(done.stdout.strip().splitlines()[-1])
    assert plan["pilot_requests"] > 0 and [s["stage"] for s in plan["stages"]] == json.loads(
        PLANNED_STUDIES[name].split("stages = ")[1].split("\n")[0]
    )
    assert all(s["requests"] is not None and s["low"] <= s["requests"] for s in plan["stages"])
    pilot = sum(1 for entry in request_log(fresh_emulator) if entry["path"] != api.TOKEN_PATH)
    assert pilot == plan["pilot_requests"] <= 12, "the pilot spends a few requests"
    again = scrapy_cli(tmp_path, env, "study", str(study), "--plan")
    assert again.returncode == 0 and "Pilot:" not in again.stdout, "a study begun needs no pilot"
    done = scrapy_cli(tmp_path, env, "study", str(study))
    assert done.returncode == 0, done.stderr[-2000:]
    spent = sum(1 for entry in request_log(fresh_emulator) if entry["path"] != api.TOKEN_PATH)
    assert 0.5 <= spent / (plan["requests"] + plan["pilot_requests"]) <= 2, (spent, plan)
    videos = [entry for entry in request_log(fresh_emulator) if entry["path"] == api.VIDEO_QUERY_PATH]
    asked = [(e["body"]["start_date"], e["body"].get("cursor", 0)) for e in videos if e["status"] == 200]
    assert len(asked) == len(set(asked)), "no page the pilot fetched is fetched again"

"""Refresh: what TikTok no longer serves leaves the study everywhere, exactly, whatever happens."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import cli_env, crawl, read_jsonl, request_log, scrapy_cli, scrapy_env, settings_for
from tiktok_spiders import api
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.ledger import FILENAME, Ledger
from tiktok_spiders.refreshes import Refreshes
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.refresh import MAX_TASK_ATTEMPTS, RefreshSpider
from tiktok_spiders.spiders.replies import RepliesSpider
from tiktok_spiders.spiders.users import UsersSpider
from tiktok_spiders.spiders.videos import VideosSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

#: 86 videos, 3,551 comments, 81 authors: a refresh of about 100 requests.
SMALL_STUDY = {"hashtags": "climate,vote,fyp", "start_date": "2024-01-01", "end_date": "2024-01-10"}
#: Replies of the comments with two or more: 161 requests, not the 641 of every replied comment.
MIN_REPLIES = 2
FAST_POLLS = {"TIKTOK_COMPLIANCE_POLL_SECONDS": 0.01}


def env_for(emulator: Emulator, data_dir: Path, **extra: str) -> dict[str, str]:
    """The command line's environment, with polls as fast and a quota as large as settings_for's."""
    fast = {"TIKTOK_DAILY_REQUEST_LIMIT": "100000", "TIKTOK_COMPLIANCE_POLL_SECONDS": "0.01"}
    return cli_env(emulator, data_dir, **{**fast, **extra})


async def collect(emulator: Emulator, data_dir: Path) -> None:
    settings = settings_for(emulator, data_dir)
    for spider, arguments in (
        (VideosSpider, SMALL_STUDY),
        (CommentsSpider, {}),
        (RepliesSpider, {"min_replies": MIN_REPLIES}),
        (UsersSpider, {}),
    ):
        crawler = await crawl(spider, settings, **arguments)
        assert crawler.stats.get_value("finish_reason") == "finished"
    assert scrapy_cli(data_dir, env_for(emulator, data_dir), "tables").returncode == 0
    assert scrapy_cli(data_dir, env_for(emulator, data_dir), "tables", "--format", "duckdb").returncode == 0


async def collect_then_delete(emulator: Emulator, data_dir: Path) -> tuple[dict[str, list[dict]], dict[str, list]]:
    """A study collected, then part of it deleted in the sandbox: ``(records before, deleted)``."""
    emulator.faults.daily_requests = 100_000
    await collect(emulator, data_dir)
    before = {kind: read_jsonl(data_dir / f"{kind}.jsonl") for kind in ("videos", "comments", "replies", "users")}
    return before, delete_some(emulator, data_dir)


def delete_some(emulator: Emulator, data_dir: Path) -> dict[str, list]:
    """Delete a user, videos (one with many comments), and comments with replies, in the sandbox."""
    videos = read_jsonl(data_dir / "videos.jsonl")
    comments = read_jsonl(data_dir / "comments.jsonl")
    users = {user["username"] for user in read_jsonl(data_dir / "users.jsonl")}
    busiest = max(videos, key=lambda video: video["comment_count"] or 0)
    author = next(v["username"] for v in videos if v["username"] in users and v["id"] != busiest["id"])
    texts = Counter(c["text"] for kind in ("comments", "replies") for c in read_jsonl(data_dir / f"{kind}.jsonl"))
    # comments whose replies were collected, one of a kind in their text first (the byte check looks for it)
    replied = sorted(
        (c for c in comments if c["reply_count"] >= MIN_REPLIES and c["video_id"] != busiest["id"]),
        key=lambda c: (texts[c["text"]] != 1, c["id"]),
    )[:3]
    deleted = {"videos": [busiest["id"], videos[-1]["id"]], "comments": [c["id"] for c in replied], "users": [author]}
    emulator.corpus.delete(**deleted)
    return deleted


def still_there(emulator: Emulator, before: list[dict], kind: str) -> list:
    corpus = emulator.corpus
    if kind == "videos":
        return [v["id"] for v in before if corpus.video_valid(v["id"])]
    if kind == "users":
        return [u["username"] for u in before if corpus.unavailable_reason(u["username"]) is None]
    return [c["id"] for c in before if corpus.comment_valid(c["id"])]


def key_of(kind: str) -> str:
    return "username" if kind == "users" else "id"


def assert_exactly_what_is_left(emulator: Emulator, data_dir: Path, before: dict[str, list[dict]]) -> None:
    for kind, records in before.items():
        expected = still_there(emulator, records, kind)
        assert len(expected) < len(records) or kind == "replies", f"the test deleted no {kind}"
        for fmt in ("jsonl", "csv"):
            frame = pd.read_csv(data_dir / f"{kind}.csv", dtype=str) if fmt == "csv" else None
            got = (
                [r[key_of(kind)] for r in read_jsonl(data_dir / f"{kind}.jsonl")]
                if fmt == "jsonl"
                else [int(v) if kind != "users" else v for v in frame[key_of(kind)]]
            )
            assert sorted(got) == sorted(expected), (kind, fmt)
        table = pd.read_parquet(data_dir / "tables" / f"{kind}.parquet")
        assert sorted(table[key_of(kind)]) == sorted(expected), f"the {kind} table"
        # DuckDB compresses what it stores, so a byte search could miss a leftover: ask it
        with duckdb.connect(str(data_dir / "tables" / "study.duckdb"), read_only=True) as database:
            stored = database.execute(f'SELECT "{key_of(kind)}" FROM "{kind}"').fetchall()  # noqa: S608
        assert sorted(key for (key,) in stored) == sorted(expected), f"the {kind} table of study.duckdb"


@deferred_f_from_coro_f
async def test_a_refresh_leaves_exactly_what_is_still_available_and_nothing_of_the_rest(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    before, deleted = await collect_then_delete(fresh_emulator, tmp_path)
    texts = Counter(c["text"] for kind in ("comments", "replies") for c in before[kind])
    secret = next(c["text"] for c in before["comments"] if c["id"] == deleted["comments"][0])
    assert texts[secret] == 1
    assert {r["parent_comment_id"] for r in before["replies"]} & set(deleted["comments"]), "replies to purge"

    for killed in (tmp_path / ".tables-staging", tmp_path / ".report-staging"):  # what `kill -9` of a
        killed.mkdir()  # tables or report run leaves behind: the study's data
        (killed / "staging.duckdb").write_text(secret, encoding="utf-8")

    # a popular video gone takes a quarter of the comments: more than the brake lets through unconfirmed
    start = len(request_log(fresh_emulator))
    held = scrapy_cli(tmp_path, env_for(fresh_emulator, tmp_path), "refresh")
    assert held.returncode == 1, held.stderr[-3000:]
    # a profile with a video the compliance API just called valid is public: no request of its own
    served = set(still_there(fresh_emulator, before["videos"], "videos"))
    proven = {v["username"] for v in before["videos"] if v["id"] in served}
    asked = [e["body"]["username"] for e in request_log(fresh_emulator)[start:] if e["path"] == api.USER_INFO_PATH]
    assert sorted(asked) == sorted(u["username"] for u in before["users"] if u["username"] not in proven)
    assert 0 < len(asked) < len(before["users"]) / 4, "most profiles need no request"
    checks = re.search(r"checks: (\d+) done, 0 failed, 0 begun, 0 not started \((\d+) done and 0 failed", held.stderr)
    assert checks and checks[1] == checks[2], "every check was done by this run, those without a request too"
    assert "more than TIKTOK_REFRESH_MAX_PURGE_SHARE=0.2, so nothing was purged" in held.stderr
    assert "refresh -a confirm_purge=true" in held.stderr and "Traceback" not in held.stderr
    assert read_jsonl(tmp_path / "comments.jsonl") == before["comments"], "held: nothing purged"
    done = scrapy_cli(tmp_path, env_for(fresh_emulator, tmp_path), "refresh", "-a", "confirm_purge=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Summary of refresh: complete." in done.stderr and "Traceback" not in done.stderr
    after = re.search(r"checks: (\d+) done, 0 failed", done.stderr)
    assert after and after[1] == checks[1], "the purge does not take the gone accounts' checks out of the count"

    assert_exactly_what_is_left(fresh_emulator, tmp_path, before)
    # what depends on the deleted goes with it: the replies of a deleted comment, a deleted user's videos
    replies = {reply["parent_comment_id"] for reply in read_jsonl(tmp_path / "replies.jsonl")}
    assert not replies & set(deleted["comments"])
    assert not {v["username"] for v in read_jsonl(tmp_path / "videos.jsonl")} & set(deleted["users"])
    # purged means gone: from every file of the data directory, the ledger's included
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"{path} still holds a purged comment's text"

    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    [refresh] = manifest["refreshes"]
    assert refresh["finished"] and refresh["checked"] == {
        "videos": len(before["videos"]),
        "comments": len({c["id"] for kind in ("comments", "replies") for c in before[kind]}),
        "users": len(before["users"]),
    }
    assert refresh["purged"]["videos"] == len(before["videos"]) - len(
        still_there(fresh_emulator, before["videos"], "videos")
    )
    assert refresh["purged"]["users"] == 1
    ledger = Ledger(tmp_path)
    leftovers = [
        ledger.connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
        for table in ("gone", "compliance_tasks", "refresh_users")
    ]
    assert leftovers == [0, 0, 0], "a finished refresh keeps counts, not ids"
    ledger.close()

    creates = [e for e in request_log(fresh_emulator) if e["path"] == api.COMPLIANCE_CREATE_PATH]
    assert Counter(e["body"]["category"] for e in creates) == {"video": 1, "comment": 1}
    assert scrapy_cli(tmp_path, env_for(fresh_emulator, tmp_path), "crawl", "comments").returncode == 0
    assert "refresh" not in scrapy_cli(tmp_path, env_for(fresh_emulator, tmp_path), "tables").stderr


def test_kill_9_while_polling_then_the_rerun_polls_the_same_tasks(fresh_emulator: Emulator, tmp_path: Path) -> None:
    env = env_for(fresh_emulator, tmp_path, TIKTOK_COMPLIANCE_POLL_SECONDS="0.05")
    for stage in ("videos", "comments"):
        arguments = [part for k, v in SMALL_STUDY.items() for part in ("-a", f"{k}={v}")] if stage == "videos" else []
        assert scrapy_cli(tmp_path, env, "crawl", stage, *arguments).returncode == 0
    before = {kind: read_jsonl(tmp_path / f"{kind}.jsonl") for kind in ("videos", "comments")}
    fresh_emulator.corpus.delete(videos=[before["videos"][0]["id"]], comments=[before["comments"][3]["id"]])
    fresh_emulator.faults.compliance_polls = 10**6  # the tasks stay Processing
    start = len(request_log(fresh_emulator))
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapy.cmdline", "refresh"],
        cwd=tmp_path,
        env=scrapy_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def polls() -> int:
        return sum(1 for e in request_log(fresh_emulator)[start:] if e["path"] == api.COMPLIANCE_STATUS_PATH)

    deadline = time.monotonic() + 60
    while polls() < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert polls() >= 4, "killed while polling"

    fresh_emulator.faults.compliance_polls = 1
    done = scrapy_cli(tmp_path, env, "refresh")
    assert done.returncode == 0, done.stderr[-3000:]
    creates = [e for e in request_log(fresh_emulator)[start:] if e["path"] == api.COMPLIANCE_CREATE_PATH]
    assert Counter(e["body"]["category"] for e in creates) == {"video": 1, "comment": 1}, "no second task"
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "videos.jsonl")) == sorted(
        still_there(fresh_emulator, before["videos"], "videos")
    )
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "comments.jsonl")) == sorted(
        still_there(fresh_emulator, before["comments"], "comments")
    )


@deferred_f_from_coro_f
async def test_failed_tasks_are_created_again_a_bounded_number_of_times(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    settings = settings_for(fresh_emulator, tmp_path, **FAST_POLLS)
    await crawl(VideosSpider, settings, **SMALL_STUDY)
    before = read_jsonl(tmp_path / "videos.jsonl")
    fresh_emulator.corpus.delete(videos=[before[0]["id"]])
    fresh_emulator.faults.compliance_failed_rate = 1.0
    crawler = await crawl(RefreshSpider, settings)
    assert crawler.stats.get_value("finish_reason") == "incomplete"
    assert crawler.stats.get_value("tiktok/refresh/tasks_lost") == MAX_TASK_ATTEMPTS
    ledger = Ledger(tmp_path)
    [(_, reason)] = ledger.failed_seeds("refresh")
    ledger.close()
    assert reason == f"compliance task failed by the API; lost {MAX_TASK_ATTEMPTS} times, created again next run"
    assert len(read_jsonl(tmp_path / "videos.jsonl")) == len(before), "nothing purged on a failed check"

    fresh_emulator.faults.compliance_failed_rate = 0.0
    crawler = await crawl(RefreshSpider, settings)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert [v["id"] for v in read_jsonl(tmp_path / "videos.jsonl")] == [v["id"] for v in before[1:]]


@deferred_f_from_coro_f
async def test_server_errors_on_every_endpoint_and_a_quota_stop_end_exact(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    before, _ = await collect_then_delete(fresh_emulator, tmp_path)
    fresh_emulator.advance_days(1)
    fresh_emulator.faults.internal_error_rate = 0.1
    fresh_emulator.faults.outage_requests = 2  # at least two 500s on each endpoint
    fresh_emulator.faults.daily_requests = 6  # the refresh needs several days (most profiles need no request)
    settings = settings_for(fresh_emulator, tmp_path, TIKTOK_RETRY_TIMES=10, **FAST_POLLS)
    reasons = []
    for _ in range(20):
        crawler = await crawl(RefreshSpider, settings, confirm_purge="true")
        reasons.append(crawler.stats.get_value("finish_reason"))
        assert crawler.stats.get_value("tiktok/write_failed") is None
        if reasons[-1] == "finished":
            break
        fresh_emulator.advance_days(1)
    assert len(reasons) > 2 and reasons[-1] == "finished" and "daily_quota_exhausted" in reasons
    log = [e for e in request_log(fresh_emulator) if e["path"].startswith("/v2/research/validation_task")]
    assert {e["path"] for e in log if e["status"] == 500} == {
        api.COMPLIANCE_CREATE_PATH,
        api.COMPLIANCE_STATUS_PATH,
        api.COMPLIANCE_DOWNLOAD_PATH,
    }, "server errors on all three endpoints"
    assert sum(1 for e in log if e["status"] == 500) >= 6
    created = [e for e in log if e["path"] == api.COMPLIANCE_CREATE_PATH and e["status"] == 200]
    assert Counter(e["body"]["category"] for e in created) == {"video": 1, "comment": 1}, "no task paid twice"
    assert_exactly_what_is_left(fresh_emulator, tmp_path, before)


def test_a_study_due_for_refresh_is_said_once_by_crawl_study_and_tables(emulator: Emulator, tmp_path: Path) -> None:
    env = env_for(emulator, tmp_path)
    video_ids = ",".join(str(v["id"]) for v in emulator.corpus.videos[:3])
    assert scrapy_cli(tmp_path, env, "crawl", "comments", "-a", f"video_ids={video_ids}").returncode == 0
    ledger = Ledger(tmp_path)
    refreshes = Refreshes(ledger)
    assert refreshes.due(15) is None
    ledger.connection.execute("UPDATE runs SET run = json_set(run, '$.first_page_at', '2026-01-02T00:00:00Z')")
    ledger.commit()
    ledger.close()
    study = tmp_path / "study.toml"
    study.write_text(f'[study]\nstages = ["comments"]\n[comments]\nvideo_ids = "{video_ids}"\n')
    for command in (("crawl", "comments", "-a", f"video_ids={video_ids}"), ("study", str(study)), ("tables",)):
        done = scrapy_cli(tmp_path, env, *command)
        assert done.returncode == 0
        lines = [line for line in done.stderr.splitlines() if "TIKTOK_REFRESH_DAYS=15" in line]
        assert len(lines) == 1 and "never refreshed" in lines[0] and "scrapy refresh" in lines[0], done.stderr
    done = scrapy_cli(tmp_path, {**env, "TIKTOK_REFRESH_DAYS": "1000"}, "tables")
    assert "TIKTOK_REFRESH_DAYS" not in done.stderr
    assert scrapy_cli(tmp_path, env, "refresh").returncode == 0
    assert "TIKTOK_REFRESH_DAYS" not in scrapy_cli(tmp_path, env, "tables").stderr
    with sqlite3.connect(tmp_path / FILENAME) as db:
        assert db.execute("SELECT COUNT(*) FROM refreshes WHERE finished IS NOT NULL").fetchone()[0] == 1


# -- answers that cannot be right: never a purge --------------------------------------------------


async def collect_videos_and_comments(emulator: Emulator, data_dir: Path) -> dict[str, list[dict]]:
    settings = settings_for(emulator, data_dir)
    for spider, arguments in ((VideosSpider, SMALL_STUDY), (CommentsSpider, {})):
        crawler = await crawl(spider, settings, **arguments)
        assert crawler.stats.get_value("finish_reason") == "finished"
    return {kind: read_jsonl(data_dir / f"{kind}.jsonl") for kind in ("videos", "comments")}


def quiet_videos(videos: list[dict], count: int) -> list[int]:
    """Videos with a few comments: their purge stays under the brake."""
    return [v["id"] for v in videos if 0 < (v["comment_count"] or 0) < 30][:count]


@pytest.mark.parametrize(
    ("download", "said"),
    [
        ("empty", "would purge 86 of 86 videos (100%)"),
        ("half", "more than TIKTOK_REFRESH_MAX_PURGE_SHARE=0.2, so nothing was purged"),
        ("foreign", "names 3 ids that were not submitted"),
        ("truncated", "nothing purged"),
        ("json", "(no file of valid ids): nothing purged"),
        ("json-as-text", "holds something other than ids: nothing purged"),
    ],
)
@deferred_f_from_coro_f
async def test_a_compliance_file_that_cannot_be_right_purges_nothing(
    fresh_emulator: Emulator, tmp_path: Path, download: str, said: str
) -> None:
    before = await collect_videos_and_comments(fresh_emulator, tmp_path)
    fresh_emulator.corpus.delete(videos=quiet_videos(before["videos"], 2))
    fresh_emulator.faults.compliance_download = download
    env = env_for(fresh_emulator, tmp_path)
    done = scrapy_cli(tmp_path, env, "refresh")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert said in done.stderr, done.stderr[-3000:]
    assert "complete." not in done.stderr
    for kind in ("videos", "comments"):
        assert read_jsonl(tmp_path / f"{kind}.jsonl") == before[kind], f"{kind}: nothing purged on a bad answer"

    fresh_emulator.faults.compliance_download = ""
    again = scrapy_cli(tmp_path, env, "refresh")
    if download in ("empty", "half"):  # the answers were read and held: only checking again helps
        assert again.returncode == 1 and "confirm_purge" in again.stderr
        again = scrapy_cli(tmp_path, env, "refresh", "-a", "fresh=true")
    assert again.returncode == 0, again.stderr[-3000:]
    for kind in ("videos", "comments"):
        left = sorted(r["id"] for r in read_jsonl(tmp_path / f"{kind}.jsonl"))
        assert left == sorted(still_there(fresh_emulator, before[kind], kind)), kind
    assert len(left) < len(before["comments"]), "the deleted videos' comments went"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("error-200", "an error 'invalid_params' sent with HTTP 200"),
        ("html", "a text/html answer, not the API's JSON"),
        ("other-user", "it names another user"),
    ],
)
def test_a_profile_answer_that_says_neither_keeps_the_profile(
    fresh_emulator: Emulator, tmp_path: Path, answer: str, said: str
) -> None:
    env = env_for(fresh_emulator, tmp_path)
    usernames = sorted(fresh_emulator.corpus.users)[:6]
    assert scrapy_cli(tmp_path, env, "crawl", "users", "-a", f"usernames={','.join(usernames)}").returncode == 0
    before = read_jsonl(tmp_path / "users.jsonl")
    assert len(before) >= 3, "the test needs profiles"
    gone = before[0]["username"]
    fresh_emulator.corpus.delete(users=[gone])
    fresh_emulator.faults.user_info_answer = answer
    done = scrapy_cli(tmp_path, env, "refresh")
    assert done.returncode == 1 and said in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert read_jsonl(tmp_path / "users.jsonl") == before, "no profile purged, none kept as checked"

    fresh_emulator.faults.user_info_answer = ""
    again = scrapy_cli(tmp_path, env, "refresh")
    assert again.returncode == 0, again.stderr[-3000:]
    assert [u["username"] for u in read_jsonl(tmp_path / "users.jsonl")] == [u["username"] for u in before[1:]]


# -- tasks that vanish or never end; a study run again after the interval ---------------------------


@deferred_f_from_coro_f
async def test_a_task_the_api_forgot_is_created_again_with_the_same_ids(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    before = await collect_videos_and_comments(fresh_emulator, tmp_path)
    fresh_emulator.corpus.delete(videos=quiet_videos(before["videos"], 1))
    fresh_emulator.faults.compliance_polls = 10**6  # Processing until it is forgotten
    start = len(request_log(fresh_emulator))
    own_quota = {"TIKTOK_QUOTA_FILE": str(tmp_path.with_name(tmp_path.name + "-refresh-quota")), **FAST_POLLS}
    stopped = await crawl(
        RefreshSpider, settings_for(fresh_emulator, tmp_path, TIKTOK_DAILY_REQUEST_LIMIT=8, **own_quota)
    )
    assert stopped.stats.get_value("finish_reason") == "daily_quota_exhausted"
    fresh_emulator.compliance.forget_tasks()
    fresh_emulator.faults.compliance_polls = 1
    done = await crawl(RefreshSpider, settings_for(fresh_emulator, tmp_path, **FAST_POLLS))
    assert done.stats.get_value("finish_reason") == "finished"
    assert done.stats.get_value("tiktok/refresh/tasks_lost") == 2
    creates = [e for e in request_log(fresh_emulator)[start:] if e["path"] == api.COMPLIANCE_CREATE_PATH]
    created = Counter((e["body"]["category"], e["body"]["ids"]) for e in creates if e["status"] == 200)
    assert created == {("video", 86): 2, ("comment", len(before["comments"])): 2}, "created again once, same ids"
    for kind in ("videos", "comments"):
        assert sorted(r["id"] for r in read_jsonl(tmp_path / f"{kind}.jsonl")) == sorted(
            still_there(fresh_emulator, before[kind], kind)
        )


@deferred_f_from_coro_f
async def test_a_task_processing_past_the_bound_is_created_again(
    fresh_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from tiktok_spiders import clock

    before = await collect_videos_and_comments(fresh_emulator, tmp_path)
    fresh_emulator.corpus.delete(videos=quiet_videos(before["videos"], 1))
    fresh_emulator.faults.compliance_polls = 10**6
    settings = settings_for(fresh_emulator, tmp_path, TIKTOK_COMPLIANCE_MAX_HOURS=24, **FAST_POLLS)
    own_quota = {"TIKTOK_QUOTA_FILE": str(tmp_path.with_name(tmp_path.name + "-refresh-quota"))}
    stopped = await crawl(RefreshSpider, {**settings, **own_quota, "TIKTOK_DAILY_REQUEST_LIMIT": 8})
    assert stopped.stats.get_value("finish_reason") == "daily_quota_exhausted"
    fresh_emulator.compliance.stall_tasks()  # they will never end
    fresh_emulator.faults.compliance_polls = 1
    not_yet = await crawl(RefreshSpider, {**settings, **own_quota, "TIKTOK_DAILY_REQUEST_LIMIT": 12})
    assert not not_yet.stats.get_value("tiktok/refresh/tasks_lost"), "not created again before the bound"
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(hours=25))  # a day later, still Processing
    done = await crawl(RefreshSpider, settings)
    assert done.stats.get_value("finish_reason") == "finished"
    assert done.stats.get_value("tiktok/refresh/tasks_lost") == 2, "each task created again once"
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "videos.jsonl")) == sorted(
        still_there(fresh_emulator, before["videos"], "videos")
    )


def test_a_study_refreshes_whenever_it_is_due(fresh_emulator: Emulator, tmp_path: Path) -> None:
    env = env_for(fresh_emulator, tmp_path)
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nstages = ["videos", "comments", "users", "refresh"]\n[videos]\n'
        + "".join(f'{key} = "{value}"\n' for key, value in SMALL_STUDY.items())
    )
    first = scrapy_cli(tmp_path, env, "study", str(study))
    assert first.returncode == 0, first.stderr[-3000:]
    assert "== refresh: not due: collected 0 days ago, due after 15 days" in first.stdout
    before = {kind: read_jsonl(tmp_path / f"{kind}.jsonl") for kind in ("videos", "comments", "users")}
    gone_user = next(
        u["username"] for u in before["users"] if sum(v["username"] == u["username"] for v in before["videos"]) == 1
    )
    fresh_emulator.corpus.delete(users=[gone_user], videos=quiet_videos(before["videos"], 1))

    later = scrapy_cli(tmp_path, env, "study", str(study), clock_days=16)
    assert later.returncode == 0, later.stderr[-3000:]
    assert "== refresh: scrapy crawl refresh" in later.stdout and "finished in an earlier run" in later.stdout
    for kind in ("videos", "comments", "users"):
        key = key_of(kind)
        assert sorted(r[key] for r in read_jsonl(tmp_path / f"{kind}.jsonl")) == sorted(
            still_there(fresh_emulator, before[kind], kind)
        ), kind
    same_day = scrapy_cli(tmp_path, env, "study", str(study), clock_days=16)
    assert "== refresh: not due: last refreshed 0 days ago" in same_day.stdout
    again = scrapy_cli(tmp_path, env, "study", str(study), clock_days=32)
    assert again.returncode == 0 and "== refresh: scrapy crawl refresh" in again.stdout
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert [r["outcome"] for r in manifest["refreshes"]] == ["complete", "complete"]

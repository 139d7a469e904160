"""A study that runs itself: the same study, day after day on one key's quota, collecting each new day,
never asking a day twice, with the refresh first whenever it is due; and as cron runs it."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import quota_file, read_jsonl, request_log, scrapy_cli
from tiktok_spiders import api
from tiktok_spiders.emulator import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Emulator

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

QUERY = {"and": [{"field_name": "hashtag_name", "operation": "IN", "field_values": ["climate", "vote"]}]}
STUDY = """[study]
stages = ["videos", "comments", "refresh"]

[videos]
hashtags = ["climate", "vote"]
start_date = "2024-01-01"
end_date = "today-2"
window_days = 7
"""
#: The key's quota a day: less than the first day's backlog, so it waits for the next.
DAILY = 60


def env_of(api_: Emulator, folder: Path) -> dict[str, str]:
    return {
        "TIKTOK_CLIENT_KEY": DEMO_CLIENT_KEY,
        "TIKTOK_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "TIKTOK_API_BASE_URL": api_.base_url,
        "TIKTOK_DATA_DIR": str(folder / "data"),
        "TIKTOK_QUOTA_FILE": quota_file(folder / "data"),
        "TIKTOK_DAILY_REQUEST_LIMIT": str(DAILY),
        "TIKTOK_REFRESH_DAYS": "3",
        "TIKTOK_COMPLIANCE_POLL_SECONDS": "0.01",
        "TIKTOK_RETRY_BACKOFF_BASE": "0.01",
        "TIKTOK_RETRY_BACKOFF_MAX": "0.2",
    }


def days_ago(day: date) -> float:
    """The clock offset (days) that makes ``day``'s noon, UTC, now."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return (noon - datetime.now(UTC)).total_seconds() / 86400


def test_a_rolling_study_day_after_day_collects_every_day_once_within_the_quota(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "study.toml").write_text(STUDY, encoding="utf-8")
    env = env_of(fresh_emulator, tmp_path)
    fresh_emulator.faults.daily_requests = DAILY
    fresh_emulator.faults.compliance_polls = 1
    corpus = fresh_emulator.corpus
    first = date(2024, 1, 20)
    runs = {}
    # day 0 to 9, the machine off on day 3; content deleted after day 4
    for offset in (0, 1, 2, 4, 5, 6, 7, 8, 9):
        today = first + timedelta(days=offset)
        clock = days_ago(today)
        fresh_emulator.clock_offset = clock * 86400  # the API's day is the study's: its quota resets too
        if offset == 5:
            videos = read_jsonl(tmp_path / "data" / "videos.jsonl")
            commented = [v for v in videos if 0 < (v["comment_count"] or 0) < 20]
            corpus.delete(videos=[commented[0]["id"]], users=[], comments=[])
        done = scrapy_cli(tmp_path, env, "study", "study.toml", clock_days=clock)
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        assert done.returncode in (0, 1), done.stderr[-3000:]
        runs[today] = done
    ledger_days = json.loads((tmp_path / "data" / "manifest.json").read_text(encoding="utf-8"))["requests_per_utc_day"]
    assert ledger_days and max(ledger_days.values()) <= DAILY, f"a day spent more than the key's quota: {ledger_days}"
    assert any(n == DAILY for n in ledger_days.values()), "a day's backlog was more than the quota: it waited"
    assert str(first + timedelta(days=3)) not in ledger_days, "the machine was off"
    assert runs[first].returncode == 1 and "daily quota is spent" in runs[first].stderr

    log = request_log(fresh_emulator)
    assert not [e for e in log if e.get("error") == api.DAILY_QUOTA_EXCEEDED], "the client stopped first"
    searches = [e["body"] for e in log if e["path"] == api.VIDEO_QUERY_PATH and e["status"] == 200]
    windows = Counter((b["start_date"], b["end_date"]) for b in searches)
    assert all(n == 1 for n in windows.values()), f"a page fetched twice: {windows}"
    asked = [
        datetime.strptime(start, "%Y%m%d").date() + timedelta(days=n)
        for start, end in windows
        for n in range((datetime.strptime(end, "%Y%m%d") - datetime.strptime(start, "%Y%m%d")).days + 1)
    ]
    last = first + timedelta(days=9 - 2)
    assert sorted(asked) == [date(2024, 1, 1) + timedelta(days=n) for n in range((last - date(2024, 1, 1)).days + 1)], (
        "every day from the start to today-2 asked once, the missed day too"
    )
    # the refresh ran first once it was due, and never when it was not
    due_runs = [day for day, done in runs.items() if "== refresh: scrapy crawl refresh" in done.stdout]
    assert due_runs and all(
        runs[day].stdout.index("== refresh:") < runs[day].stdout.index("== videos:") for day in due_runs
    )
    assert any("== refresh: not due" in done.stdout for done in runs.values())
    # the end: every record the API serves for the whole range, exactly once
    final = scrapy_cli(tmp_path, env, "study", "study.toml", clock_days=days_ago(first + timedelta(days=9)))
    assert final.returncode == 0, final.stderr[-3000:]
    expected = corpus.expected_videos(QUERY, date(2024, 1, 1), last)
    videos = read_jsonl(tmp_path / "data" / "videos.jsonl")
    assert sorted(v["id"] for v in videos) == sorted(v["id"] for v in expected)
    comments = read_jsonl(tmp_path / "data" / "comments.jsonl")
    truth = corpus.expected_comments([v["id"] for v in expected])
    assert sorted(c["id"] for c in comments) == sorted(c["id"] for c in truth)


def test_as_cron_runs_it_no_terminal_a_bare_environment_and_overlapping_runs_are_harmless(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The README's crontab line, as cron runs it: from the study folder, PATH and HOME only,
    output to a file; a second run while the first holds the study is exit 2 in one line."""
    folder = tmp_path / "climate"
    folder.mkdir()
    (folder / "study.toml").write_text(STUDY.replace('"today-2"', '"2024-01-20"'), encoding="utf-8")
    env = env_of(emulator, folder)
    env["TIKTOK_DAILY_REQUEST_LIMIT"] = "100000"
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    command = Path(sys.executable).with_name("tiktok-spiders")
    cron = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh"}
    line = f"cd {folder} && {command} study study.toml >> cron.log 2>&1"
    emulator.faults.latency = 0.3  # the first run is still going when the second starts
    try:
        first = subprocess.Popen(["/bin/sh", "-c", line], env=cron, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        lock = folder / "data" / ".tiktok-lock"
        while time.monotonic() < deadline and not (lock.is_file() and lock.read_text(encoding="utf-8")):
            time.sleep(0.05)
        second = subprocess.run(["/bin/sh", "-c", line], env=cron, stdin=subprocess.DEVNULL, timeout=120, check=False)
        assert second.returncode == 2, "a run that finds the study in use stops at once"
    finally:
        emulator.faults.latency = 0.0
    assert first.wait(timeout=300) == 0
    log = (folder / "cron.log").read_text(encoding="utf-8")
    assert "\r" not in log and "Traceback" not in log, log[-2000:]
    assert log.count("error: ") == 1 and "is in use by process" in log, log[-2000:]
    assert "Study summary" in log and (folder / "data" / "comments.jsonl").is_file()


FAST_CLOCK = """
import time
from datetime import UTC, datetime, timedelta

from tiktok_spiders import clock

started = None
start = datetime(2024, 1, 20, 23, 56, tzinfo=UTC)


def now():  # from the first look at it, a minute of the study's time each second: a day turns in seconds
    global started
    if started is None:  # not at import: a loaded machine may take seconds to import Scrapy
        started = time.monotonic()
    return start + timedelta(seconds=(time.monotonic() - started) * 60)


clock.now = now
"""


def test_daily_runs_each_utc_day_and_stops_cleanly_on_sigterm(fresh_emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(FAST_CLOCK, encoding="utf-8")
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.toml").write_text(STUDY.replace('"2024-01-01"', '"2024-01-10"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SCRAPY_"))}
    env.update(env_of(fresh_emulator, folder), TIKTOK_DAILY_REQUEST_LIMIT="100000", PYTHONPATH=str(tmp_path))
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("tiktok-spiders")), "study", "study.toml", "--daily"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        lines: queue.Queue[str] = queue.Queue()  # read aside: a run that says nothing fails the test, not hangs it
        reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
        reader.start()
        days = []
        deadline = time.monotonic() + 120
        with contextlib.suppress(queue.Empty):
            while len(days) < 2:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                if " (UTC): " in line:
                    days.append(line.strip())
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)  # the rest of what it said
        process.stdout.close()
        rest = "".join(lines.get() for _ in range(lines.qsize()))
    finally:  # never left running: it would go on asking the emulator while other tests count its requests
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert [day.split()[0] for day in days] == ["2024-01-20", "2024-01-21"], days
    assert "next run after 00:00 UTC" in days[0] and "Stopped: run the same command again" in rest
    manifest = json.loads((folder / "data" / "manifest.json").read_text(encoding="utf-8"))
    ends = {run["sent"]["end_date"] for run in manifest["stages"]["videos"]["runs"]}
    assert ends == {"20240118", "20240119"}, "today-2, resolved each day"


def test_samples_a_random_one_and_a_few_videos_a_window_are_said_in_the_manifest(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    from tests.conftest import MONTH_ARGS, MONTH_DATES, STUDY_QUERY, cli_env, spider_args

    env = cli_env(fresh_emulator, tmp_path / "capped")
    capped = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args({**MONTH_ARGS, "max_videos_per_window": "50"}))
    assert capped.returncode == 0, capped.stderr[-2000:]
    everything = fresh_emulator.corpus.expected_videos(STUDY_QUERY, *MONTH_DATES)
    videos = read_jsonl(tmp_path / "capped" / "videos.jsonl")
    assert len(everything) > 100 and 50 <= len(videos) <= 100, "one page of 100 at most, then the window stops"
    assert {v["id"] for v in videos} <= {v["id"] for v in everything}
    pages = [e for e in request_log(fresh_emulator) if e["path"] == api.VIDEO_QUERY_PATH]
    assert len(pages) == 1

    env = cli_env(fresh_emulator, tmp_path / "random")
    start = len(request_log(fresh_emulator))
    sampled = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args({**MONTH_ARGS, "is_random": "true"}))
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    asked = [e["body"] for e in request_log(fresh_emulator)[start:] if e["path"] == api.VIDEO_QUERY_PATH]
    assert asked and all(body["is_random"] is True for body in asked)
    sample = read_jsonl(tmp_path / "random" / "videos.jsonl")
    assert sample and {v["id"] for v in sample} <= {v["id"] for v in everything}
    manifest = json.loads((tmp_path / "random" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["videos"]["runs"][-1]["sent"]["is_random"] is True

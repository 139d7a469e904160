"""A researcher's machine stays theirs: no write through a link, no secret on disk, no hang on an
absurd answer, no memory blown by a huge one, damaged state and absurd input said in one line."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from scrapy.http import Response

from tests.conftest import (
    ONE_WINDOW,
    assert_one_line_error,
    cli_env,
    quota_file,
    read_jsonl,
    scrapy_cli,
    snapshot,
    spider_args,
)
from tiktok_spiders import api, clock
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.files import LOCK_FILENAME
from tiktok_spiders.ledger import FILENAME

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


@pytest.fixture(scope="module")
def collected_once(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with videos, comments and tables in it, collected once for the module."""
    data_dir = tmp_path_factory.mktemp("collected") / "data"
    env = cli_env(emulator, data_dir)
    for command in (("crawl", "videos", *spider_args(ONE_WINDOW)), ("crawl", "comments"), ("tables",)):
        assert scrapy_cli(data_dir.parent, env, *command).returncode == 0
    return data_dir


@pytest.fixture
def collected(collected_once: Path, tmp_path: Path) -> Path:
    """A test's own copy of that data directory, to plant links in and damage."""
    return Path(shutil.copytree(collected_once, tmp_path / "data", symlinks=True))


# -- links where the tool writes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "command"),
    [
        (LOCK_FILENAME, ("crawl", "comments")),
        ("comments.jsonl.partial", ("crawl", "comments")),
        ("videos.csv", ("crawl", "videos", *spider_args(ONE_WINDOW))),
        (FILENAME, ("crawl", "comments")),
        ("manifest.json", ("refresh",)),
        ("tables/videos.parquet", ("tables",)),
        ("tables/videos.parquet.partial", ("tables",)),
        ("report.html", ("report",)),
        ("logs", ("crawl", "comments")),
    ],
)
def test_a_link_where_the_tool_writes_is_refused_naming_it_and_never_followed(
    emulator: Emulator, collected: Path, tmp_path: Path, name: str, command: tuple[str, ...]
) -> None:
    target = tmp_path / "someone-elses-file"
    if name == "logs":
        target.mkdir()
    else:
        target.write_text("precious\n", encoding="utf-8")
        target.chmod(0o644)
    planted = collected / name
    if planted.is_dir():
        os.rename(planted, tmp_path / "logs-moved")
    elif planted.exists():
        planted.unlink()
    planted.symlink_to(target)
    before = snapshot(tmp_path / "someone-elses-file") if target.is_dir() else target.read_bytes()
    done = scrapy_cli(tmp_path, cli_env(emulator, collected), *command)
    assert_one_line_error(done, f"{planted} is a symbolic link")
    after = snapshot(target) if target.is_dir() else target.read_bytes()
    assert after == before and (target.stat().st_mode & 0o777) in (0o644, 0o755, 0o700), "the target is untouched"


# -- no secret on disk -----------------------------------------------------------------------------


def test_a_secret_given_with_s_is_in_no_file_even_after_kill_9(emulator: Emulator, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(emulator, data_dir)
    secret = env.pop("TIKTOK_CLIENT_SECRET")
    # the attached form of -s, then kill -9 while the lock is held and pages are being stored
    killed = scrapy_cli(
        tmp_path,
        env,
        "crawl",
        "videos",
        f"-sTIKTOK_CLIENT_SECRET={secret}",
        *spider_args(ONE_WINDOW),
        kill_at=("tiktok_spiders.ledger:Ledger.finish_page", "after"),
    )
    assert killed.returncode == -9
    lock = (data_dir / LOCK_FILENAME).read_text(encoding="utf-8")
    assert lock.startswith("process ") and " since 20" in lock and "crawl" not in lock, lock
    done = scrapy_cli(
        tmp_path, env, "crawl", "videos", "-s", f"TIKTOK_CLIENT_SECRET={secret}", *spider_args(ONE_WINDOW)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for path in [*tmp_path.rglob("*"), Path(quota_file(data_dir))]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the client secret is in {path}"
    assert secret not in done.stderr + done.stdout + killed.stderr + killed.stdout


# -- Retry-After, in both forms, held to a cap -----------------------------------------------------


def test_retry_after_is_read_as_seconds_and_as_an_http_date() -> None:
    def answer(value: str) -> Response:
        return Response("http://x", status=429, headers={"Retry-After": value})

    assert api.retry_after(answer("120")) == 120
    in_an_hour = format_datetime(clock.now() + timedelta(hours=1), usegmt=True)
    assert 3590 < (api.retry_after(answer(in_an_hour)) or 0) <= 3600
    assert api.retry_after(answer(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True))) == 0
    assert api.retry_after(answer("soon")) is None


@pytest.mark.parametrize("as_date", [False, True])
def test_a_retry_after_of_days_stops_the_crawl_with_one_line_and_it_resumes(
    fresh_emulator: Emulator, tmp_path: Path, as_date: bool
) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(fresh_emulator, data_dir)
    fresh_emulator.faults.rate_limit_per_second = 0.5
    fresh_emulator.faults.rate_limit_retry_after = 999_999
    fresh_emulator.faults.retry_after_as_date = as_date
    study = {**ONE_WINDOW, "end_date": "2024-01-30", "window_days": "3"}  # ten windows: the limit is met
    done = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(study), timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert "The API asked to wait 11.6 days before the next request (Retry-After)" in line
    assert "TIKTOK_MAX_RETRY_AFTER (15 minutes)" in line and "Traceback" not in done.stderr
    fresh_emulator.faults.rate_limit_per_second = 0
    again = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(study))
    assert again.returncode == 0, again.stderr[-2000:]
    expected = fresh_emulator.corpus.expected_videos(
        {"and": [{"field_name": "hashtag_name", "operation": "IN", "field_values": ["climate"]}]},
        *(datetime.strptime(study[key], "%Y-%m-%d").date() for key in ("start_date", "end_date")),
    )
    assert sorted(v["id"] for v in read_jsonl(data_dir / "videos.jsonl")) == sorted(v["id"] for v in expected)


def test_a_profile_check_refused_for_days_purges_nothing(fresh_emulator: Emulator, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(fresh_emulator, data_dir, TIKTOK_COMPLIANCE_POLL_SECONDS="0.01")
    usernames = sorted(fresh_emulator.corpus.users)[:8]
    assert scrapy_cli(tmp_path, env, "crawl", "users", "-a", f"usernames={','.join(usernames)}").returncode == 0
    before = read_jsonl(data_dir / "users.jsonl")
    fresh_emulator.corpus.delete(users=[before[0]["username"]])
    fresh_emulator.faults.user_info_answer = "rate-limited"
    fresh_emulator.faults.rate_limit_retry_after = 999_999
    done = scrapy_cli(tmp_path, env, "refresh", timeout=60)
    assert done.returncode == 1 and "asked to wait 11.6 days" in done.stderr, done.stderr[-2000:]
    assert read_jsonl(data_dir / "users.jsonl") == before, "nothing purged on a refusal"


# -- answers larger than a page can be ---------------------------------------------------------------


def crawl_memory(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, int]:
    """``(exit status, stderr, peak RSS in MB)`` of a command in a process of its own.

    The peak is the kernel's high-water mark of the command's own memory (``VmHWM``, which exec
    starts afresh), read until it ends: a child's ``ru_maxrss`` counts the parent's pages it was
    forked with."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TIKTOK_")}
    full_env.update(env, SCRAPY_SETTINGS_MODULE="tiktok_spiders.settings")
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "scrapy.cmdline", *args],
            cwd=tmp_path,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        peak = 0
        status_file = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            with contextlib.suppress(OSError):
                for line in status_file.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) // 1024)
            time.sleep(0.02)
        stderr.seek(0)
        return process.returncode, stderr.read(), peak


@pytest.mark.parametrize("how", ["gzip", "plain"])
def test_an_answer_larger_than_a_page_is_a_failure_in_bounded_memory(
    fresh_emulator: Emulator, tmp_path: Path, how: str
) -> None:
    env = cli_env(fresh_emulator, tmp_path / "normal", TIKTOK_RETRY_TIMES="0")
    status, _, normal = crawl_memory(tmp_path, env, "crawl", "videos", *spider_args(ONE_WINDOW))
    assert status == 0
    fresh_emulator.faults.oversized_answer = how  # 256 MB inflated from a quarter of a MB, or 64 MB sent
    env = cli_env(fresh_emulator, tmp_path / "huge", TIKTOK_RETRY_TIMES="0")
    status, stderr, huge = crawl_memory(tmp_path, env, "crawl", "videos", *spider_args(ONE_WINDOW))
    assert status == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert "larger than download max size" in stderr or "DOWNLOAD_MAXSIZE" in stderr, stderr[-2000:]
    assert huge < normal + 64, f"peak {huge} MB against {normal} MB for a normal crawl"


# -- damaged state, absurd input ---------------------------------------------------------------------


def test_a_ledger_damaged_in_the_middle_is_one_line(emulator: Emulator, collected: Path, tmp_path: Path) -> None:
    ledger = collected / FILENAME
    with ledger.open("r+b") as handle:
        handle.seek(ledger.stat().st_size // 2)
        handle.write(b"\xff" * 8192)
    before = snapshot(collected)
    for command in (("crawl", "comments"), ("tables",), ("report",), ("refresh",)):
        done = scrapy_cli(tmp_path, cli_env(emulator, collected), *command)
        assert_one_line_error(done, f"cannot use the ledger {ledger}: database disk image is malformed")
        assert "restore it from a backup" in done.stderr
    assert snapshot(collected) == before


def test_a_damaged_quota_file_is_one_line(emulator: Emulator, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    Path(quota_file(data_dir)).write_bytes(b"not a database, or what is left of one" * 50)
    done = scrapy_cli(tmp_path, cli_env(emulator, data_dir), "crawl", "videos", *spider_args(ONE_WINDOW))
    assert_one_line_error(done, f"cannot use the quota file {quota_file(data_dir)}")
    assert "delete it" in done.stderr and "Task exception" not in done.stderr


@pytest.mark.parametrize(
    ("dates", "said"),
    [
        ({"start_date": "2024-01-01", "end_date": "9999-12-31"}, "end_date 9999-12-31 is more than a year from today"),
        ({"start_date": "2010-01-01", "end_date": "2010-01-31"}, "the API has no videos that old"),
        ({"start_date": "2024-01-01", "end_date": "2024-13-01"}, "is not a date"),
    ],
)
def test_dates_beyond_the_apis_range_are_one_line(emulator: Emulator, tmp_path: Path, dates: dict, said: str) -> None:
    done = scrapy_cli(
        tmp_path, cli_env(emulator, tmp_path / "data"), "crawl", "videos", *spider_args({"hashtags": "x", **dates})
    )
    assert_one_line_error(done, said)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("ids", ["-5", "0x10", "1e3"])
def test_ids_that_are_not_positive_whole_numbers_are_refused(emulator: Emulator, tmp_path: Path, ids: str) -> None:
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "data"), "crawl", "comments", "-a", f"video_ids={ids}")
    assert_one_line_error(done, "video_ids must be numbers")


def test_values_of_the_wrong_type_are_dropped_at_crawl_time_and_tables_never_meet_them(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(fresh_emulator, data_dir)
    fresh_emulator.faults.hostile_values = True  # like_count "many", create_time "yesterday"
    video_ids = ",".join(str(v["id"]) for v in fresh_emulator.corpus.videos[:3])
    done = scrapy_cli(tmp_path, env, "crawl", "comments", "-a", f"video_ids={video_ids}")
    assert done.returncode == 0, done.stderr[-2000:]
    comments = read_jsonl(data_dir / "comments.jsonl")
    assert comments and all(isinstance(c["like_count"], int) and isinstance(c["create_time"], int) for c in comments)
    dropped = int(done.stderr.split("dropped as invalid: ")[1].split()[0])
    assert dropped >= 1 and "like_count is not_an_integer" in done.stderr, done.stderr  # counted, with the reason
    for command in (("tables",), ("report",)):
        assert scrapy_cli(tmp_path, env, *command).returncode == 0
    # and a feed edited by hand is named by file, line and column, never "invalid literal for int()"
    with (data_dir / "comments.jsonl").open("a", encoding="utf-8") as feed:
        feed.write(json.dumps({**comments[0], "id": comments[0]["id"] + 1, "like_count": "many"}) + "\n")
    for command in (("tables",), ("report",)):
        bad = scrapy_cli(tmp_path, env, *command)
        assert_one_line_error(bad, f"{data_dir / 'comments.jsonl'}, line {len(comments) + 1}: column like_count")

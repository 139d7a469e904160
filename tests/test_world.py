"""When the world misbehaves: failed writes, hostile answers, an unreachable API, two runs at once,
configuration and file-system mistakes, seed files as researchers make them, private files."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import (
    ONE_WINDOW,
    STUDY_ARGS,
    assert_one_line_error,
    cli_env,
    crawl,
    quota_file,
    read_jsonl,
    request_log,
    scrapy_cli,
    settings_for,
    snapshot,
    spider_args,
)
from tiktok_spiders import api
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.files import LOCK_FILENAME
from tiktok_spiders.ledger import FILENAME, Ledger
from tiktok_spiders.spiders.videos import VideosSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


def errors_of(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if "ERROR" in line or line.startswith("error: ")]


# -- a small server of our own, answering what the API never should -----------------------


class HostileApi:
    """Serves a token, then answers every research request with ``answer`` (status, body, headers)."""

    def __init__(self) -> None:
        self.answer: tuple[int, Any, dict[str, str]] = (200, {}, {})
        self.token_answer: tuple[int, Any, dict[str, str]] | None = None
        self.research_requests = 0
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith(api.TOKEN_PATH):
                    answer = hostile.token_answer or (200, {"access_token": "clt.x", "expires_in": 7200}, {})
                else:
                    hostile.research_requests += 1
                    answer = hostile.answer
                status, body, headers = answer
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                hostile.research_requests += 1
                self.do_POST()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile() -> HostileApi:
    server = HostileApi()
    yield server
    server.close()


def failure_reason(data_dir: Path) -> str:
    """The reason the ledger recorded for the one window that failed."""
    ledger = Ledger(data_dir)
    [(_, why)] = ledger.failed_seeds("videos")
    ledger.close()
    return why


def hostile_settings(server: HostileApi, data_dir: Path) -> dict[str, Any]:
    class Fake:
        base_url = server.base_url

    return settings_for(Fake(), data_dir, TIKTOK_RETRY_TIMES=1)  # type: ignore[arg-type]


def page(**data: Any) -> dict[str, Any]:
    return {"data": data, "error": {"code": "ok", "message": "", "log_id": "1"}}


VIDEO = {"id": 7320768196569599275, "username": "s.clovis", "create_time": 1704499196}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"data": None, "error": {"code": "ok"}}, "its data is null"),
        ({"data": [VIDEO], "error": {"code": "ok"}}, "its data is a list"),
        ({"data": "videos", "error": {"code": "ok"}}, "its data is a string"),
        (page(videos={"id": 1}, cursor=100, has_more=False), "videos is an object, not a list"),
        ([VIDEO], "the answer is a list"),
        (None, "the answer is null"),
        (page(videos=[VIDEO], cursor=100, has_more="false", search_id="1"), "has_more is 'false'"),
        (page(videos=[VIDEO], cursor="100", has_more=True, search_id="1"), "cursor is '100'"),
        (page(videos=[VIDEO], cursor=0, has_more=True, search_id="1"), "cursor went from None to 0"),
    ],
)
@deferred_f_from_coro_f
async def test_an_answer_of_the_wrong_shape_is_a_recorded_failure(
    hostile: HostileApi, tmp_path: Path, body: Any, reason: str
) -> None:
    hostile.answer = (200, body, {})
    crawler = await crawl(VideosSpider, hostile_settings(hostile, tmp_path), **ONE_WINDOW)
    assert crawler.stats.get_value("finish_reason") == "incomplete"
    assert hostile.research_requests == 1, "a bad page is recorded, not asked again and again"
    why = failure_reason(tmp_path)
    assert reason in why
    assert read_jsonl(tmp_path / "videos.jsonl") == [], "nothing of a bad page is stored"


@deferred_f_from_coro_f
async def test_a_cursor_that_cycles_is_a_recorded_failure_not_a_loop(hostile: HostileApi, tmp_path: Path) -> None:
    hostile.answer = (200, page(videos=[VIDEO], cursor=100, has_more=True, search_id="1"), {})
    crawler = await crawl(VideosSpider, hostile_settings(hostile, tmp_path), **ONE_WINDOW)
    assert crawler.stats.get_value("finish_reason") == "incomplete"
    assert hostile.research_requests == 2  # page 1 (cursor 0 -> 100), page 2 (100 -> 100 again): stop
    why = failure_reason(tmp_path)
    assert "cursor went from 100 to 100" in why
    assert [video["id"] for video in read_jsonl(tmp_path / "videos.jsonl")] == [VIDEO["id"]]


@deferred_f_from_coro_f
async def test_a_redirect_is_a_failure_with_its_reason_not_a_get(hostile: HostileApi, tmp_path: Path) -> None:
    hostile.answer = (302, b"", {"Location": "https://example.org/login", "Content-Type": "text/html"})
    crawler = await crawl(VideosSpider, hostile_settings(hostile, tmp_path), **ONE_WINDOW)
    assert crawler.stats.get_value("finish_reason") == "incomplete"
    assert hostile.research_requests == 1
    why = failure_reason(tmp_path)
    assert "HTTP 302 redirect to https://example.org/login" in why and "TIKTOK_API_BASE_URL" in why


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((200, b"<html>login</html>", {"Content-Type": "text/html"}), "HTTP 200 not a token (text/html)"),
        ((503, b"<html>busy</html>", {"Content-Type": "text/html"}), "HTTP 503 not a token"),
        ((302, b"", {"Location": "https://example.org/"}), "HTTP 302 not a token"),
        ((200, {"token_type": "Bearer"}, {}), "HTTP 200 not a token (application/json)"),
    ],
)
@deferred_f_from_coro_f
async def test_a_token_endpoint_that_gives_no_token_stops_the_crawl_with_its_reason(
    hostile: HostileApi, tmp_path: Path, answer: tuple, said: str
) -> None:
    hostile.token_answer = answer
    crawler = await crawl(VideosSpider, hostile_settings(hostile, tmp_path), **ONE_WINDOW)
    assert crawler.stats.get_value("finish_reason") == "token_unavailable"
    assert hostile.research_requests == 0
    why = crawler.stats.get_value("tiktok/token/unavailable")
    assert said in why and "clt." not in why
    ledger = Ledger(tmp_path)
    assert ledger.failed_seeds("videos") == [], "no page was asked: the window is open, not failed"
    ledger.close()


def test_nothing_listening_fails_within_a_minute_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Nowhere:
        base_url = f"http://127.0.0.1:{port}"

    env = cli_env(Nowhere(), tmp_path / "data", TIKTOK_RETRY_BACKOFF_BASE="1", TIKTOK_RETRY_BACKOFF_MAX="60")
    # the token is tried 4 times (about 7 s of backoff), not TIKTOK_RETRY_TIMES over hours: the
    # timeout fails the test long before the page's own retries (up to 8 times 60 s) would end
    done = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(STUDY_ARGS), timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [line for line in errors_of(done) if "no access token" in line]
    assert "ConnectionRefusedError" in line and "TIKTOK_API_BASE_URL" in line
    assert "no access token (see the error above)" in done.stderr


# -- failed writes ---------------------------------------------------------------------------


def test_a_feed_that_cannot_be_written_is_not_complete(emulator: Emulator, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "videos.jsonl").mkdir(parents=True)  # a directory where the feed goes
    done = scrapy_cli(tmp_path, cli_env(emulator, data_dir), "crawl", "videos", *spider_args(ONE_WINDOW))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "complete." not in done.stderr
    [line] = [line for line in errors_of(done) if "could not write" in line]
    assert f"could not write {data_dir / 'videos.jsonl'}" in line
    assert "a file could not be written" in done.stderr


def test_a_study_whose_feed_cannot_be_written_does_not_record_the_stage_as_finished(
    emulator: Emulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "videos.csv").mkdir(parents=True)
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nstages = ["videos"]\n[videos]\n' + "".join(f'{k} = "{v}"\n' for k, v in ONE_WINDOW.items())
    )
    done = scrapy_cli(tmp_path, cli_env(emulator, data_dir), "study", str(study))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "stopped (exit 1)" in done.stdout
    (data_dir / "videos.csv").rmdir()
    again = scrapy_cli(tmp_path, cli_env(emulator, data_dir), "study", str(study))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "finished in an earlier run" not in again.stdout
    assert (data_dir / "videos.csv").is_file()


def full_disk(file_size: int) -> Any:
    """For a child process: its files cannot grow past ``file_size`` bytes, as on a full disk."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), as ENOSPC would be
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return limit


def test_a_full_disk_stops_the_crawl_at_once_and_the_same_command_finishes_later(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(fresh_emulator, data_dir)
    args = ("crawl", "videos", "-s", "CONCURRENT_REQUESTS=2", *spider_args({**STUDY_ARGS, "window_days": "7"}))
    full = scrapy_cli(tmp_path, env, *args, preexec_fn=full_disk(160_000))
    assert full.returncode == 1, full.stderr[-3000:]
    assert "Traceback" not in full.stderr
    # one line for the ledger, and one if the feeds cannot be written at close either: not one per page
    lines = [line for line in errors_of(full) if "could not write" in line]
    assert 1 <= len(lines) <= 2 and FILENAME in lines[0]
    paid_when_full = len(request_log(fresh_emulator))

    done = scrapy_cli(tmp_path, env, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = [e for e in request_log(fresh_emulator) if e["path"] == api.VIDEO_QUERY_PATH and e["status"] == 200]
    bodies = [json.dumps(e["body"], sort_keys=True) for e in pages]
    repeated = len(bodies) - len(set(bodies))
    assert repeated <= 2, f"{repeated} pages paid twice: at most the pages in flight when the write failed"
    assert paid_when_full < len(request_log(fresh_emulator))


def test_too_little_free_space_is_refused_before_anything_is_written(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path / "data", TIKTOK_MIN_FREE_SPACE_MB="1000000000")
    done = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(ONE_WINDOW))
    assert_one_line_error(done, "less than TIKTOK_MIN_FREE_SPACE_MB")
    assert not (tmp_path / "data").exists()


# -- configuration and file-system mistakes ------------------------------------------------


def test_a_bad_setting_is_one_line_and_writes_nothing(emulator: Emulator, tmp_path: Path) -> None:
    """Every command checks the settings first (each setting's message: tests/unit/test_settings.py)."""
    env = cli_env(emulator, tmp_path / "data", TIKTOK_RETRY_TIMES="abc")
    for command in (("crawl", "videos", *spider_args(ONE_WINDOW)), ("tables",), ("report",)):
        done = scrapy_cli(tmp_path, env, *command)
        assert_one_line_error(done, "TIKTOK_RETRY_TIMES must be a whole number, not 'abc'")
        assert not (tmp_path / "data").exists(), command


def test_a_data_directory_that_is_a_file(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "data"), "crawl", "videos", *spider_args(ONE_WINDOW))
    assert_one_line_error(done, "is a file, not a directory")


@pytest.mark.parametrize("damage", ["truncated", "read-only"])
def test_a_damaged_or_read_only_ledger_is_one_line(emulator: Emulator, tmp_path: Path, damage: str) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(emulator, data_dir)
    assert scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(ONE_WINDOW)).returncode == 0
    ledger = data_dir / FILENAME
    if damage == "truncated":
        ledger.write_bytes(b"SQLite format 3\x00" + b"\x07" * 100)
        for extra in ("-wal", "-shm"):
            Path(f"{ledger}{extra}").unlink(missing_ok=True)
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes read-only files")
        os.chmod(ledger, 0o400)
    before = snapshot(data_dir)
    done = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(ONE_WINDOW))
    assert_one_line_error(done, f"cannot use the ledger {ledger}")
    assert snapshot(data_dir) == before


def test_rejected_credentials_leave_nothing_behind(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path / "data", TIKTOK_CLIENT_SECRET="wrong")
    done = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(ONE_WINDOW))
    assert done.returncode == 2
    assert not (tmp_path / "data").exists()


# -- one study, one API, one quota -----------------------------------------------------------


def test_two_crawls_on_one_data_directory_the_second_is_refused(fresh_emulator: Emulator, tmp_path: Path) -> None:
    fresh_emulator.faults.latency = 5.0  # the first crawl is still running when the second starts, however slow
    env = cli_env(fresh_emulator, tmp_path / "data")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TIKTOK_")}
    full_env.update(env, SCRAPY_SETTINGS_MODULE="tiktok_spiders.settings")
    first = subprocess.Popen(
        [sys.executable, "-m", "scrapy.cmdline", "crawl", "videos", *spider_args(STUDY_ARGS)],
        cwd=tmp_path,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = tmp_path / "data" / LOCK_FILENAME
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and f"process {first.pid}" not in (lock.read_text() if lock.exists() else ""):
            time.sleep(0.05)
        second = scrapy_cli(tmp_path, env, "crawl", "comments", "-a", "video_ids=1")
        assert_one_line_error(second, f"is in use by process {first.pid}")
    finally:
        fresh_emulator.faults.latency = 0.0  # the answers on their way come at once
        assert first.wait(timeout=120) == 0
    again = scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(STUDY_ARGS))
    assert again.returncode == 0  # the lock went with the process


def test_two_processes_on_one_key_across_two_studies_stay_under_one_limit(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    fresh_emulator.faults.latency = 0.05
    shared = {"TIKTOK_QUOTA_FILE": quota_file(tmp_path / "key"), "TIKTOK_DAILY_REQUEST_LIMIT": "25"}
    runs = []
    for name in ("study-a", "study-b"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIKTOK_")}
        env.update(cli_env(fresh_emulator, tmp_path / name, **shared), SCRAPY_SETTINGS_MODULE="tiktok_spiders.settings")
        arguments = spider_args({**STUDY_ARGS, "window_days": "3"})
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "scrapy.cmdline", "crawl", "videos", *arguments],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [run.communicate(timeout=180)[1] for run in runs]
    assert [run.returncode for run in runs] == [1, 1], outputs
    assert all("requests of this client key" in output for output in outputs), outputs
    research = [e for e in request_log(fresh_emulator) if e["path"] != api.TOKEN_PATH]
    assert len(research) == 25, "one key, one quota, whichever study spends it"
    with sqlite3.connect(quota_file(tmp_path / "key")) as db:
        assert db.execute("SELECT SUM(count) FROM spent").fetchone()[0] == 25


#: One of two processes that open a quota file no one has made yet, at one moment (two crawls
#: started together on a new machine), then spend what is left of a limit of 25.
OPEN_TOGETHER = """
import sys, time
from datetime import date
from tiktok_spiders.quota_file import QuotaFile
path, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
quota = QuotaFile(path, "one-key")
spent = 0
while quota.reserve(date(2026, 1, 1), "research", 25) is not None:
    spent += 1
print(spent)
"""


def test_two_processes_opening_a_new_quota_file_at_once_both_count_in_it(tmp_path: Path) -> None:
    # without waiting for each other, one of the two died with "database is locked" nearly half the time
    for attempt in range(12):
        start = str(time.time() + 0.2)  # both have started by then (0.1 s), and open it together
        command = [sys.executable, "-c", OPEN_TOGETHER, str(tmp_path / f"quota-{attempt}.sqlite"), start]
        processes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
        ]
        outputs = [process.communicate(timeout=60) for process in processes]
        assert [process.returncode for process in processes] == [0, 0], outputs
        assert sum(int(spent) for spent, _ in outputs) == 25, outputs


def test_a_data_directory_belongs_to_one_api(emulator: Emulator, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert (
        scrapy_cli(tmp_path, cli_env(emulator, data_dir), "crawl", "videos", *spider_args(ONE_WINDOW)).returncode == 0
    )
    before = snapshot(data_dir)
    with Emulator() as other:
        done = scrapy_cli(tmp_path, cli_env(other, data_dir), "crawl", "users", "-a", "usernames=someone")
        assert_one_line_error(done, f"holds data from {emulator.base_url}, not {other.base_url}")
        assert other.issued_tokens == [], "refused before any request"
    other_key = cli_env(emulator, data_dir, TIKTOK_CLIENT_KEY="another-key")
    done = scrapy_cli(tmp_path, other_key, "crawl", "users", "-a", "usernames=someone")
    assert_one_line_error(done, "was collected with another client key")
    assert snapshot(data_dir) == before
    assert "another-key" not in (data_dir / FILENAME).read_bytes().decode("latin-1")


# -- seed feeds as researchers make them ------------------------------------------------------


def test_an_excel_csv_and_a_jsonl_with_a_byte_order_mark_are_read_whole(emulator: Emulator, tmp_path: Path) -> None:
    videos = [v for v in emulator.corpus.videos[:30] if v["comment_count"]][:4]
    excel = tmp_path / "excel.csv"
    excel.write_bytes(("\ufeffid,username\r\n" + "".join(f"{v['id']},x\r\n" for v in videos)).encode("utf-8"))
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(("\ufeff" + "".join(json.dumps({"id": v["id"]}) + "\n" for v in videos)).encode("utf-8"))
    for feed in (excel, bom):
        data_dir = tmp_path / feed.stem
        done = scrapy_cli(tmp_path, cli_env(emulator, data_dir), "crawl", "comments", "-a", f"videos={feed}")
        assert done.returncode == 0, done.stderr[-2000:]
        assert "malformed" not in done.stderr.split("Summary of")[-1]
        assert {c["video_id"] for c in read_jsonl(data_dir / "comments.jsonl")} == {v["id"] for v in videos}


def test_a_seed_file_in_another_encoding_is_one_line(emulator: Emulator, tmp_path: Path) -> None:
    feed = tmp_path / "latin1.csv"
    feed.write_bytes("id,username\n1,müller\n".encode("latin-1"))
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "data"), "crawl", "users", "-a", f"videos={feed}")
    assert_one_line_error(done, "is not UTF-8")
    missing_column = tmp_path / "names.csv"
    missing_column.write_text("name\nx\n")
    done = scrapy_cli(
        tmp_path, cli_env(emulator, tmp_path / "data"), "crawl", "users", "-a", f"videos={missing_column}"
    )
    assert_one_line_error(done, "has no column 'username'")


# -- small things ------------------------------------------------------------------------------


def test_an_at_sign_is_not_sent_and_a_future_range_is_said_plainly(fresh_emulator: Emulator, tmp_path: Path) -> None:
    soon = date.today() + timedelta(days=60)  # in the future, not so far it is a typo
    args = {"usernames": "@someone", "start_date": soon.isoformat(), "end_date": (soon + timedelta(days=1)).isoformat()}
    done = scrapy_cli(tmp_path, cli_env(fresh_emulator, tmp_path / "data"), "crawl", "videos", *spider_args(args))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is in the future" in done.stderr
    [query] = [e["body"]["query"] for e in request_log(fresh_emulator) if e["path"] == api.VIDEO_QUERY_PATH]
    assert query["and"][0]["field_values"] == ["someone"]


def test_the_data_directory_and_its_files_are_private(emulator: Emulator, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = scrapy_cli(tmp_path, cli_env(emulator, data_dir), "crawl", "videos", *spider_args(ONE_WINDOW))
    assert done.returncode == 0
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.rglob("*"):  # the run's log too
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    shared = cli_env(emulator, tmp_path / "shared", TIKTOK_PRIVATE_FILES="false")
    assert scrapy_cli(tmp_path, shared, "crawl", "videos", *spider_args(ONE_WINDOW)).returncode == 0
    assert stat.S_IMODE((tmp_path / "shared" / "videos.jsonl").stat().st_mode) & 0o044

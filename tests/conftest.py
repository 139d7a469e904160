"""Fixtures: the emulator on 127.0.0.1, settings for a crawl against it, crawl helpers.

Test settings are built from the upper-case names of ``tiktok_spiders.settings``
with every environment-derived setting passed explicitly, so a developer's own
``.env`` cannot leak into a test.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider
from scrapy.http import JsonResponse, Request
from scrapy.utils.test import get_crawler

import tiktok_spiders.settings as project_settings
from tiktok_spiders.api import USER_INFO_PATH, endpoint_url
from tiktok_spiders.emulator import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Corpus, CorpusConfig, Emulator, Faults

REAL_RESPONSES = Path(__file__).resolve().parent / "fixtures" / "real-responses"

#: A corpus small enough for many crawls per test run, big enough for every shape.
SMALL = CorpusConfig(seed=7, videos=6000, users=1200, start_date=date(2024, 1, 1), days=120)
STUDY_QUERY = {
    "and": [
        {"field_name": "hashtag_name", "operation": "IN", "field_values": ["climate", "vote", "fyp", "news", "music"]},
        {"field_name": "region_code", "operation": "IN", "field_values": ["US", "GB", "DE"]},
    ]
}
STUDY_ARGS = {
    "hashtags": "climate,vote,fyp,news,music",
    "regions": "US,GB,DE",
    "start_date": "2024-01-01",
    "end_date": "2024-03-30",
    "window_days": "30",
}
STUDY_DATES = (date(2024, 1, 1), date(2024, 3, 30))
#: The study's first window alone (129 videos, 4,023 comments, not 337 and 11,536): for the
#: tests of a later stage where the number of records proves nothing.
MONTH_ARGS = {**STUDY_ARGS, "end_date": "2024-01-30"}
MONTH_DATES = (date(2024, 1, 1), date(2024, 1, 30))
#: Five days of one hashtag, one window: a crawl of a few requests, for what needs any data at all.
ONE_WINDOW = {"hashtags": "climate", "start_date": "2024-01-01", "end_date": "2024-01-05", "window_days": "30"}


#: The files that take longest, longest first, handed out before the rest (``--no-loadscope-reorder``
#: keeps this order): a worker that took one of them last would run it alone while the others had
#: finished.  Each of the rest takes 15 s or less (CPU per file, measured 2026-12-01).
LONGEST_FIRST = (
    "test_scale.py",
    "test_refresh.py",
    "test_purge.py",
    "test_security.py",
    "test_resilience.py",
    "test_report.py",
    "test_console.py",
    "test_world.py",
    "test_demo.py",
    "test_tables.py",
    "test_publish.py",
    "test_rolling.py",
    "test_study.py",
    "test_replies.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order (test_tables builds a study)


def every_fault() -> Faults:
    """Every fault at once, for the tests that collect the truth under all of them: a rate limit
    the crawl reaches in its first second, and later pages refused often enough (15 %) that a
    study of a few hundred pages always meets some."""
    return Faults.all_on(rate_limit_per_second=80.0, daily_requests=100_000, invalid_cursor_rate=0.15)


#: Settings for :func:`every_fault`: retries enough for its rates, and pauses, backoffs and the
#: slowed-down rate capped at 0.02 s, so the crawl goes on at 50 requests a second at the least.
EVERY_FAULT_SETTINGS = {"TIKTOK_RETRY_TIMES": 12, "TIKTOK_RETRY_BACKOFF_MAX": 0.02}


@functools.cache
def small_corpus() -> Corpus:
    """:data:`SMALL`, generated once per test process; each emulator serves a :meth:`~Corpus.copy`."""
    return Corpus(SMALL)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Emulator:
    """One emulator, no faults, for tests that do not change its state; shared by the whole
    session, so its daily quotas are lifted (the quota tests use ``fresh_emulator``)."""
    log = tmp_path_factory.mktemp("emulator") / "requests.jsonl"
    lifted = Faults(daily_requests=10**7, daily_records=10**9)
    with Emulator(small_corpus().copy(), request_log=log, faults=lifted) as api:
        yield api


@pytest.fixture
def fresh_emulator(tmp_path: Path) -> Emulator:
    """An emulator of its own, for tests that switch faults, spend quota or read its log."""
    with Emulator(small_corpus().copy(), request_log=tmp_path / "requests.jsonl", fault_seed=1) as api:
        yield api


def quota_file(data_dir: Path) -> str:
    """A test's own quota file beside its data directory: the user's real one is never touched,
    and tests do not share a day's count."""
    data_dir = Path(data_dir)
    return str(data_dir.with_name(data_dir.name + "-quota.sqlite"))


def settings_for(api: Emulator, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    values = {name: getattr(project_settings, name) for name in dir(project_settings) if name.isupper()}
    values.update(
        TIKTOK_CLIENT_KEY=DEMO_CLIENT_KEY,
        TIKTOK_CLIENT_SECRET=DEMO_CLIENT_SECRET,
        TIKTOK_API_BASE_URL=api.base_url,
        TIKTOK_DATA_DIR=str(data_dir),
        TIKTOK_QUOTA_FILE=quota_file(data_dir),
        TIKTOK_DAILY_REQUEST_LIMIT=100_000,
        TIKTOK_WAIT_FOR_QUOTA_RESET=False,
        TIKTOK_RETRY_BACKOFF_BASE=0.01,
        TIKTOK_RETRY_BACKOFF_MAX=0.2,
        TIKTOK_END_DATE_INCLUSIVE=True,
        TIKTOK_PROGRESS_INTERVAL=0,
        TIKTOK_FEED_FORMATS="jsonl,csv",
        LOG_LEVEL="INFO",
    )
    values.update(overrides)
    return values


async def crawl(spidercls: type, settings: dict[str, Any], **arguments: Any):
    """Run a spider in-process to its end; returns the crawler (stats, finish reason)."""
    crawler = get_crawler(spidercls, settings)
    await crawler.crawl_async(**arguments)
    return crawler


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` and its bytes: to show that nothing was written."""
    return {
        str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()
    }


def assert_one_line_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    """Exit status 2, no traceback, and one error line that says ``fragment``."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], done.stderr[-3000:]


def assert_exactly(got: list, expected: list) -> None:
    """Each expected value once: none missing, none extra, none twice."""
    duplicates = [value for value, n in Counter(got).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} duplicates"
    assert sorted(got) == sorted(expected)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


#: Per request log, how far it was read and what it held: tests poll the log while a crawl runs,
#: and parsing all of it each time cost a core's worth of the suite's CPU.
_read_logs: dict[Path, tuple[int, list[dict[str, Any]]]] = {}


def request_log(api: Emulator) -> list[dict[str, Any]]:
    """Every request the emulator logged so far (the log only grows: read from where it was left)."""
    path = api.request_log_path
    assert path is not None
    offset, entries = _read_logs.get(path, (0, []))
    with path.open("rb") as log:
        log.seek(offset)
        new = log.read()
    complete = new.rfind(b"\n") + 1  # a line being written is read next time
    entries = entries + [json.loads(line) for line in new[:complete].splitlines()]
    _read_logs[path] = (offset + complete, entries)
    return list(entries)


def call(
    api: Emulator,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    fields: str | None = None,
    form: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One raw HTTP request to the emulator: ``(status, parsed body or text, headers)``."""
    url = api.base_url + path + (f"?fields={fields}" if fields else "")
    data = form if form is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), dict(error.headers)
    if "json" in headers.get("Content-Type", ""):
        return status, json.loads(raw), headers
    return status, raw.decode(), headers


def token_for(api: Emulator) -> str:
    form = f"client_key={DEMO_CLIENT_KEY}&client_secret={DEMO_CLIENT_SECRET}&grant_type=client_credentials"
    status, payload, _ = call(api, "/v2/oauth/token/", form=form.encode())
    assert status == 200
    return payload["access_token"]


class ForkServer:
    """Runs ``scrapy`` commands through ``tests/forkserver.py``: one per test worker, started lazily."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def run(
        self, cwd: Path, env: dict[str, str], args: tuple[str, ...], timeout: float, **options: Any
    ) -> subprocess.CompletedProcess:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.forkserver"],
                cwd=Path(__file__).resolve().parent.parent,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,  # unbuffered: a line read is all that was read, so select() sees the next
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        with tempfile.TemporaryDirectory() as scratch:
            out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
            job = {"args": args, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err), **options}
            request = json.dumps(job).encode() + b"\n"
            while request:  # unbuffered writes may be partial
                request = request[self.process.stdin.write(request) :]
            pid = json.loads(self.process.stdout.readline())["pid"]
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
            status = json.loads(self.process.stdout.readline())["status"]
            if not ready:
                raise subprocess.TimeoutExpired(["scrapy", *args], timeout)
            return subprocess.CompletedProcess(
                ["scrapy", *args], status, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")
            )

    def close(self) -> None:
        if self.process is not None:
            self.process.stdin.close()  # type: ignore[union-attr]
            self.process.wait(timeout=60)
            self.process.stdout.close()  # type: ignore[union-attr]


_fork_server = ForkServer()
atexit.register(_fork_server.close)


def scrapy_env(overrides: dict[str, str]) -> dict[str, str]:
    """The environment of a ``scrapy`` command: this one without its TIKTOK_* settings, the test's,
    and the project's settings module (a test's folder is not a Scrapy project)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIKTOK_")}
    return {**env, **overrides, "SCRAPY_SETTINGS_MODULE": "tiktok_spiders.settings"}


def scrapy_cli(
    cwd: Path,
    env_overrides: dict[str, str],
    *args: str,
    timeout: float = 300,
    preexec_fn: Any = None,
    clock_days: float = 0,
    kill_at: tuple[str, str] | None = None,
    file_size: int | None = None,
) -> subprocess.CompletedProcess:
    """``scrapy <args>`` in a process of its own, with only the given TIKTOK_* environment (forked
    from ``tests/forkserver.py``, which has Scrapy imported; with ``preexec_fn``, started anew).

    ``clock_days`` moves the command's clock ahead; ``kill_at`` (``("module:Name.attribute", "before"
    | "after")``) kills it with SIGKILL around that function's first call; ``file_size`` caps its files."""
    env = scrapy_env(env_overrides)
    if preexec_fn is None:
        return _fork_server.run(
            Path(cwd), env, args, timeout, clock_days=clock_days, kill_at=kill_at, file_size=file_size
        )
    return subprocess.run(
        [sys.executable, "-m", "scrapy.cmdline", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=preexec_fn,
    )


def spider_args(arguments: dict[str, str]) -> list[str]:
    """``{"a": "1"}`` -> ``["-a", "a=1"]``."""
    return [part for name, value in arguments.items() for part in ("-a", f"{name}={value}")]


def cli_env(api: Emulator, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "TIKTOK_CLIENT_KEY": DEMO_CLIENT_KEY,
        "TIKTOK_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "TIKTOK_API_BASE_URL": api.base_url,
        "TIKTOK_DATA_DIR": str(data_dir),
        "TIKTOK_QUOTA_FILE": quota_file(data_dir),
        "TIKTOK_RETRY_BACKOFF_BASE": "0.01",
        "TIKTOK_RETRY_BACKOFF_MAX": "0.2",
        **extra,
    }


# -- unit tests: components called directly, nothing sent -------------------------------------


class NoServer:
    """Settings point here; nothing is ever sent."""

    base_url = "http://127.0.0.1:9"


def crawler_for(tmp_path: Path, spider: str = "units", **overrides: Any):
    """A crawler whose components a unit test calls directly: its engine made, never started (so
    stopping the crawl only marks it); the ledger its components open is closed after the test."""
    crawler = get_crawler(Spider, settings_for(NoServer(), tmp_path / "data", **overrides))
    crawler.spider = crawler._create_spider(spider)
    _unit_crawlers.append(crawler)
    crawler.engine = crawler._create_engine()
    crawler.crawling = True  # as during a crawl: the components check it before each request
    return crawler


_unit_crawlers: list[Any] = []


@pytest.fixture(autouse=True)
def _close_unit_crawlers_ledgers() -> Any:
    """The ledger (and the data directory's lock) a unit test's crawler opened, closed after it."""
    yield
    while _unit_crawlers:
        ledger = getattr(_unit_crawlers.pop(), "tiktok_ledger", None)
        if ledger is not None:
            ledger.close()


def api_request(path: str = USER_INFO_PATH, **meta: Any) -> Request:
    return Request(endpoint_url(NoServer.base_url, path), method="POST", meta=meta)


def answer(request: Request, status: int, error: dict[str, str] | None = None, data: Any = None, **headers: str):
    body = json.dumps({"data": data or {}, "error": error or {"code": "ok", "message": ""}}).encode()
    return JsonResponse(
        request.url, status=status, headers={"Content-Type": "application/json", **headers}, body=body, request=request
    )


class Clock:
    """A clock a test moves: a component's ``now``."""

    def __init__(self) -> None:
        self.time = 1000.0

    def __call__(self) -> float:
        return self.time

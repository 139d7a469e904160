"""Benchmarks: our crawl against a sequential one, throughput, memory, and the emulator itself.

Plain Python, no pytest.  Everything runs against the bundled emulator, started
in its own process (so it has a core of its own), and every figure is reported
together with a baseline measured in the same run: the machines are shared and
noisy, so ratios are what to compare.

    python bench/run.py            # everything (~10 minutes)
    python bench/run.py --quick    # smaller sizes, a smoke test of the script
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import aiohttp

from tiktok_spiders import api
from tiktok_spiders.emulator import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Corpus, CorpusConfig
from tiktok_spiders.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("videos", "comments", "users")
QUERY_ARGS = {
    "hashtags": "climate,vote",
    "start_date": "2024-01-01",
    "end_date": "2024-03-30",
}


@dataclass
class Run:
    name: str
    wall: float = 0.0
    requests: int = 0
    records: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    stage_requests: dict[str, int] = field(default_factory=dict)
    stage_wall: dict[str, float] = field(default_factory=dict)


class EmulatorProcess:
    """``python -m tiktok_spiders.emulator`` in a subprocess: the URL is its first line."""

    def __init__(self, config: CorpusConfig, *flags: str, log: Path | None = None) -> None:
        command = [
            sys.executable,
            "-m",
            "tiktok_spiders.emulator",
            "--seed",
            str(config.seed),
            "--videos",
            str(config.videos),
            "--users",
            str(config.users),
            "--start-date",
            config.start_date.isoformat(),
            "--days",
            str(config.days),
            "--daily-requests",
            "10000000",
            "--daily-records",
            "1000000000",
            *flags,
        ]
        if log:
            command += ["--request-log", str(log)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


def scrapy_env(url: str, data_dir: Path, daily_limit: int | None = None) -> dict[str, str]:
    """The environment of a ``scrapy`` command against the emulator at ``url``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIKTOK_")}
    env.update(
        SCRAPY_SETTINGS_MODULE="tiktok_spiders.settings",
        TIKTOK_API_BASE_URL=url,
        TIKTOK_CLIENT_KEY=DEMO_CLIENT_KEY,
        TIKTOK_CLIENT_SECRET=DEMO_CLIENT_SECRET,
        TIKTOK_DATA_DIR=str(data_dir),
        # each measurement counts its own quota: the user's real quota file is never touched
        TIKTOK_QUOTA_FILE=str(data_dir.with_name(data_dir.name + "-quota.sqlite")),
        TIKTOK_DAILY_REQUEST_LIMIT=str(daily_limit or 10_000_000),
    )
    return env


def crawl(
    url: str, data_dir: Path, spider: str, arguments: dict[str, str], *settings: str, daily_limit: int | None = None
) -> tuple[float, float]:
    """One ``scrapy crawl`` in a subprocess: ``(wall seconds, peak RSS in MB)``.

    With a ``daily_limit`` the crawl may stop on the quota (exit status 1) instead of finishing.
    """
    command = [sys.executable, "-m", "scrapy.cmdline", "crawl", spider, "-s", "LOG_LEVEL=WARNING", *settings]
    for name, value in arguments.items():
        command += ["-a", f"{name}={value}"]
    started = time.monotonic()
    process = subprocess.Popen(command, env=scrapy_env(url, data_dir, daily_limit), cwd=data_dir)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in ((0,) if daily_limit is None else (0, 1)):
        raise SystemExit(f"{spider} crawl failed with exit status {process.returncode}")
    return time.monotonic() - started, usage.ru_maxrss / 1024


def run_study(url: str, data_dir: Path, *settings: str) -> tuple[float, dict[str, float], float]:
    """The study as a researcher runs it, ``scrapy study`` with every stage in one process:
    ``(wall seconds, seconds per stage, peak RSS in MB)``, each stage timed from its
    ``== stage`` line to the next (so from its crawler's set-up to its feeds written)."""
    study_file = data_dir / "study.toml"
    videos = "\n".join(f'{name} = "{value}"' for name, value in QUERY_ARGS.items())
    study_file.write_text(f"[study]\nstages = {json.dumps(list(STAGES))}\n\n[videos]\n{videos}\n")
    command = [sys.executable, "-m", "scrapy.cmdline", "study", str(study_file), "-s", "LOG_LEVEL=WARNING", *settings]
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=scrapy_env(url, data_dir), cwd=data_dir, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stdout is not None
    marks: list[tuple[str, float]] = []
    for line in process.stdout:
        if line.startswith("== ") or line.startswith("Study summary"):
            marks.append((line[3:].split(":")[0], time.monotonic()))
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the study failed with exit status {os.waitstatus_to_exitcode(status)}")
    stage_wall = {stage: end - begin for (stage, begin), (_, end) in itertools.pairwise(marks)}
    return wall, stage_wall, usage.ru_maxrss / 1024


def study(name: str, config: CorpusConfig, latency: float, *settings: str) -> Run:
    run = Run(name)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorProcess(config, "--latency", str(latency), log=Path(tmp) / "log") as emu,
    ):
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        run.wall, run.stage_wall, run.peak_rss_mb = run_study(emu.url, data_dir, *settings)
        with (Path(tmp) / "log").open() as handle:
            entries = [json.loads(line) for line in handle]
        for stage, path in zip(STAGES, (api.VIDEO_QUERY_PATH, api.COMMENT_LIST_PATH, api.USER_INFO_PATH), strict=True):
            run.stage_requests[stage] = sum(1 for entry in entries if entry["path"] == path)
        run.requests = sum(run.stage_requests.values())
        ledger = Ledger(data_dir)
        run.records = {
            kind: ledger.count_records(kind) for kind in ("videos", "comments", "users", "users_unavailable")
        }
        ledger.close()
    return run


def startup_seconds(config: CorpusConfig) -> float:
    """The fixed cost of a crawl process: a ``scrapy crawl`` that asks one user (start-up, one request, close)."""
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(config) as emu:
        username = next(iter(Corpus(CorpusConfig(seed=config.seed, videos=10, users=config.users)).users))
        walls = [crawl(emu.url, Path(tmp), "users", {"usernames": username, "fresh": "true"})[0] for _ in range(3)]
    return min(walls)


def latency_bounds(corpus: Corpus, run: Run, latency: float, concurrency: int) -> dict[str, float]:
    """The fastest any client could be, per stage: its requests spread over the concurrency,
    but never shorter than its longest chain of dependent pages.  (The study's bound adds
    one round trip before them all: no request can be sent before the access token.)"""
    videos = corpus.expected_videos(_query(), date(2024, 1, 1), date(2024, 3, 30))
    longest_comment_chain = max((math.ceil(min(v["comment_count"], api.COMMENT_CAP) / 100) or 1) for v in videos)
    chains = {"videos": 3, "comments": longest_comment_chain, "users": 1}
    return {stage: max(run.stage_requests[stage] / concurrency, chains[stage]) * latency for stage in STAGES}


def _query() -> dict:
    return {
        "and": [{"field_name": "hashtag_name", "operation": "IN", "field_values": QUERY_ARGS["hashtags"].split(",")}]
    }


def emulator_throughput(seconds: float) -> float:
    """Requests per second the emulator answers (comment pages, 32 connections)."""
    config = CorpusConfig(videos=2000, users=500)
    corpus = Corpus(config)
    video_ids = [video["id"] for video in corpus.videos if video["comment_count"]][:500]

    async def hammer(url: str) -> int:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
            form = {
                "client_key": DEMO_CLIENT_KEY,
                "client_secret": DEMO_CLIENT_SECRET,
                "grant_type": "client_credentials",
            }
            async with session.post(url + api.TOKEN_PATH, data=form) as response:
                token = (await response.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            target = api.endpoint_url(url, api.COMMENT_LIST_PATH, api.COMMENT_FIELDS)
            deadline = time.monotonic() + seconds
            done = 0

            async def worker(offset: int) -> None:
                nonlocal done
                index = offset
                while time.monotonic() < deadline:
                    body = {"video_id": video_ids[index % len(video_ids)], "max_count": 100}
                    async with session.post(target, json=body, headers=headers) as response:
                        await response.read()
                        assert response.status == 200
                    done += 1
                    index += 32

            await asyncio.gather(*(worker(offset) for offset in range(32)))
            return done

    with EmulatorProcess(config) as emu:
        return asyncio.run(hammer(emu.url)) / seconds


def memory_million(lines: int) -> tuple[float, float, float, float]:
    """Peak RSS (MB) of comments seeded from a ``lines``-line feed with nothing collected yet,
    stopped by a 1,000-request daily quota (start requests must be read lazily); of comments
    and users from the same feed with every seed already done in the ledger, so the crawl
    streams and deduplicates the whole feed; and of storing ``lines`` distinct records
    through the pipelines' ledger."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        ledger = Ledger(data_dir)
        with (data_dir / "videos.jsonl").open("w") as feed:
            for number in range(lines):
                video_id = 7_300_000_000_000_000_000 + number
                feed.write(
                    json.dumps(
                        {
                            "id": video_id,
                            "username": f"user{number % 200_000}",
                            "hashtag_names": ["a", "b"],
                            "video_description": "x" * 80,
                        }
                    )
                    + "\n"
                )
        first_day = data_dir / "first-day"
        first_day.mkdir()
        with EmulatorProcess(CorpusConfig(videos=100, users=50)) as emu:
            _, first_day_rss = crawl(  # the quota's stop is expected: not worth a warning line here
                emu.url,
                first_day,
                "comments",
                {"videos": str(data_dir / "videos.jsonl")},
                "-s",
                "LOG_LEVEL=ERROR",
                daily_limit=1000,
            )
        for spider, count in (("comments", lines), ("users", 200_000)):  # every seed done, as after a finished run
            ledger.finish_seeds(
                spider,
                (str(7_300_000_000_000_000_000 + n) if spider == "comments" else f"user{n}" for n in range(count)),
            )
        ledger.close()
        with EmulatorProcess(CorpusConfig(videos=100, users=50)) as emu:
            _, comments_rss = crawl(emu.url, data_dir, "comments", {})
            _, users_rss = crawl(emu.url, data_dir, "users", {})
        code = (
            "import resource, sys; from tiktok_spiders.ledger import Ledger\n"
            f"ledger = Ledger({str(data_dir / 'dedupe')!r}); n = {lines}\n"
            "for i in range(2 * n):\n"
            "    ledger.add_record('videos', str(7300000000000000000 + i % n), {'id': 7300000000000000000 + i % n, 'x': 'y' * 80})\n"
            "    if i % 1000 == 0: ledger.commit()\n"
            "ledger.close(); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
        )
        dedupe_rss = float(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        )
    return first_day_rss, comments_rss, users_rss, dedupe_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    config = CorpusConfig(
        seed=3,
        videos=3_000 if quick else 10_000,
        users=1_000 if quick else 3_000,
        start_date=date(2024, 1, 1),
        days=120,
    )
    corpus = Corpus(config)
    latency = 0.1
    concurrency = 16

    print(f"emulator: {emulator_throughput(2 if quick else 5):,.0f} requests/s (one process, no latency)", flush=True)

    ours = study("ours (defaults)", config, latency)
    sequential = study("sequential (one request at a time)", config, latency, "-s", "CONCURRENT_REQUESTS=1")
    fast = study("ours, no latency", config, 0.0)
    fixed = startup_seconds(config)
    bounds = latency_bounds(corpus, ours, latency, concurrency)
    bound = latency + sum(bounds.values())
    expected = corpus.expected_videos(_query(), date(2024, 1, 1), date(2024, 3, 30))
    ideal_video_requests = sum(
        math.ceil(len(corpus.search(_query_obj(), start, end)) / 100) or 1 for start, end in _windows()
    )

    print(
        f"\nstudy: {len(expected)} videos over 90 days with their comments and authors, {latency * 1000:.0f} ms latency"
    )
    print(f"{'run (scrapy study, all stages)':38} {'wall s':>8} {'requests':>9} {'records':>9} {'peak RSS MB':>12}")
    for run in (ours, sequential, fast):
        print(f"{run.name:38} {run.wall:8.1f} {run.requests:9} {sum(run.records.values()):9} {run.peak_rss_mb:12.0f}")
    print(f"\nfixed cost of a crawl process (a one-request crawl): {fixed:.1f} s; a study pays it once")
    print(f"speed-up over sequential:            {sequential.wall / ours.wall:6.1f}x   (target >= 8x)")
    print(
        f"bound set by latency and concurrency:  {bound:6.1f} s (the token, then the stages); ours is {ours.wall / bound:.2f}x of it (target <= 1.5x); "
        f"{(ours.wall - fixed) / bound:.2f}x without the fixed cost"
    )
    for stage in STAGES:
        print(
            f"  {stage:10} ours {ours.stage_wall[stage]:5.1f} s, bound {bounds[stage]:5.1f} s; "
            f"no latency {fast.stage_wall[stage]:5.1f} s"
        )
    per_record = ours.stage_requests["videos"] / max(ours.records["videos"], 1)
    print(
        f"video stage: {ours.stage_requests['videos']} requests for {ours.records['videos']} videos; "
        f"ideal (one per 100 per window) {ideal_video_requests}: {ours.stage_requests['videos'] / ideal_video_requests:.3f}x "
        f"({per_record:.4f} requests per record; target within 2%)"
    )
    print(
        f"throughput, no latency:              {sum(fast.records.values()) / fast.wall:8,.0f} records/s end to end "
        f"(target >= 2,000); {sum(fast.records.values()) / (fast.wall - fixed):,.0f} records/s without the fixed cost"
    )

    lines = 100_000 if quick else 1_000_000
    first_day_rss, comments_rss, users_rss, dedupe_rss = memory_million(lines)
    print(
        f"\nmemory with a {lines:,}-line video feed, peak RSS: comments on the first day (1,000-request quota) "
        f"{first_day_rss:.0f} MB; with every seed done: comments {comments_rss:.0f} MB, users {users_rss:.0f} MB; "
        f"deduplicating {lines:,} ids twice over: {dedupe_rss:.0f} MB (target < 300 MB)"
    )
    print(f"(baseline: an idle Python with Scrapy imported: {_baseline_rss():.0f} MB)")


def _query_obj():
    from tiktok_spiders.query import Query

    return Query.parse(_query())


def _windows() -> list[tuple[date, date]]:
    from tiktok_spiders.spiders.videos import VideosSpider

    return VideosSpider(**QUERY_ARGS).windows()


def _baseline_rss() -> float:
    code = "import resource, scrapy, tiktok_spiders.settings; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    main()

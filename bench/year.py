"""A rolling study over a simulated year, at a reduced scale: a day a clock jump.

    python bench/year.py                  # 365 days (about 45 minutes on two cores)
    python bench/year.py --days 60        # a quick look

The sandbox serves a corpus spread over the year; a study file collects every new day
(``end_date = "today-2"``) with its comments and authors, and refreshes every
``TIKTOK_REFRESH_DAYS``; ``tiktok-spiders study`` runs once a simulated day, its clock
moved (a ``sitecustomize`` sets ``tiktok_spiders.clock``), on a key whose daily quota
is small enough that some days fill it.  Now and then the sandbox deletes a share of
what it serves, for the refresh to find.  Prints, per month, the requests per day
against the quota and the backlog (what the plan says is left), and per refresh its
requests: as made, with the profiles proven public by a video just found valid, and as
they would have been without (one request per profile).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tiktok_spiders.emulator import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Emulator, Faults
from tiktok_spiders.emulator.corpus import CorpusConfig

START = date(2025, 1, 1)
CLOCK = """
import os
from datetime import datetime, timedelta, timezone

from tiktok_spiders import clock

_offset = timedelta(seconds=float(os.environ["BENCH_CLOCK_OFFSET"]))
_real = clock.now
clock.now = lambda: _real() + _offset
"""
STUDY = """[study]
stages = ["videos", "comments", "users", "refresh"]

[videos]
hashtags = ["climate", "vote", "news"]
start_date = "{start}"
end_date = "today-2"
window_days = 7

[comments]
min_comments = 1
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--videos", type=int, default=20_000, help="videos in the sandbox over the year")
    parser.add_argument("--users", type=int, default=4_000)
    parser.add_argument("--quota", type=int, default=25, help="the key's requests a day (small: a day fills it)")
    parser.add_argument("--refresh-days", type=int, default=15)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tiktok-year-"))
    (work / "sitecustomize.py").write_text(CLOCK, encoding="utf-8")
    study = work / "study"
    study.mkdir()
    (study / "study.toml").write_text(STUDY.format(start=START.isoformat()), encoding="utf-8")
    corpus = CorpusConfig(seed=11, videos=args.videos, users=args.users, start_date=START, days=args.days + 10)
    faults = Faults(daily_requests=args.quota, daily_records=10**9, compliance_polls=1)
    command = Path(sys.executable).with_name("tiktok-spiders")
    days, refreshes = [], []
    started = time.perf_counter()
    with Emulator(corpus, faults=faults) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SCRAPY_"))}
        env.update(
            PYTHONPATH=str(work),
            TIKTOK_API_BASE_URL=api.base_url,
            TIKTOK_CLIENT_KEY=DEMO_CLIENT_KEY,
            TIKTOK_CLIENT_SECRET=DEMO_CLIENT_SECRET,
            TIKTOK_DATA_DIR=str(study / "data"),
            TIKTOK_QUOTA_FILE=str(work / "quota.sqlite"),
            TIKTOK_DAILY_REQUEST_LIMIT=str(args.quota),
            TIKTOK_REFRESH_DAYS=str(args.refresh_days),
            TIKTOK_COMPLIANCE_POLL_SECONDS="0.01",
            TIKTOK_RETRY_BACKOFF_BASE="0.01",
            TIKTOK_PROGRESS_INTERVAL="0",
        )
        for number in range(args.days):
            today = START + timedelta(days=number + 3)
            offset = (datetime(today.year, today.month, today.day, 12, tzinfo=UTC) - datetime.now(UTC)).total_seconds()
            api.clock_offset = offset  # the sandbox's day, and so its quota's, is the study's
            if number and number % 30 == 0:
                api.corpus.forget(0.01, seed=number)  # a month on: some of what was collected is gone
            done = subprocess.run(
                [str(command), "study", "study.toml"],
                cwd=study,
                env={**env, "BENCH_CLOCK_OFFSET": str(offset)},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode not in (0, 1):
                sys.exit(f"{today}: exit status {done.returncode}\n{done.stderr[-3000:]}")
            manifest = json.loads((study / "data" / "manifest.json").read_text(encoding="utf-8"))
            spent = manifest["requests_per_utc_day"].get(today.isoformat(), 0)
            backlog = re.findall(r"total: (?:at least |about )?([\d,]+) requests", done.stdout)
            days.append((today, spent, int(backlog[-1].replace(",", "")) if backlog and done.returncode else 0))
            if "== refresh: " in done.stdout and "not due" not in done.stdout.split("== refresh: ")[1][:10]:
                inferred = sum(int(n) for n in re.findall(r"no request\): (\d+)", done.stderr))
                asked = sum(
                    int(n) for n in re.findall(r"requests: (\d+) \(", done.stderr.split("Summary of refresh")[-1])[:1]
                )
                if "Summary of refresh" in done.stderr:
                    refreshes.append((today, asked, inferred))
            print(f"\r{today}: {spent} requests", end="", flush=True)
    print(f"\n{args.days} simulated days in {time.perf_counter() - started:.0f} s\n")
    print("month     days  requests a day (mean, max)  days at the quota  backlog at the end of the day (max)")
    months: dict[str, list[tuple[date, int, int]]] = {}
    for day in days:
        months.setdefault(day[0].strftime("%Y-%m"), []).append(day)
    for month, rows in months.items():
        spent = [row[1] for row in rows]
        full = sum(1 for value in spent if value >= args.quota)
        print(
            f"{month}  {len(rows):>4}  {sum(spent) / len(spent):>8.0f} {max(spent):>6} / {args.quota}"
            f"  {full:>17}  {max(row[2] for row in rows):>10}"
        )
    print("\nrefresh     requests made  profiles proven by a video  without that (one request each)  ratio")
    for day, asked, inferred in refreshes:
        without = asked + inferred
        print(f"{day}  {asked:>13}  {inferred:>26}  {without:>31}  {without / max(asked, 1):>5.1f}x")
    print(f"\nthe study: {study}")


if __name__ == "__main__":
    main()

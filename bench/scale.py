"""A year of collection on one machine: feeds, tables, report and refresh at ten million records.

    python bench/scale.py                          # 1M videos, 10M comments, 300k users
    python bench/scale.py --scale 0.02             # the same study at 2 %, in a minute

A synthetic study is written straight into a ledger (no HTTP).  Each step then runs
in a process of its own, and its time and peak resident memory (the process's own
``VmHWM``) are measured:

- feeds: every feed written first, as JSON Lines and CSV; then 1 % more comments
  and a close that grows the feeds, against writing them whole (as every close did);
- tables: ``tiktok-spiders tables`` in each format;
- report: ``tiktok-spiders report``;
- refresh: planning the compliance tasks from every stored id.

The tables as they were made before (whole pandas frames) are measured on the same
study at ``--baseline-scale``, where they fit in memory, beside today's command at
that scale: the ratio compares the two on equal work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tiktok_spiders.ledger import FILENAME

VIDEOS, COMMENTS, USERS = 1_000_000, 10_000_000, 300_000
HASHTAGS = ("climate", "fyp", "news", "election", "pets", "travel", "food", "music")
TEXTS = ("OMG so cute", "no, just no", 'This is "exactly" right', "😂😂😂", "where is this?", "Ça alors")


def _video(rng: random.Random, number: int, users: int) -> dict:
    tags = rng.sample(HASHTAGS, rng.randint(0, 3))
    return {
        "id": 7_200_000_000_000_000_000 + number,
        "create_time": 1_704_000_000 + number * 7,
        "username": f"user{number % users}",
        "region_code": rng.choice(("US", "GB", "DE", "FR", "CA")),
        "video_description": " ".join(f"#{tag}" for tag in tags) + " video",
        "music_id": 7_100_000_000_000_000_000 + rng.randint(0, 10**6),
        "like_count": rng.randint(0, 10**5),
        "comment_count": 10,
        "share_count": rng.randint(0, 10**3),
        "view_count": rng.randint(0, 10**7),
        "hashtag_names": tags,
        "is_stem_verified": rng.random() < 0.1,
        "favorites_count": rng.randint(0, 10**3),
        "video_duration": rng.randint(5, 180),
        "video_label": {"content": ""} if rng.random() < 0.05 else None,
        "collected_at": "2026-12-01T10:00:00Z",
    }


def _comment(rng: random.Random, number: int) -> dict:
    return {
        "id": 7_300_000_000_000_000_000 + number,
        "video_id": 7_200_000_000_000_000_000 + number // 10,
        "text": rng.choice(TEXTS),
        "like_count": rng.randint(0, 500),
        "reply_count": rng.randint(0, 5),
        "parent_comment_id": 7_200_000_000_000_000_000 + number // 10,
        "create_time": 1_704_000_000 + number,
        "collected_at": "2026-12-01T10:00:00Z",
    }


def _user(rng: random.Random, number: int) -> dict:
    return {
        "username": f"user{number}",
        "display_name": f"User {number} ✨",
        "bio_description": "",
        "is_verified": rng.random() < 0.01,
        "follower_count": rng.randint(0, 10**6),
        "following_count": rng.randint(0, 10**3),
        "likes_count": rng.randint(0, 10**7),
        "video_count": rng.randint(0, 10**3),
        "collected_at": "2026-12-01T10:00:00Z",
    }


def make(data_dir: Path, scale: float, first_comment: int = 0, comments: int | None = None) -> None:
    """The synthetic study's records, in the ledger (``comments`` more from ``first_comment``: a later run)."""
    from tiktok_spiders.ledger import Ledger

    rng = random.Random(first_comment + 1)
    ledger = Ledger(data_dir)
    users = max(1, int(USERS * scale))
    if comments is None:
        plan = [
            ("users", users, lambda n: _user(rng, n), "username"),
            ("videos", int(VIDEOS * scale), lambda n: _video(rng, n, users), "id"),
        ]
        comments = int(COMMENTS * scale)
    else:
        plan = []
    plan.append(("comments", comments, lambda n: _comment(rng, first_comment + n), "id"))
    for kind, count, build, key in plan:
        for start in range(0, count, 100_000):
            rows = []
            for number in range(start, min(count, start + 100_000)):
                record = build(number)
                rows.append((kind, str(record[key]), json.dumps(record, ensure_ascii=False)))
            ledger.connection.executemany("INSERT INTO records (kind, key, data) VALUES (?, ?, ?)", rows)
            ledger.commit()
    ledger.close()


def write_feeds(data_dir: Path, kinds: tuple[str, ...] = ("videos", "comments", "users")) -> None:
    from tiktok_spiders.feeds import write_feed
    from tiktok_spiders.kinds import KINDS
    from tiktok_spiders.ledger import Ledger

    ledger = Ledger(data_dir)
    for kind in (kind for kind in KINDS.values() if kind.feed in kinds):
        for fmt in ("jsonl", "csv"):
            write_feed(ledger, kind, data_dir / f"{kind.feed}.{fmt}", fmt)
    ledger.close()


def tables_in_memory(data_dir: Path, out_dir: Path) -> None:
    """The tables as ``scrapy tables`` made them before: every feed a whole pandas frame."""
    from tiktok_spiders import tables

    for name, frame in tables.study_tables(data_dir).items():
        tables.export(frame, out_dir / f"{name}.parquet")


def plan_refresh(data_dir: Path) -> None:
    from tiktok_spiders.ledger import Ledger
    from tiktok_spiders.refreshes import Refreshes

    ledger = Ledger(data_dir)
    Refreshes(ledger).begin()
    ledger.close()


STEPS = {
    "feeds": lambda d, o: write_feeds(d),
    "grown": lambda d, o: write_feeds(d, ("comments",)),
    "whole": lambda d, o: write_feeds(o, ("comments",)),
    "tables-in-memory": tables_in_memory,
    "refresh-plan": lambda d, o: plan_refresh(d),
}


#: Runs a script or module in this interpreter and, at exit, says the process's own peak resident
#: memory (VmHWM): a parent's rusage of its child would count the memory of the process it forked from.
PEAK = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: sys.stderr.write(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')))); "
    "target = sys.argv[1]; sys.argv = sys.argv[1:]; "
    "runpy.run_path(target, run_name='__main__') if target.endswith('.py') "
    "else runpy.run_module(target, run_name='__main__', alter_sys=True)"
)


def measured(target: str, *args: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds and peak resident MB of a script or module run in a process of its own."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, target, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{target} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    kilobytes = re.findall(r"^VmHWM:\s+(\d+) kB$", done.stderr, re.MULTILINE)[-1]
    return seconds, int(kilobytes) / 1024


def step(name: str, data_dir: Path, out_dir: Path) -> tuple[float, float]:
    return measured(__file__, "--step", name, str(data_dir), str(out_dir))


def cli(data_dir: Path, *args: str) -> tuple[float, float]:
    env = {**os.environ, "TIKTOK_DATA_DIR": str(data_dir), "TIKTOK_QUOTA_FILE": str(data_dir / "quota.sqlite")}
    return measured("tiktok_spiders.cli", *args, env=env)


def study(root: Path, scale: float) -> dict[str, tuple[float, float]]:
    data_dir = root / f"study-{scale:g}"
    data_dir.mkdir()
    results = {"synthetic ledger": measured(__file__, "--make", str(scale), str(data_dir))}
    results["feeds, first write"] = step("feeds", data_dir, data_dir)
    new = max(1, int(COMMENTS * scale) // 100)
    measured(__file__, "--more", str(int(COMMENTS * scale)), str(new), str(data_dir))
    results["feeds, +1 % comments, grown"] = step("grown", data_dir, data_dir)
    whole = root / f"whole-{scale:g}"
    whole.mkdir()
    shutil.copy(data_dir / FILENAME, whole / FILENAME)
    results["feeds, +1 % comments, whole"] = step("whole", whole, whole)
    shutil.rmtree(whole)
    for fmt in ("parquet", "csv", "duckdb"):
        results[f"tables --format {fmt}"] = cli(data_dir, "tables", "--format", fmt, "--output-dir", str(root / fmt))
    results["report"] = cli(data_dir, "report")
    results["refresh: planning its tasks"] = step("refresh-plan", data_dir, data_dir)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="of 1M videos, 10M comments, 300k users")
    parser.add_argument("--baseline-scale", type=float, default=0.1, help="where whole frames are measured")
    parser.add_argument("--work", help="a directory for the study (default: a temporary one)")
    parser.add_argument("--step", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--make", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--more", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        STEPS[args.step[0]](Path(args.step[1]), Path(args.step[2]))
        return
    if args.make:
        make(Path(args.make[1]), float(args.make[0]))
        return
    if args.more:
        make(Path(args.more[2]), 0, first_comment=int(args.more[0]), comments=int(args.more[1]))
        return
    with tempfile.TemporaryDirectory(dir=args.work) as directory:
        root = Path(directory)
        rows = []
        for scale in dict.fromkeys((args.baseline_scale, args.scale)):
            counts = f"{int(VIDEOS * scale):,} videos, {int(COMMENTS * scale):,} comments, {int(USERS * scale):,} users"
            print(f"# {counts}", flush=True)
            for name, (seconds, peak) in study(root, scale).items():
                print(f"{name:32} {seconds:8.1f} s {peak:8,.0f} MB", flush=True)
                rows.append((scale, name, seconds, peak))
            if scale == args.baseline_scale:
                data_dir = root / f"study-{scale:g}"
                out = root / "in-memory"
                out.mkdir()
                seconds, peak = step("tables-in-memory", data_dir, out)
                now = next(r for r in rows if r[0] == scale and r[1] == "tables --format parquet")
                print(
                    f"{'tables as before (whole frames)':32} {seconds:8.1f} s {peak:8,.0f} MB"
                    f"   = {seconds / now[2]:.1f}x the time and {peak / now[3]:.1f}x the memory of tables --format parquet",
                    flush=True,
                )
            grown = next(r for r in rows if r[0] == scale and r[1].endswith("grown"))
            whole = next(r for r in rows if r[0] == scale and r[1].endswith("whole"))
            print(f"{'a close that grows the feeds':32} {whole[2] / grown[2]:.1f}x faster than writing them whole")
        if args.scale != args.baseline_scale:  # tables are written in chunks: memory must not grow with the study
            small, big = (
                next(r for r in rows if r[0] == scale and r[1] == "tables --format parquet")
                for scale in (args.baseline_scale, args.scale)
            )
            ratio = big[3] / small[3]
            print(
                f"{'tables, peak memory':32} {ratio:.2f}x at {args.scale / args.baseline_scale:g}x the study "
                f"({'✓' if ratio <= 1.1 else '✗'} ≤ 1.1x: written in chunks, not whole frames)"
            )


if __name__ == "__main__":
    main()

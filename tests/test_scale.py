"""Tables at any size: peak memory stays flat as a study doubles (bench/scale.py measures 10M rows)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiktok_spiders import tables

pytestmark = pytest.mark.slow  # commands on a synthetic study of hundreds of thousands of rows


def synthetic_study(data_dir: Path, comments: int) -> None:
    """Feeds as the spiders write them: ``comments`` comments on a tenth as many videos
    (written as text: ``json.dumps`` per record took most of this test's time)."""
    data_dir.mkdir()
    video = 7_200_000_000_000_000_000
    texts = [json.dumps(text, ensure_ascii=False) for text in ('a "quoted", comma', "so true 😂")]
    with (data_dir / "comments.jsonl").open("w", encoding="utf-8") as feed:
        feed.writelines(
            f'{{"id": {7_300_000_000_000_000_000 + number}, "video_id": {video + number // 10}, '
            f'"text": {texts[number % 2]}, "like_count": {number % 97}, "reply_count": {number % 3}, '
            f'"parent_comment_id": {video + number // 10}, "create_time": {1_704_000_000 + number}, '
            f'"collected_at": "2026-12-01T10:00:00Z"}}\n'
            for number in range(comments)
        )
    with (data_dir / "videos.jsonl").open("w", encoding="utf-8") as feed:
        feed.writelines(
            f'{{"id": {video + number}, "username": "user{number}", "create_time": {1_704_000_000 + number}, '
            f'"hashtag_names": ["climate"], "collected_at": "2026-12-01T10:00:00Z"}}\n'
            for number in range(comments // 10)
        )


#: Runs the command in this interpreter and, at exit, says its own peak resident memory (VmHWM):
#: a parent's rusage would count the pytest process it was forked from.
PEAK = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: sys.stderr.write(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')))); "
    "sys.argv = ['tiktok-spiders', *sys.argv[1:]]; runpy.run_module('tiktok_spiders.cli', run_name='__main__')"
)


def peak_mb(*args: str) -> float:
    """The peak resident memory of ``tiktok-spiders tables`` (its own process, as a user runs it)."""
    env = {**os.environ, "TIKTOK_TABLES_MEMORY_MB": "64"}
    done = subprocess.run([sys.executable, "-c", PEAK, "tables", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    [kilobytes] = re.findall(r"^VmHWM:\s+(\d+) kB$", done.stderr, re.MULTILINE)
    return int(kilobytes) / 1024


def test_the_tables_of_a_study_twice_as_big_need_no_more_memory(tmp_path: Path) -> None:
    peaks = {}
    for comments in (400_000, 800_000):
        data_dir = tmp_path / f"study-{comments}"
        synthetic_study(data_dir, comments)
        peaks[comments] = peak_mb("comments", "--data-dir", str(data_dir), "--output-dir", str(data_dir / "t"))
        table = tables.read_table(data_dir / "t" / "comments.parquet")
        assert table["id"].tolist() == [7_300_000_000_000_000_000 + n for n in range(comments)]
        last_video = (comments - 1) // 10
        url = f"https://www.tiktok.com/@user{last_video}/video/{7_200_000_000_000_000_000 + last_video}"
        assert table["video_url"].iloc[-1] == url
    # whole frames grow by half as a study doubles (200,000 rows: 299 MB, 400,000: 446 MB); chunks
    # grow while DuckDB and the allocators fill their pools (to about 400,000 rows), then stay flat
    assert peaks[800_000] <= peaks[400_000] * 1.1, peaks


def test_ctrl_c_while_tables_are_written_leaves_no_half_file_and_no_staging(tmp_path: Path) -> None:
    data_dir = tmp_path / "study"
    synthetic_study(data_dir, 200_000)
    out = tmp_path / "tables"
    with subprocess.Popen(
        [sys.executable, "-m", "tiktok_spiders.cli", "tables", "--data-dir", str(data_dir), "--output-dir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        deadline = time.monotonic() + 60
        while not (tmp_path / ".tables-staging" / "staging.duckdb").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # while the feeds are being staged
        said, errors = process.communicate(timeout=60)
    assert process.returncode == 1 and "Traceback" not in errors, errors
    assert errors.strip().splitlines()[-1].startswith("interrupted: "), errors
    left = [path.name for path in tmp_path.iterdir() if path != data_dir]
    assert left == [] or (left == ["tables"] and not list(out.iterdir())), "no staging, no .partial, no table"
    assert said == ""

"""Tables at any size, interrupted: no half file, no staging left (``bench/scale.py`` measures their
memory as a study grows tenfold, to ten million comments)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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

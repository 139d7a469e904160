"""The purge: begun, it always finishes, whichever command comes next and whatever stopped it; and
what it purges leaves no trace in any file of the study, read as bytes and as SQL."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from tests.conftest import cli_env, quota_file, read_jsonl, scrapy_cli, small_corpus
from tiktok_spiders.emulator import Emulator, Faults
from tiktok_spiders.files import LOCK_FILENAME
from tiktok_spiders.ledger import FILENAME

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

#: 86 videos, 3,551 comments, 81 authors.
SMALL_STUDY = {"hashtags": "climate,vote,fyp", "start_date": "2024-01-01", "end_date": "2024-01-10"}
KINDS = ("videos", "comments", "replies", "users")


class Study:
    """A study collected once from the module's sandbox, then part of it deleted there: each test
    works on a copy of its data directory, and purges the same deletions."""

    def __init__(self, api: Emulator, data_dir: Path) -> None:
        self.api, self.data_dir = api, data_dir
        self.before = {kind: read_jsonl(data_dir / f"{kind}.jsonl") for kind in KINDS}
        self.deleted = self._delete()

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        fast = {"TIKTOK_DAILY_REQUEST_LIMIT": "100000", "TIKTOK_COMPLIANCE_POLL_SECONDS": "0.01"}
        return {**cli_env(self.api, data_dir, **fast), "TIKTOK_QUOTA_FILE": quota_file(self.data_dir), **extra}

    def _delete(self) -> dict[str, Any]:
        """A user whose name appears in no other record, two videos, two comments with replies."""
        videos, comments = self.before["videos"], self.before["comments"]
        others = {kind: [json.dumps(r) for r in records] for kind, records in self.before.items()}
        users = [u["username"] for u in self.before["users"]]

        def alone(name: str) -> bool:
            mine = {json.dumps(v) for v in videos if v["username"] == name} | {
                json.dumps(u) for u in self.before["users"] if u["username"] == name
            }
            return not any(name in text for records in others.values() for text in records if text not in mine)

        author = next(name for name in users if alone(name) and any(v["username"] == name for v in videos))
        theirs = {v["id"] for v in videos if v["username"] == author}
        quiet = [v for v in videos if v["id"] not in theirs and 0 < (v["comment_count"] or 0) < 40][:2]
        texts = [c["text"] for kind in ("comments", "replies") for c in self.before[kind]]
        replied = [
            c
            for c in comments
            if c["reply_count"] >= 2
            and texts.count(c["text"]) == 1
            and c["video_id"] not in theirs | {v["id"] for v in quiet}
        ][:2]
        deleted = {"users": [author], "videos": [v["id"] for v in quiet], "comments": [c["id"] for c in replied]}
        self.api.corpus.delete(**deleted)
        self.secret = replied[0]["text"]  # a purged comment's text, found in no other record
        self.author = author
        return deleted

    def copy(self, to: Path) -> Path:
        shutil.copytree(self.data_dir, to, symlinks=True)
        return to

    def still_there(self, kind: str) -> list[Any]:
        corpus = self.api.corpus
        records = self.before[kind]
        if kind == "videos":
            return sorted(v["id"] for v in records if corpus.video_valid(v["id"]))
        if kind == "users":
            return sorted(u["username"] for u in records if corpus.unavailable_reason(u["username"]) is None)
        return sorted(c["id"] for c in records if corpus.comment_valid(c["id"]))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    log = tmp_path_factory.mktemp("purge-api") / "requests.jsonl"
    lifted = Faults(daily_requests=10**7, daily_records=10**9, compliance_polls=1)
    with Emulator(small_corpus().copy(), request_log=log, faults=lifted, fault_seed=3) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def study(api: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Study:
    data_dir = tmp_path_factory.mktemp("purge-study") / "data"
    env = {**cli_env(api, data_dir), "TIKTOK_DAILY_REQUEST_LIMIT": "100000"}
    args = [part for k, v in SMALL_STUDY.items() for part in ("-a", f"{k}={v}")]
    for command in (
        ("crawl", "videos", *args),
        ("crawl", "comments"),
        ("crawl", "replies", "-a", "min_replies=2"),
        ("crawl", "users"),
        ("tables",),
        ("tables", "--format", "csv"),
        ("tables", "--format", "duckdb"),
    ):
        done = scrapy_cli(data_dir.parent, env, *command)
        assert done.returncode == 0, (command, done.stderr[-2000:])
    return Study(api, data_dir)


def run(study: Study, data_dir: Path, *args: str, **options: Any) -> subprocess.CompletedProcess:
    return scrapy_cli(data_dir.parent, study.env(data_dir), *args, **options)


def assert_purged_exactly(study: Study, data_dir: Path) -> None:
    """Every file holds what is still served, and no trace of the rest: bytes, tables, SQL."""
    for kind in KINDS:
        key = "username" if kind == "users" else "id"
        expected = study.still_there(kind)
        assert sorted(r[key] for r in read_jsonl(data_dir / f"{kind}.jsonl")) == expected, f"{kind}.jsonl"
        csv = pd.read_csv(data_dir / f"{kind}.csv", dtype={key: str})[key]
        assert sorted(v if kind == "users" else int(v) for v in csv) == expected, f"{kind}.csv"
        for table in ("parquet", "csv"):
            path = data_dir / "tables" / f"{kind}.{table}"
            frame = pd.read_parquet(path) if table == "parquet" else pd.read_csv(path, dtype={key: str})
            assert sorted(v if kind == "users" else int(v) for v in frame[key]) == expected, path.name
        with duckdb.connect(str(data_dir / "tables" / "study.duckdb"), read_only=True) as database:
            stored = database.execute(f'SELECT "{key}" FROM "{kind}"').fetchall()  # noqa: S608
        assert sorted(value for (value,) in stored) == expected, f"{kind} in study.duckdb"
    for path in data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert study.secret.encode() not in data, f"{path} holds a purged comment's text"
            assert study.author.encode() not in data, f"{path} names the purged account"
            assert not path.name.endswith(".partial"), f"{path} left behind"
            if path.suffix in (".csv", ".jsonl", ".json", ".html", ".log", ".md"):  # ids written as text
                for video_id in study.deleted["videos"]:
                    assert str(video_id).encode() not in data, f"{path} names purged video {video_id}"
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    assert "purge_unfinished" not in manifest, manifest.get("purge_unfinished")
    with sqlite3.connect(data_dir / FILENAME) as db:
        assert db.execute("SELECT COUNT(*) FROM purge_steps").fetchone()[0] == 0, "the purge is finished"
        for table, column in (("records", "data"), ("seeds", "seed"), ("runs", "run"), ("purge_tokens", "token")):
            for video_id in study.deleted["videos"]:
                found = db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} LIKE ?", (f"%{video_id}%",))  # noqa: S608
                assert found.fetchone()[0] == 0, f"the ledger's {table} names purged video {video_id}"


def test_the_study_is_purged_from_every_file_and_every_table_of_the_ledger(study: Study, tmp_path: Path) -> None:
    data_dir = study.copy(tmp_path / "data")
    env = study.env(data_dir)
    # traces of the account to purge: a run that named it, a run log that says it failed, a report
    followers = ("crawl", "followers", "-a", f"usernames={study.author},nobody.x")
    study.api.faults.internal_error_rate = 1.0
    try:
        assert scrapy_cli(tmp_path, {**env, "TIKTOK_RETRY_TIMES": "0"}, *followers).returncode == 1
    finally:
        study.api.faults.internal_error_rate = 0.0
    assert scrapy_cli(tmp_path, env, *followers).returncode == 0
    assert study.author in json.dumps(json.loads((data_dir / "manifest.json").read_text())["stages"]["followers"])
    assert scrapy_cli(tmp_path, env, "report").returncode == 0
    report_before = (data_dir / "report.html").read_bytes()
    logs = list((data_dir / "logs").glob("*.log"))
    assert any(study.author in path.read_text(encoding="utf-8") for path in logs), "a log names the account"
    # what killed runs of tables and report leave behind: the study's data, a partial table 0644
    (data_dir / ".tables-staging").mkdir()
    (data_dir / ".tables-staging" / "staging.duckdb").write_text(study.secret, encoding="utf-8")
    partial = data_dir / "tables" / "videos.parquet.partial"
    partial.write_text(study.secret, encoding="utf-8")
    partial.chmod(0o644)

    done = run(study, data_dir, "refresh", "-a", "confirm_purge=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Summary of refresh: complete." in done.stderr and "Traceback" not in done.stderr
    assert_purged_exactly(study, data_dir)
    assert (data_dir / "report.html").read_bytes() != report_before, "the report is rewritten, not left as it was"
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    assert "[purged],nobody.x" in json.dumps(manifest["stages"]["followers"]["runs"])
    [refresh] = manifest["refreshes"]
    assert refresh["outcome"] == "complete" and refresh["purged"]["users"] == 1


#: Where a purge can be killed: inside the ledger's transaction, before and inside each file's
#: rewrite, and around the ledger's compaction.
KILL_POINTS = [
    ("tiktok_spiders.purge:Purge._scrub_ledger", "before", "refresh"),
    ("tiktok_spiders.purge:Purge._step_feeds", "before", "tables"),
    ("tiktok_spiders.feeds:write_feed", "after", "crawl"),
    ("tiktok_spiders.files:_replace", "before", "refresh"),
    ("tiktok_spiders.purge:Purge._step_manifest", "before", "report"),
    ("tiktok_spiders.staging:write_table", "after", "tables"),
    ("tiktok_spiders.staging:write_database", "before", "refresh"),
    ("tiktok_spiders.purge:Purge._step_logs", "before", "crawl"),
    ("tiktok_spiders.purge:Purge._step_leftovers", "before", "tables"),
    ("tiktok_spiders.ledger:Ledger.compact", "before", "refresh"),
    ("tiktok_spiders.ledger:Ledger.compact", "after", "tables"),
]


@pytest.mark.parametrize(("target", "when", "then"), KILL_POINTS, ids=lambda v: str(v).rsplit(":", 1)[-1])
def test_kill_9_at_any_step_of_a_purge_then_the_next_command_finishes_it(
    study: Study, tmp_path: Path, target: str, when: str, then: str
) -> None:
    data_dir = study.copy(tmp_path / "data")
    killed = run(study, data_dir, "refresh", "-a", "confirm_purge=true", kill_at=(target, when))
    assert killed.returncode == -9, killed.stderr[-2000:]
    unfinished = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8")).get("purge_unfinished")
    if target.endswith(("_step_tables", "write_table", "write_database", "_step_logs", "_step_leftovers")):
        assert unfinished, "the manifest says the purge is not finished"
    command = {"refresh": ("refresh",), "tables": ("tables",), "report": ("report",), "crawl": ("crawl", "users")}
    done = run(study, data_dir, *command[then])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    if then != "refresh" or "scrub" not in target:
        assert "finishing it now" in done.stderr, done.stderr[-2000:]
    assert_purged_exactly(study, data_dir)


def test_a_disk_that_fills_while_the_ledger_is_compacted_then_the_purge_finishes(study: Study, tmp_path: Path) -> None:
    data_dir = study.copy(tmp_path / "data")
    killed = run(
        study,
        data_dir,
        "refresh",
        "-a",
        "confirm_purge=true",
        kill_at=("tiktok_spiders.ledger:Ledger.compact", "before"),
    )
    assert killed.returncode == -9
    ledger_size = (data_dir / FILENAME).stat().st_size
    full = run(study, data_dir, "tables", file_size=ledger_size // 4)
    assert full.returncode == 1, full.stderr[-2000:]
    assert "purge_unfinished" not in json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    [line] = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert "could not rewrite the ledger's free pages after the purge" in line and "Traceback" not in full.stderr
    done = run(study, data_dir, "tables")
    assert done.returncode == 0, done.stderr[-2000:]
    assert_purged_exactly(study, data_dir)


def test_tables_and_report_wait_for_no_one_while_a_refresh_writes(study: Study, tmp_path: Path) -> None:
    data_dir = study.copy(tmp_path / "data")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from tiktok_spiders.files import DataDirLock; "
            "lock = DataDirLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True); time.sleep(60)",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for command in (("tables",), ("report",), ("refresh",), ("crawl", "users")):
            started = time.monotonic()
            done = run(study, data_dir, *command)
            assert done.returncode == 2, (command, done.stderr[-1000:])
            [line] = done.stderr.strip().splitlines()
            assert f"is in use by process {holder.pid} since 20" in line, line
            assert time.monotonic() - started < 30
        assert f"process {holder.pid} since" in (data_dir / LOCK_FILENAME).read_text(encoding="utf-8")
    finally:
        holder.kill()
        holder.communicate()

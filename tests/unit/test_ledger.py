"""The ledger and the data directory's lock: what a crawl's state is on disk, and who may hold it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tiktok_spiders.files import DataDirBusy, DataDirLock
from tiktok_spiders.ledger import DONE, FAILED, OPEN, Ledger


def test_a_seed_goes_on_from_its_last_committed_page(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.finish_page("videos", "window-1", cursor=100, search_id="s1", has_more=True)
    ledger.finish_page("videos", "window-1", cursor=200, search_id="s1", has_more=True)
    state = ledger.seed("videos", "window-1")
    assert state is not None and (state.status, state.cursor, state.search_id, state.pages) == (OPEN, 200, "s1", 2)
    ledger.finish_page("videos", "window-1", cursor=None, search_id="s1", has_more=False)
    ledger.fail_seed("videos", "window-2", "http_500 after 8 retries")
    assert ledger.seed_counts("videos") == {DONE: 1, FAILED: 1}
    assert ledger.failed_seeds("videos") == [("window-2", "http_500 after 8 retries")]
    ledger.close()
    reopened = Ledger(tmp_path)
    assert reopened.seed("videos", "window-1") is not None, "committed: it outlives the process"
    reopened.close()


def test_seeds_finished_at_once_are_done_and_a_page_later_changes_them_as_any(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.finish_page("comments", "7", cursor=100, search_id=None, has_more=True)
    ledger.finish_seeds("comments", (str(n) for n in range(5, 10)))
    assert ledger.seed_counts("comments") == {DONE: 5}, "the open one is done too, counted once"
    ledger.close()
    reopened = Ledger(tmp_path)
    assert all(reopened.seed("comments", str(n)).status == DONE for n in range(5, 10))  # type: ignore[union-attr]
    reopened.close()


def test_one_holder_at_a_time_even_in_one_process_and_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(DataDirBusy, match=r"in use by process \d+ since"):
        DataDirLock(tmp_path).acquire()
    with pytest.raises(DataDirBusy):
        Ledger(tmp_path, lock=True)  # a second ledger is a second holder: a command lends its own
    first.release()
    first.release()  # twice is harmless
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from tiktok_spiders.files import "
            "DataDirLock; lock = DataDirLock(Path(sys.argv[1])); lock.acquire(); print(flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"\n"
        with pytest.raises(DataDirBusy, match=f"process {holder.pid} "):
            DataDirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    with DataDirLock(tmp_path):  # killed: the OS let go of its lock
        assert "process" in (tmp_path / ".tiktok-lock").read_text()

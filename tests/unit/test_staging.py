"""The DuckDB staging under Ctrl-C: whatever DuckDB makes of it, ``tables`` and ``report`` stop as Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tiktok_spiders import staging


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the handler runs in here, at once


def _reported_as_duckdbs_own_error(tmp_path: Path) -> None:
    try:
        _ctrl_c()
    except KeyboardInterrupt as error:
        raise RuntimeError("Query interrupted") from error


def _dropped(tmp_path: Path) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        _ctrl_c()


def _pressed_while_duckdb_stages_chunks(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": range(100_000), "text": ["so true"] * 100_000})
    with staging.StudyDatabase(tmp_path / "staging") as study:
        study.connection.execute("CREATE TABLE t (id BIGINT, text VARCHAR)")
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            study.connection.register("incoming", frame)
            study.connection.execute("INSERT INTO t SELECT * FROM incoming")
            study.connection.unregister("incoming")


@pytest.mark.parametrize("work", [_reported_as_duckdbs_own_error, _dropped, _pressed_while_duckdb_stages_chunks])
def test_ctrl_c_ends_tables_and_report_as_ctrl_c_whatever_duckdb_makes_of_it(tmp_path: Path, work: Any) -> None:
    """DuckDB turns a KeyboardInterrupt into a RuntimeError "Query interrupted", an
    InvalidInputException, or nothing; ``tables`` and ``report`` must still say "interrupted"."""
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), staging.ctrl_c_stops():
        work(tmp_path)
    assert signal.getsignal(signal.SIGINT) is before
    assert not (tmp_path / "staging").exists()

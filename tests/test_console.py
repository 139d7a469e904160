"""The installed ``tiktok-spiders`` command, run from a study folder of the researcher's own."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import STUDY_ARGS, cli_env, request_log, scrapy_cli
from tiktok_spiders import api, cli
from tiktok_spiders.emulator import Emulator

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

COMMAND = Path(sys.executable).with_name("tiktok-spiders")
STUDY_FILE = """[study]
stages = ["videos", "comments", "replies", "users"]
data_dir = "data"

[videos]
hashtags = "climate,vote"
start_date = "2024-01-01"
end_date = "2024-01-31"
"""


@pytest.fixture
def study_folder(tmp_path: Path, emulator: Emulator) -> Path:
    """A folder outside the checkout with nothing but a .env, as a researcher makes one."""
    folder = tmp_path / "my study"
    folder.mkdir()
    env = cli_env(emulator, folder / "data", TIKTOK_DAILY_REQUEST_LIMIT="100000")
    env.pop("TIKTOK_DATA_DIR")
    (folder / ".env").write_text("".join(f"{key}={value}\n" for key, value in env.items()), encoding="utf-8")
    return folder


def run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SCRAPY_"))}
    return subprocess.run(
        [str(COMMAND), *args], cwd=folder, env=environment, capture_output=True, text=True, timeout=300, check=False
    )


def run_on_a_terminal(folder: Path, *args: str) -> str:
    """What a researcher sees: stderr on a terminal 120 columns wide."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SCRAPY_"))}
    process = subprocess.Popen(
        [str(COMMAND), *args], cwd=folder, env=environment, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    assert process.wait(timeout=300) == 0, seen.decode(errors="replace")[-3000:]
    os.close(controller)
    return seen.decode("utf-8", "replace")


def test_the_installed_command_runs_a_crawl_a_study_and_tables_from_a_study_folder(
    emulator: Emulator, study_folder: Path
) -> None:
    assert COMMAND.is_file(), "pip install puts the console command beside the interpreter"
    ten_days = ["-ahashtags=climate", "-astart_date=2024-01-01", "-aend_date=2024-01-10"]
    done = run(study_folder, "crawl", "videos", *ten_days)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (study_folder / "data" / "videos.jsonl").is_file(), "the data go to the study folder, not the checkout"

    two_weeks = STUDY_FILE.replace('end_date = "2024-01-31"', 'end_date = "2024-01-14"')
    (study_folder / "climate.toml").write_text(two_weeks, encoding="utf-8")
    done = run(study_folder, "study", "climate.toml")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Plan (requests still to spend" in done.stdout and "Study summary" in done.stdout
    done = run(study_folder, "tables")
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name for p in (study_folder / "data" / "tables").glob("*.parquet")} >= {
        "videos.parquet",
        "comments.parquet",
        "replies.parquet",
        "users.parquet",
    }


def test_a_default_crawl_shows_a_bar_and_the_summary_and_verbose_shows_scrapy(
    emulator: Emulator, study_folder: Path
) -> None:
    args = ["crawl", "videos", *[f"-a{k}={v}" for k, v in STUDY_ARGS.items()]]
    shown = run_on_a_terminal(study_folder, *args)
    assert re.search(r"videos: 100%\|.*\| 3/3 \[", shown), shown  # the bar: all three windows
    assert "Summary of videos: complete." in shown
    assert "Scrapy 2." not in shown and "Enabled extensions" not in shown and "Dumping Scrapy stats" not in shown
    log_path = re.search(r"Scrapy's log of this run: (\S+\.log)", shown).group(1)
    log = (study_folder / log_path).read_text(encoding="utf-8")
    assert "Enabled extensions" in log and "Dumping Scrapy stats" in log, "the rest is in the run's log file"
    assert len([line for line in shown.splitlines() if line.strip()]) < 20

    verbose = run(study_folder, *args, "-a", "fresh=true", "--verbose")
    assert verbose.returncode == 0
    assert "Scrapy 2." in verbose.stderr and "Enabled extensions" in verbose.stderr
    assert "Summary of videos: complete." in verbose.stderr


def test_without_a_terminal_progress_is_a_line_and_bad_input_writes_no_log(
    emulator: Emulator, study_folder: Path
) -> None:
    done = run(study_folder, "crawl", "videos", "-a", "start_date=2024-01-01")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    assert not (study_folder / "data").exists(), "exit status 2 writes nothing, not even a log"
    with (study_folder / ".env").open("a", encoding="utf-8") as env:
        env.write("TIKTOK_PROGRESS_INTERVAL=0.2\nTIKTOK_RETRY_BACKOFF_BASE=0.3\n")
    emulator.faults.latency = 0.05
    try:
        done = run(study_folder, "crawl", "videos", *[f"-a{k}={v}" for k, v in STUDY_ARGS.items()])
    finally:
        emulator.faults.latency = 0.0
    assert done.returncode == 0
    assert re.search(r"^Progress: \d+ of 3 windows done", done.stderr, re.MULTILINE), done.stderr
    assert re.search(r"^Progress: .*requests left today$", done.stderr, re.MULTILINE), "the quota, without a bar"
    assert "\r" not in done.stderr, "no bar where no one watches"
    # resumed: the windows done earlier are counted as such from the first line, not as this run's speed
    more = {**STUDY_ARGS, "end_date": "2024-05-30"}
    emulator.faults.latency = 0.4  # long enough for a line or two
    try:
        resumed = run(study_folder, "crawl", "videos", *[f"-a{k}={v}" for k, v in more.items()])
    finally:
        emulator.faults.latency = 0.0
    assert resumed.returncode == 0
    lines = [line for line in resumed.stderr.splitlines() if line.startswith("Progress:")]
    assert lines and all("done (3 earlier)" in line for line in lines), lines
    assert any(re.search(r"about \d+:\d\d left", line) for line in lines), lines


def test_a_plan_says_what_the_next_stages_cost_within_five_percent(emulator: Emulator, study_folder: Path) -> None:
    (study_folder / "climate.toml").write_text(STUDY_FILE, encoding="utf-8")
    # the crawls around the plan are forked (tests/forkserver.py), from the folder and its .env
    done = scrapy_cli(study_folder, {}, "crawl", "videos", "-a", "hashtags=climate,vote",
                      "-a", "start_date=2024-01-01", "-a", "end_date=2024-01-31")  # fmt: skip
    assert done.returncode == 0
    before = len(request_log(emulator))
    done = run(study_folder, "study", "climate.toml", "--plan")
    assert done.returncode == 0 and len(request_log(emulator)) == before, "a plan spends nothing"
    planned = {
        match.group(1): int(match.group(2).replace(",", ""))
        for match in re.finditer(r"^  (\w+) +(?:at least )?([\d,]+) requests", done.stdout, re.MULTILINE)
    }
    assert "replies" not in planned and "unknown until" in done.stdout  # its seed feed is not there yet
    for stage in ("comments", "users"):
        start = len(request_log(emulator))
        assert scrapy_cli(study_folder, {}, "crawl", stage).returncode == 0
        spent = sum(1 for entry in request_log(emulator)[start:] if entry["path"] != api.TOKEN_PATH)
        assert abs(planned[stage] - spent) <= 0.05 * spent, (stage, planned[stage], spent)


def test_a_typo_in_the_last_stage_spends_nothing(emulator: Emulator, study_folder: Path) -> None:
    (study_folder / "typo.toml").write_text(STUDY_FILE + '\n[users]\nfeilds = "display_name"\n', encoding="utf-8")
    before = len(request_log(emulator))
    done = run(study_folder, "study", "typo.toml")
    assert done.returncode == 2
    assert "unknown argument 'feilds' for spider users" in done.stderr and "Traceback" not in done.stderr
    assert len(request_log(emulator)) == before, "not one request"
    assert not (study_folder / "data").exists()


def test_hashtags_and_usernames_with_their_signs_are_taken_with_a_note(emulator: Emulator, study_folder: Path) -> None:
    done = run(study_folder, "crawl", "videos", "-a", "hashtags=#climate", "-a", "usernames=@nobody",
               "-a", "start_date=2024-01-01", "-a", "end_date=2024-01-02")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'#climate' is sent as 'climate'" in done.stderr and "'@nobody' is sent as 'nobody'" in done.stderr


#: Loaded by Python at start (``sitecustomize``): presses Ctrl-C, a real SIGINT, as the command
#: begins to import Scrapy's command line, so it lands while the imports run, every time.
CTRL_C_DURING_IMPORTS = """
import os, signal, sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "scrapy.cmdline":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
"""


def test_ctrl_c_while_the_command_starts_is_one_line(study_folder: Path, tmp_path: Path) -> None:
    """Pressed at once (a typo seen too late): Scrapy, pandas and DuckDB are still being loaded."""
    (tmp_path / "sitecustomize.py").write_text(CTRL_C_DURING_IMPORTS, encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SCRAPY_"))}
    environment["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [str(COMMAND), "tables"],
        cwd=study_folder,
        env=environment,
        capture_output=True,
        timeout=60,
        # as at a terminal: a shell's background job (`pytest &`) would pass SIGINT on ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.returncode == 1 and done.stderr.decode().splitlines() == [cli.INTERRUPTED], done.stderr.decode()
    assert done.stdout == b""


def test_the_command_says_what_it_does_and_a_typo_is_one_line(tmp_path: Path) -> None:
    done = run(tmp_path, "--help")
    assert done.returncode == 0 and "study" in done.stdout and "genspider" not in done.stdout
    done = run(tmp_path, "stduy", "climate.toml")
    assert done.returncode == 2 and done.stderr.startswith("error: unknown command 'stduy' (one of: study,")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("args", [(), ("list",), ("--version",)])
def test_output_read_by_a_reader_that_went_away_ends_without_a_traceback(tmp_path: Path, args: tuple[str, ...]) -> None:
    """``tiktok-spiders list | head -1``: the reader may close the pipe before the command writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before the first line: every write to the pipe fails
    try:
        done = subprocess.run(
            [str(COMMAND), *args], cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE, timeout=120, check=False
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1 and done.stderr == b"", done.stderr.decode()

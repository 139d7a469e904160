"""``python -m tiktok_spiders.demo``: a whole study against the bundled emulator.

Starts the sandbox API, then runs every stage exactly as a researcher would,
with ``tiktok-spiders study`` on ``demo_study.toml`` (videos → comments → replies → users →
followers, following, liked, pinned and reposted videos → playlists); then, as
if weeks had passed, deletes a few percent of the sandbox's content and runs
``tiktok-spiders refresh``, which purges it from the study as TikTok's terms require;
then writes the Parquet tables (``tiktok-spiders tables``) and says where the files are.
Nothing here touches the real API.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tiktok_spiders.emulator import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Emulator, Faults
from tiktok_spiders.ledger import FILENAME

STUDY_FILE = Path(__file__).with_name("demo_study.toml")
#: The installed ``tiktok-spiders`` command, run by this interpreter.
COMMAND = (sys.executable, "-m", "tiktok_spiders.cli")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tiktok_spiders.demo", description=__doc__)
    parser.add_argument("--data-dir", default="demo-data", help="where the demo study is written (replaced)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    if data_dir.exists():
        if not (data_dir / FILENAME).exists():
            print(f"error: {data_dir} exists and is not a tiktok-spiders data directory", file=sys.stderr)
            return 2
        shutil.rmtree(data_dir)
    # The sandbox's quota is lifted (and so is ours): a whole demo study needs more than
    # a real day's 1,000 requests.  A real study spreads over days; resume makes that work.
    with Emulator(faults=Faults(daily_requests=10**6, daily_records=10**8)) as api:
        print(f"Sandbox Research API at {api.base_url}")
        env = {key: value for key, value in os.environ.items() if not key.startswith("TIKTOK_")}
        env.update(
            SCRAPY_SETTINGS_MODULE="tiktok_spiders.settings",
            TIKTOK_API_BASE_URL=api.base_url,
            TIKTOK_CLIENT_KEY=DEMO_CLIENT_KEY,
            TIKTOK_CLIENT_SECRET=DEMO_CLIENT_SECRET,
            TIKTOK_DATA_DIR=str(data_dir),
            # the sandbox's key gets a quota file of its own, inside the demo's directory
            TIKTOK_QUOTA_FILE=str(data_dir / ".sandbox-quota.sqlite"),
            TIKTOK_PROGRESS_INTERVAL="5",
            TIKTOK_DAILY_REQUEST_LIMIT="1000000",
            TIKTOK_COMPLIANCE_POLL_SECONDS="0.2",  # the sandbox's tasks take two polls
        )
        print(f"$ tiktok-spiders study {STUDY_FILE}", flush=True)
        done = subprocess.run([*COMMAND, "study", str(STUDY_FILE)], env=env, check=False)
        if done.returncode != 0:
            print(f"error: the study ended with exit status {done.returncode}", file=sys.stderr)
            return done.returncode
        api.corpus.forget(0.03)  # weeks later: some videos, comments and accounts are gone
        # A gone video takes its comments: here more than the fifth of them that a refresh purges
        # unasked (TIKTOK_REFRESH_MAX_PURGE_SHARE).  The sandbox really deleted them: confirm.
        print(
            "\n$ tiktok-spiders refresh -a confirm_purge=true   # weeks later: purge what TikTok no longer serves",
            flush=True,
        )
        done = subprocess.run([*COMMAND, "refresh", "-a", "confirm_purge=true"], env=env, check=False)
        if done.returncode != 0:
            print(f"error: the refresh ended with exit status {done.returncode}", file=sys.stderr)
            return done.returncode
    print("\n$ tiktok-spiders tables   # typed, joined tables for pandas", flush=True)
    subprocess.run([*COMMAND, "tables"], env=env, check=True)
    print("\n$ tiktok-spiders tables --pseudonymize   # the same, to share: no username, no display name", flush=True)
    subprocess.run([*COMMAND, "tables", "--pseudonymize"], env=env, check=True)
    print(f"\nDone. The study is in {data_dir}:")
    for path in sorted(data_dir.glob("*.*")):
        if not path.name.startswith("."):
            print(f"  {path}  ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m tiktok_spiders.emulator``: run the sandbox Research API until interrupted.

The first line of stdout is its base URL, then the demo client key and secret,
so a script can start it on port 0 and read where it listens.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from dataclasses import fields
from datetime import date

from tiktok_spiders.emulator.corpus import CorpusConfig
from tiktok_spiders.emulator.faults import Faults
from tiktok_spiders.emulator.server import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Emulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tiktok_spiders.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--request-log", help="append every request (JSON Lines) to this file")
    corpus = parser.add_argument_group("corpus")
    defaults = CorpusConfig()
    corpus.add_argument("--seed", type=int, default=defaults.seed)
    corpus.add_argument("--videos", type=int, default=defaults.videos)
    corpus.add_argument("--users", type=int, default=defaults.users)
    corpus.add_argument("--start-date", type=date.fromisoformat, default=defaults.start_date)
    corpus.add_argument("--days", type=int, default=defaults.days)
    limits = parser.add_argument_group("limits and faults (see Faults)")
    for switch in fields(Faults):
        flag = "--" + switch.name.replace("_", "-")
        help_text = f"{switch.metadata['help']} (default: {switch.default})"
        if isinstance(switch.default, bool):
            limits.add_argument(flag, action=argparse.BooleanOptionalAction, default=switch.default, help=help_text)
        else:
            limits.add_argument(flag, type=type(switch.default), default=switch.default, help=help_text)
    limits.add_argument("--all-faults", action="store_true", help="switch every fault on at once")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = CorpusConfig(
        seed=args.seed, videos=args.videos, users=args.users, start_date=args.start_date, days=args.days
    )
    chosen = {name: getattr(args, name) for name in Faults.names()}
    defaults = vars(Faults())
    faults = Faults(**chosen)
    if args.all_faults:
        changed = {name: value for name, value in chosen.items() if value != defaults[name]}
        faults = Faults.all_on(**changed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Emulator(config, faults=faults, host=args.host, port=args.port, request_log=args.request_log) as emulator:
        print(emulator.base_url, flush=True)
        print(f"TIKTOK_CLIENT_KEY={DEMO_CLIENT_KEY}", flush=True)
        print(f"TIKTOK_CLIENT_SECRET={DEMO_CLIENT_SECRET}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

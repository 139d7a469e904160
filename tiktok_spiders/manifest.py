"""Provenance: what produced a data directory, written beside its feeds.

Every crawl that closes adds a run to the ledger (its arguments, the query as
sent, when its first and last pages were fetched, requests, records, outcome),
and ``manifest.json`` is rewritten from the ledger: the tool and Scrapy versions,
the API's base URL (never a credential) and, per stage, its runs and totals.  A
published dataset can say exactly what query, tool and dates made it.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiktok_spiders import clock
from tiktok_spiders.api import COVERAGE_CHANGE
from tiktok_spiders.files import atomic_write
from tiktok_spiders.kinds import KINDS, VIDEO
from tiktok_spiders.refreshes import Refreshes

if TYPE_CHECKING:
    from tiktok_spiders.ledger import Ledger
    from tiktok_spiders.spiders.base import ApiSpider

FILENAME = "manifest.json"
#: The stages whose records are videos, which TikTok's coverage change widened.
VIDEO_STAGES = frozenset(kind.spider for kind in KINDS.values() if kind.identity and kind.identity.category == VIDEO)


def run_record(spider: ApiSpider, outcome: str) -> dict[str, Any]:
    """A crawl that closes, for the ledger's runs and this manifest: what was asked and what came
    of it, never a credential."""
    stats = spider.crawler.stats
    started = stats.get_value("start_time")
    return {
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ") if started else None,
        "finished": clock.stamp(),
        "outcome": outcome,
        "arguments": spider.arguments,
        "sent": spider.sent(),
        "first_page_at": spider.first_page_at,
        "last_page_at": spider.last_page_at,
        "requests": stats.get_value("tiktok/requests", 0),
        "new_records": {kind.feed: stats.get_value(f"tiktok/records/{kind.feed}", 0) for kind in spider.kinds},
        "records_in_ledger": {kind.feed: spider.ledger.count_records(kind.feed) for kind in spider.kinds},
        "seeds": spider.final_tally(),
        "seeds_this_run": {key: spider.progress[key] for key in ("done", "failed")},
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def tool_versions() -> dict[str, str]:
    return {
        "tiktok-spiders": _version("tiktok-spiders"),
        "scrapy": _version("scrapy"),
        "python": platform.python_version(),
    }


def coverage_note(first: str | None, last: str | None) -> str | None:
    """Which side of TikTok's coverage change of 2026-02-26 a stage was collected on."""
    if first is None or last is None:
        return None
    widened = "every public video, including those not eligible for the For You feed"
    if first >= COVERAGE_CHANGE:
        return f"collected after the API's coverage change of {COVERAGE_CHANGE} ({widened})"
    if last < COVERAGE_CHANGE:
        return f"collected before the API's coverage change of {COVERAGE_CHANGE} (since then: {widened})"
    return (
        f"collected both before and after the API's coverage change of {COVERAGE_CHANGE} ({widened} "
        "since then): counts from the two periods are not comparable"
    )


def manifest(ledger: Ledger) -> dict[str, Any]:
    """The manifest's content, from the ledger alone."""
    stages: dict[str, dict[str, Any]] = {}
    for run in ledger.runs():
        stage = stages.setdefault(
            run["spider"], {"first_collected_at": None, "last_collected_at": None, "requests": 0, "runs": []}
        )
        stage["runs"].append(run)
        stage["requests"] += run["requests"]
        if run["first_page_at"]:  # ISO 8601 in UTC: text order is time order
            stage["first_collected_at"] = min(filter(None, (stage["first_collected_at"], run["first_page_at"])))
            stage["last_collected_at"] = max(filter(None, (stage["last_collected_at"], run["last_page_at"])))
    for stage in stages.values():
        stage["records"] = stage["runs"][-1]["records_in_ledger"]
        stage["outcome"] = stage["runs"][-1]["outcome"]
        stage["seeds"] = stage["runs"][-1]["seeds"]  # the one tally the summaries print
    for name in VIDEO_STAGES & stages.keys():
        stages[name]["api_coverage"] = coverage_note(
            stages[name]["first_collected_at"], stages[name]["last_collected_at"]
        )
    return (
        {
            "written_at": clock.stamp(),
            "tool": tool_versions(),
            "api_base_url": ledger.meta("api_base_url"),
            "data_directory_created": ledger.meta("created"),
            "requests_per_utc_day": ledger.requests_per_day(),
            "stages": stages,
            # when the study was refreshed, and how many records each refresh checked and purged (never which)
            "refreshes": Refreshes(ledger).history(),
        }
        | _unfinished(ledger)
        | _pseudonymized(ledger)
    )


def _pseudonymized(ledger: Ledger) -> dict[str, Any]:
    """Where pseudonymised tables were written, and what each column got (``tables --pseudonymize``)."""
    note = ledger.meta("pseudonymized_tables")
    return {"pseudonymized_tables": json.loads(note)} if note else {}


def _unfinished(ledger: Ledger) -> dict[str, Any]:
    """The files a begun purge has still to rewrite, when there are any: until then the study still
    holds what was purged from the ledger, and the next command finishes it."""
    from tiktok_spiders.purge import STEP_NAMES, Purge

    steps = [step for step in Purge.pending_in(ledger) if step not in ("manifest", "compact")]
    return {"purge_unfinished": [STEP_NAMES[step] for step in steps]} if steps else {}


def write_manifest(ledger: Ledger, data_dir: Path, private: bool = True) -> Path:
    path = Path(data_dir) / FILENAME
    with atomic_write(path, private=private) as handle:
        json.dump(manifest(ledger), handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    return path

"""The pilot: the few requests a plan spends to estimate a study not yet begun.

A study's cost depends on how many videos its query finds, which only the API knows.
So ``study --plan`` on a study whose videos stage has not begun collects a few of its
windows in full (spread over its range, at most :data:`VIDEO_REQUESTS` requests), and,
when the study collects replies, the first page of comments of a few of those videos
(:data:`COMMENT_REQUESTS`).  These are the study's own pages, stored in its ledger as
any crawl stores them: the study never asks them again.  The plan extrapolates from
them (``plan.py``) and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

#: Windows a pilot collects, and the requests it may spend on them (the rest of a window it
#: could not finish is asked by the study, from where the pilot stopped).
VIDEO_WINDOWS = 3
VIDEO_REQUESTS = 10
#: Videos whose first page of comments a pilot asks (for the replies they hold).
COMMENT_VIDEOS = 2
COMMENT_REQUESTS = 2


@dataclass(frozen=True)
class Pilot:
    """What a pilot crawl asks: these seeds only, at most this many requests."""

    seeds: frozenset[str]
    requests: int


def of(crawler: Crawler) -> Pilot | None:
    """The crawl's pilot, when it is one (``scrapy study --plan`` sets it on the crawler)."""
    return getattr(crawler, "tiktok_pilot", None)


def spread(items: list[str], count: int) -> list[str]:
    """``count`` of ``items`` spread over them evenly: the first, the last and between."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[len(items) // 2]]
    return [items[round(index * (len(items) - 1) / (count - 1))] for index in range(count)]

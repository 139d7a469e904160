"""The access token a crawl (or a whole study) shares, and how failing to get one is said.

The middleware that fetches it lives in ``middlewares/auth.py``; ``scrapy study`` hands one
token from stage to stage, and spiders tell a missing token from other failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tiktok_spiders.stopping import CrawlStopping

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

TOKEN_REQUEST = "tiktok_token_request"  # noqa: S105 - a request meta key, not a secret
AUTH_RETRIES = "tiktok_auth_retries"
#: Retries of the token request itself (about 7 s of backoff in all): a page waiting for
#: the token is not retried for it, so an unreachable API fails in seconds, not hours.
TOKEN_RETRY_TIMES = 3


class CredentialsRejected(CrawlStopping):
    """The API refused the client key and secret: nothing can be collected."""


class TokenUnavailable(CrawlStopping):
    """No access token could be had (API unreachable, or an answer that is not a token): the crawl
    stops, said in one line, and its seeds stay open for the next run."""


@dataclass
class AccessToken:
    """The token in use and when to renew it (a ``time.monotonic()`` time); in memory only."""

    value: str | None = field(default=None, repr=False)  # a secret: never in a repr, hence a log
    renew_at: float = 0.0


def shared_token(crawler: Crawler) -> AccessToken:
    """The crawler's token: its own, or one that ``scrapy study`` hands from stage to stage
    (one fetch, one round trip, per study instead of per stage)."""
    token = getattr(crawler, "tiktok_access_token", None)
    if token is None:
        token = crawler.tiktok_access_token = AccessToken()  # type: ignore[attr-defined]
    return token

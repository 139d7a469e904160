"""Client-credentials access token: fetched once, shared, refreshed, never logged."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from scrapy import Request
from scrapy.exceptions import IgnoreRequest

from tiktok_spiders import api
from tiktok_spiders.middlewares import is_api_request
from tiktok_spiders.stopping import stop_crawl
from tiktok_spiders.token import (
    AUTH_RETRIES,
    TOKEN_REQUEST,
    TOKEN_RETRY_TIMES,
    CredentialsRejected,
    TokenUnavailable,
    shared_token,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


class AccessTokenMiddleware:
    """Injects ``Authorization: Bearer …`` into API requests.

    Concurrent requests share one token fetch (the pending fetch is cached), the
    token is renewed shortly before it expires and after a 401, and a request
    refused with 401 is sent again once with the new token.  Wrong credentials
    stop the crawl at once with one sentence.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.client_key = settings["TIKTOK_CLIENT_KEY"]
        self.client_secret = settings["TIKTOK_CLIENT_SECRET"]
        self.token_url = api.endpoint_url(settings["TIKTOK_API_BASE_URL"], api.TOKEN_PATH)
        self.token = shared_token(crawler)
        self._pending: asyncio.Future[str] | None = None
        self._rejected = False
        self._unavailable: str | None = None  # why no token could be had; the crawl is stopping

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AccessTokenMiddleware:
        return cls(crawler)

    @staticmethod
    def now() -> float:
        """The clock a token's lifetime is measured on (a test moves one of its own)."""
        return time.monotonic()

    async def process_request(self, request: Request) -> None:
        if request.meta.get(TOKEN_REQUEST) or not is_api_request(self.crawler, request):
            return
        token = await self._current_token()
        request.headers[b"Authorization"] = f"Bearer {token}".encode()

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status != 401 or request.meta.get(TOKEN_REQUEST) or not is_api_request(self.crawler, request):
            return response
        tries = request.meta.get(AUTH_RETRIES, 0)
        self.crawler.stats.inc_value("tiktok/token/rejected")
        if tries >= 2:
            return response
        self._forget(request)
        retry = request.copy()
        retry.headers.pop(b"Authorization", None)
        retry.meta[AUTH_RETRIES] = tries + 1
        retry.dont_filter = True
        return retry

    def _forget(self, request: Request) -> None:
        """Drop the cached token unless a newer one replaced the one ``request`` used."""
        sent = (request.headers.get(b"Authorization") or b"").decode()
        if self.token.value and sent.endswith(self.token.value):
            self.token.value = None

    async def _current_token(self) -> str:
        if self._rejected:
            raise CredentialsRejected("the API refused the client credentials")
        if self._unavailable is not None:
            raise TokenUnavailable(self._unavailable)
        if self.token.value and self.now() < self.token.renew_at:
            return self.token.value
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(self._pending)

    async def _fetch(self) -> str:
        body = urlencode(
            {"client_key": self.client_key, "client_secret": self.client_secret, "grant_type": "client_credentials"}
        )
        request = Request(
            self.token_url,
            method="POST",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache"},
            meta={TOKEN_REQUEST: True, "handle_httpstatus_all": True, "max_retry_times": TOKEN_RETRY_TIMES},
            dont_filter=True,
        )
        assert self.crawler.engine is not None
        try:
            response = await self.crawler.engine.download_async(request)
        except IgnoreRequest:
            raise
        except Exception as error:
            raise self._give_up(f"{type(error).__name__}: {str(error).rstrip('.')}") from None
        try:
            payload = api.answer_json(response)
        except ValueError:
            payload = None
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            code, message = api.error_of(payload)
            if code in (api.INVALID_CLIENT, "invalid_request", "unauthorized_client", "access_denied"):
                self._rejected = True
                logger.error(
                    "The API refused the client key and secret (%s: %s). "
                    "Check TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET in .env.",
                    code,
                    message,
                )
                stop_crawl(self.crawler, "invalid_credentials")
                raise CredentialsRejected("the API refused the client credentials")
            content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1") or "no content type"
            what = f"{code}: {message}" if code not in ("", api.OK) else f"not a token ({content_type})"
            raise self._give_up(f"HTTP {response.status} {what}")
        try:
            lifetime = float(payload.get("expires_in") or 7200)
        except (TypeError, ValueError):
            lifetime = 7200.0
        # renew before expiry: 5 minutes early, or a tenth of a short lifetime
        self.token.renew_at = self.now() + lifetime - min(300.0, lifetime / 10)
        self.token.value = token
        self.crawler.stats.inc_value("tiktok/token/fetched")
        logger.debug("Access token obtained (valid %ss)", int(lifetime))
        return token

    def _give_up(self, why: str) -> TokenUnavailable:
        """Stop the crawl: without a token no page can be asked."""
        self._unavailable = f"no access token from {self.token_url}: {why}"
        self.crawler.stats.set_value("tiktok/token/unavailable", self._unavailable)
        logger.error("%s. Check TIKTOK_API_BASE_URL and the network; run the same command again.", self._unavailable)
        stop_crawl(self.crawler, "token_unavailable")
        return TokenUnavailable(self._unavailable)

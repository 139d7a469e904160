"""The access-token middleware: one fetch shared, renewed before it expires (on a clock the test
moves) and after a 401, wrong credentials said once, and the token only ever sent to the API.

The token endpoint is a stand-in for the engine's download: what it answers is the API's
documented shape; the end-to-end tests send the same requests to the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import JsonResponse, Request
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from tests.conftest import Clock, answer, api_request, crawler_for
from tiktok_spiders.middlewares.auth import AccessTokenMiddleware
from tiktok_spiders.token import AUTH_RETRIES, TOKEN_REQUEST, CredentialsRejected

SECRET = "s3cr3t-of-the-client"


class TokenEndpoint:
    """Answers token requests as the API does: a new token each time, or the OAuth error."""

    def __init__(self, lifetime: int = 7200, refuse: bool = False) -> None:
        self.lifetime = lifetime
        self.refuse = refuse
        self.asked: list[Request] = []

    async def __call__(self, request: Request) -> JsonResponse:
        assert request.meta.get(TOKEN_REQUEST), "only the token request goes out from the middleware"
        self.asked.append(request)
        await asyncio.sleep(0)  # the answer comes later: other requests ask meanwhile
        if self.refuse:
            status, payload = 401, {"error": "invalid_client", "error_description": "Client key or secret is invalid"}
        else:
            status, payload = 200, {"access_token": f"clt.{len(self.asked)}", "expires_in": self.lifetime}
        return JsonResponse(request.url, status=status, body=json.dumps(payload).encode(), request=request)


def middleware(tmp_path: Path, endpoint: TokenEndpoint) -> tuple[AccessTokenMiddleware, Clock]:
    crawler = crawler_for(tmp_path, TIKTOK_CLIENT_SECRET=SECRET)
    crawler.engine.download_async = endpoint  # type: ignore[method-assign, union-attr]
    tokens = build_from_crawler(AccessTokenMiddleware, crawler)
    tokens.now = clock = Clock()  # type: ignore[method-assign]
    return tokens, clock


async def bearer(tokens: AccessTokenMiddleware, request: Request | None = None) -> str:
    request = request or api_request()
    await tokens.process_request(request)
    return request.headers[b"Authorization"].decode()


@deferred_f_from_coro_f
async def test_concurrent_requests_share_one_fetch_and_the_token_is_renewed_before_it_expires(tmp_path: Path) -> None:
    endpoint = TokenEndpoint(lifetime=600)
    tokens, clock = middleware(tmp_path, endpoint)
    sent = await asyncio.gather(*(bearer(tokens) for _ in range(5)))
    assert sent == ["Bearer clt.1"] * 5 and len(endpoint.asked) == 1, "one fetch for five waiting requests"
    body = endpoint.asked[0].body.decode()
    assert "grant_type=client_credentials" in body and f"client_secret={SECRET}" in body
    clock.time += 539  # a tenth of a short lifetime before its end: still good
    assert await bearer(tokens) == "Bearer clt.1"
    clock.time += 2
    assert await bearer(tokens) == "Bearer clt.2" and len(endpoint.asked) == 2, "renewed before the API says 401"
    assert tokens.crawler.stats.get_value("tiktok/token/fetched") == 2


@deferred_f_from_coro_f
async def test_a_401_renews_the_token_and_sends_the_page_again_once_with_the_new_one(tmp_path: Path) -> None:
    endpoint = TokenEndpoint()
    tokens, _ = middleware(tmp_path, endpoint)
    page = api_request()
    await tokens.process_request(page)
    expired = {"code": "access_token_invalid", "message": "The access token is invalid or not found in the request."}
    again = await tokens.process_response(page, answer(page, 401, expired))
    assert isinstance(again, Request) and b"Authorization" not in again.headers and again.meta[AUTH_RETRIES] == 1
    assert await bearer(tokens, again) == "Bearer clt.2", "the refused token is not used again"

    late = api_request()
    late.headers[b"Authorization"] = b"Bearer clt.1"  # sent before the renewal, refused after it
    await tokens.process_response(late, answer(late, 401, expired))
    assert await bearer(tokens) == "Bearer clt.2" and len(endpoint.asked) == 2, "a newer token is kept"

    third = again.replace(meta={**again.meta, AUTH_RETRIES: 2})
    refused = answer(third, 401, expired)
    assert await tokens.process_response(third, refused) is refused, "not forever: the spider hears of it"


@deferred_f_from_coro_f
async def test_refused_credentials_stop_at_once_in_one_line_without_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = TokenEndpoint(refuse=True)
    tokens, _ = middleware(tmp_path, endpoint)
    with caplog.at_level(logging.DEBUG), pytest.raises(CredentialsRejected):
        await bearer(tokens)
    with pytest.raises(CredentialsRejected):
        await bearer(tokens)
    assert len(endpoint.asked) == 1, "asked once: the key and secret will not change during the crawl"
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET" in errors[0]
    assert SECRET not in caplog.text


@deferred_f_from_coro_f
async def test_the_token_goes_only_to_the_api_host_with_its_port(tmp_path: Path) -> None:
    endpoint = TokenEndpoint()
    tokens, _ = middleware(tmp_path, endpoint)
    for url in ("http://127.0.0.1:8/v2/research/user/info/", "http://example.org/v2/research/user/info/"):
        elsewhere: Any = Request(url, method="POST")
        await tokens.process_request(elsewhere)
        assert b"Authorization" not in elsewhere.headers
    assert endpoint.asked == [], "nothing to fetch a token for"

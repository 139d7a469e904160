"""The emulator's HTTP server: every Research API endpoint, its limits and its faults.

It runs an aiohttp low-level server on its own event loop in a background
thread, so tests, the demo and benchmarks can start it in-process
(``with Emulator() as api: ...``) while a crawl runs against it over real HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import random
import secrets
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

from aiohttp import web

from tiktok_spiders import api
from tiktok_spiders.emulator.compliance import ComplianceDesk
from tiktok_spiders.emulator.corpus import Corpus, CorpusConfig
from tiktok_spiders.emulator.errors import ApiError
from tiktok_spiders.emulator.faults import Faults
from tiktok_spiders.emulator.query import Query, QueryError

DEMO_CLIENT_KEY = "sandbox-client-key"
DEMO_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - the sandbox's public demo secret

#: The liked / pinned / reposted endpoints document their own field list; two of their
#: pages spell ``favourites_count``, which they accept and serve under that spelling.
USER_VIDEO_FIELDS = (*api.USER_VIDEO_FIELDS, "favourites_count")
#: What the documentation's reply example serves although only ``id,text`` was asked.
REPLY_FIELDS_ALWAYS_SERVED = frozenset(
    {"id", "text", "parent_comment_id", "reply_count", "create_time", "display_name"}
)
COMPLIANCE_PATHS = frozenset({api.COMPLIANCE_CREATE_PATH, api.COMPLIANCE_STATUS_PATH, api.COMPLIANCE_DOWNLOAD_PATH})
FOLLOW_PATHS = frozenset({api.FOLLOWERS_PATH, api.FOLLOWING_PATH})
GATEWAY_TIMEOUT_HTML = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n"
    "<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
)


class _Drop(Exception):
    """Close the connection without answering."""


class _RateLimited(Exception):
    """Answer 429 rate_limit_exceeded (with --rate-limit-retry-after)."""


class _Html(Exception):
    """Answer with an HTML page (a gateway's or a maintenance page), HTTP 200."""


MAINTENANCE_HTML = "<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon.</body></html>"


@dataclass
class _Search:
    key: tuple
    ids: list[int]
    issued: float
    fresh: bool = True


@dataclass
class _Usage:
    requests: int = 0
    follow_requests: int = 0
    records: int = 0


@dataclass
class _State:
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    searches: dict[str, _Search] = field(default_factory=dict)
    usage: dict[tuple[str, date], _Usage] = field(default_factory=dict)
    recent: deque = field(default_factory=deque)
    outage: Counter = field(default_factory=Counter)


def log_id(now: float) -> str:
    """A log id shaped like the real ones: UTC timestamp plus 20 hex digits."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


class Emulator:
    """The Research API on 127.0.0.1, with a deterministic corpus and switchable faults.

    Use as a context manager; ``base_url`` is where it listens.  ``faults`` may be
    changed while it runs; ``advance_days`` moves its clock (quota days, tokens).
    """

    def __init__(
        self,
        corpus: Corpus | CorpusConfig | None = None,
        *,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        request_log: str | Path | None = None,
        clients: dict[str, str] | None = None,
        fault_seed: int | None = None,
    ) -> None:
        if not isinstance(corpus, Corpus):
            corpus = Corpus(corpus)
        self.corpus = corpus
        self.faults = faults or Faults()
        if self.faults.deleted_share:
            corpus.forget(self.faults.deleted_share)
        self.host, self.port = host, port
        self.clients = clients or {DEMO_CLIENT_KEY: DEMO_CLIENT_SECRET}
        self.request_log_path = Path(request_log) if request_log else None
        self.clock_offset = 0.0
        #: Every access token handed out, so tests can prove none leaked.
        self.issued_tokens: list[str] = []
        self._random = random.Random(fault_seed)
        self._state = _State()
        self.compliance = ComplianceDesk(corpus, self.faults, self._random)
        self._lock = threading.Lock()
        self._log_file: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.ServerRunner | None = None

    # -- lifecycle --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        if self.request_log_path:
            self.request_log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.request_log_path.open("a", encoding="utf-8", buffering=1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tiktok-emulator", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result()
        return self

    async def _serve(self) -> None:
        server = web.Server(self._handle, access_log=None)
        self._runner = web.ServerRunner(server, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=512)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join()
        self._loop.close()
        self._loop = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- clock and quota ----------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock: tokens and search ids age, a new UTC day resets the daily quota."""
        self.clock_offset += seconds

    def advance_days(self, days: float = 1) -> None:
        self.advance(days * 86400)

    def usage(self, client_key: str = DEMO_CLIENT_KEY) -> _Usage:
        """Today's requests and records for a client."""
        day = datetime.fromtimestamp(self.now(), UTC).date()
        return self._state.usage.setdefault((client_key, day), _Usage())

    def expire_searches(self) -> None:
        """Forget every cached search, as the API does after a while: their ids become invalid."""
        self._state.searches.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every token handed out, as a revocation would."""
        self._state.tokens.clear()

    # -- request handling ---------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        entry: dict[str, Any] = {"time": datetime.fromtimestamp(self.now(), UTC).isoformat(), "path": request.path}
        try:
            await self._latency()
            if request.path == api.TOKEN_PATH:
                status, payload = self._token(body)
                response = self._json(status, payload)
            else:
                response = await self._research(request, body, entry)
        except _Drop:
            entry["status"] = 0
            self._log(entry)
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        entry["status"] = response.status
        self._log(entry)
        return response

    async def _latency(self) -> None:
        """Wait ``faults.latency`` seconds, as it is now: lowered meanwhile (a test that is done
        with a slow API), the answers on their way come sooner."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (left := self.faults.latency - (loop.time() - started)) > 0:
            await asyncio.sleep(min(left, 0.1))

    def _log(self, entry: dict[str, Any]) -> None:
        if self._log_file:
            self._log_file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=json.dumps(payload, ensure_ascii=False).encode(),
            status=status,
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )

    def _envelope(self, data: dict[str, Any], code: str = api.OK, message: str = "") -> dict[str, Any]:
        return {"data": data, "error": {"code": code, "message": message, "log_id": log_id(self.now())}}

    def _token(self, body: bytes) -> tuple[int, dict[str, Any]]:
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}

        def oauth_error(status: int, error: str, description: str) -> tuple[int, dict[str, Any]]:
            return status, {"error": error, "error_description": description, "log_id": log_id(self.now())}

        if not form.get("client_key"):
            return oauth_error(400, "invalid_request", "Client key is missed in request.")
        if not form.get("client_secret"):
            return oauth_error(400, "invalid_request", "Client secret is missed in request.")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "Grant type is not supported.")
        if self.clients.get(form["client_key"]) != form["client_secret"]:
            return oauth_error(401, api.INVALID_CLIENT, "Client key or secret is incorrect.")
        token = "clt." + secrets.token_urlsafe(30)
        self.issued_tokens.append(token)
        lifetime = self.faults.token_lifetime
        self._state.tokens[token] = (form["client_key"], self.now() + lifetime)
        return 200, {"access_token": token, "expires_in": max(1, round(lifetime)), "token_type": "Bearer"}

    async def _research(self, request: web.BaseRequest, body: bytes, entry: dict[str, Any]) -> web.Response:
        faults = self.faults
        fields_param = request.query.get("fields")
        if fields_param is not None:
            entry["fields"] = fields_param
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = None
        entry["body"] = payload
        try:
            client_key = self._authorize(request.headers.get("Authorization", ""))
            self._spend_quota(client_key, request.path)
            if faults.oversized_answer and request.path == api.VIDEO_QUERY_PATH:
                return _oversized(faults.oversized_answer)
            if faults.rate_limit_per_second and self._rate_limited():
                return self._rate_limit_answer()
            roll = self._random.random()
            if roll < faults.drop_connection_rate:
                raise _Drop
            roll -= faults.drop_connection_rate
            if roll < faults.gateway_timeout_rate:
                return web.Response(status=504, text=GATEWAY_TIMEOUT_HTML, content_type="text/html")
            roll -= faults.gateway_timeout_rate
            outage = self._state.outage
            if roll < faults.internal_error_rate or outage[request.path] < faults.outage_requests:
                outage[request.path] += 1
                raise ApiError(500, api.INTERNAL_ERROR, "Something went wrong. Please try again later.")
            if faults.slow_rate and self._random.random() < faults.slow_rate:
                await asyncio.sleep(faults.slow_seconds)
            if request.path in COMPLIANCE_PATHS:
                return self._compliance(request, body, payload, entry)
            if not isinstance(payload, dict):
                raise ApiError(400, api.INVALID_PARAMS, "Invalid request body: not a JSON object")
            fields = self._fields(fields_param)
            handler = self._endpoints.get(request.path)
            if handler is None:
                raise ApiError(404, "not_found", f"Path {request.path} not found")
            status, data = handler(self, _nulls_dropped(payload), fields)
            self.usage(client_key).records += _record_count(data)
            return self._json(status, self._envelope(data, api.INTERNAL_ERROR if status == 500 else api.OK))
        except _RateLimited:
            return self._rate_limit_answer()
        except _Html as page:
            return web.Response(status=200, text=str(page), content_type="text/html")
        except ApiError as error:
            entry["error"] = error.code
            envelope = self._envelope({}, error.code, error.message)
            if request.path in COMPLIANCE_PATHS:  # the compliance endpoints' own error shape
                envelope["error"]["http_status_code"] = error.status
            return self._json(error.status, envelope)

    def _compliance(self, request: web.BaseRequest, body: bytes, payload: Any, entry: dict[str, Any]) -> web.Response:
        """The Batch Compliance endpoints: an envelope with ``http_status_code`` and ``"ok."``,
        or (download) the plain-text file of valid ids."""
        self.compliance.faults = self.faults  # faults may be swapped while the server runs
        desk = self.compliance
        if request.path == api.COMPLIANCE_DOWNLOAD_PATH:
            text, content_type = desk.download(payload)
            return web.Response(text=text, content_type=content_type, charset="utf-8")
        if request.path == api.COMPLIANCE_CREATE_PATH:
            data = desk.create(request.headers.get("Content-Type", ""), body, entry)
        else:
            data = desk.status(payload)
        envelope = self._envelope(data, api.OK, "ok.")
        envelope["error"]["http_status_code"] = 200
        return self._json(200, envelope)

    def _rate_limit_answer(self) -> web.Response:
        error = ApiError(429, api.RATE_LIMIT_EXCEEDED, "The API rate limit was exceeded. Please try again later.")
        return self._json(429, self._envelope({}, error.code, error.message), self._retry_after())

    def _retry_after(self) -> dict[str, str] | None:
        seconds = self.faults.rate_limit_retry_after
        if not seconds:
            return None
        if self.faults.retry_after_as_date:
            return {"Retry-After": format_datetime(datetime.fromtimestamp(self.now() + seconds, UTC), usegmt=True)}
        return {"Retry-After": str(seconds)}

    def _authorize(self, header: str) -> str:
        scheme, _, token = header.partition(" ")
        known = self._state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if known is None or known[1] <= self.now():
            raise ApiError(401, api.ACCESS_TOKEN_INVALID, "The access token is invalid or not found in the request.")
        return known[0]

    def _spend_quota(self, client_key: str, path: str) -> None:
        usage = self.usage(client_key)
        faults = self.faults
        if path in FOLLOW_PATHS:
            over = usage.follow_requests >= faults.daily_follow_requests
            usage.follow_requests += 0 if over else 1
        else:
            over = usage.requests >= faults.daily_requests or usage.records >= faults.daily_records
            usage.requests += 0 if over else 1
        if over:
            raise ApiError(429, api.DAILY_QUOTA_EXCEEDED, "The API daily quota limit exceeded. Please try again later")

    def _rate_limited(self) -> bool:
        now = time.monotonic()
        recent = self._state.recent
        while recent and recent[0] < now - 1.0:
            recent.popleft()
        if len(recent) >= self.faults.rate_limit_per_second:
            return True
        recent.append(now)
        return False

    @staticmethod
    def _fields(param: str | None) -> tuple[str, ...] | None:
        if param is None:
            return None
        return tuple(name.strip() for name in param.split(",") if name.strip())

    # -- endpoints ------------------------------------------------------------------

    def _require_fields(self, fields: tuple[str, ...] | None, allowed: tuple[str, ...]) -> frozenset[str]:
        if not fields:
            raise ApiError(400, api.INVALID_PARAMS, "The fields parameter is required")
        unknown = [name for name in fields if name not in allowed]
        if unknown:
            raise ApiError(400, api.INVALID_PARAMS, f"Invalid fields: {','.join(unknown)}")
        return frozenset(fields)

    @staticmethod
    def _int(payload: dict[str, Any], key: str, default: int | None = None) -> int | None:
        value = payload.get(key, default)
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(400, api.INVALID_PARAMS, f"Invalid {key}: {value!r}") from None

    def _max_count(self, payload: dict[str, Any], default: int) -> int:
        count = self._int(payload, "max_count", default)
        assert count is not None
        if not 1 <= count <= api.MAX_COUNT:
            raise ApiError(400, api.INVALID_PARAMS, api.INVALID_CURSOR_MESSAGE)
        return count

    @staticmethod
    def _served(record: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
        served = {key: value for key, value in record.items() if key in fields}
        for spelling, name in api.FIELD_SPELLINGS.items():
            if spelling in fields and name in record:
                served[spelling] = record[name]
        return served

    def _dates(self, payload: dict[str, Any]) -> tuple[date, date]:
        try:
            start = datetime.strptime(str(payload["start_date"]), "%Y%m%d").date()
            end = datetime.strptime(str(payload["end_date"]), "%Y%m%d").date()
        except (KeyError, ValueError):
            raise ApiError(
                400, api.INVALID_PARAMS, "start_date and end_date must be dates in the format YYYYMMDD"
            ) from None
        if end < start:
            raise ApiError(400, api.INVALID_PARAMS, "end_date must not be earlier than start_date")
        if (end - start).days > api.MAX_WINDOW_DAYS:
            raise ApiError(400, api.INVALID_PARAMS, "The end_date must be no more than 30 days after the start_date")
        if self.faults.end_date_exclusive:
            if end == start:
                return start, start - timedelta(days=1)
            end -= timedelta(days=1)
        return start, end

    def video_query(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        wanted = self._require_fields(fields, api.VIDEO_FIELDS)
        try:
            query = Query.parse(payload.get("query"))
        except QueryError as error:
            raise ApiError(400, api.INVALID_PARAMS, str(error)) from None
        start, end = self._dates(payload)
        max_count = self._max_count(payload, 20)
        cursor = self._int(payload, "cursor", 0) or 0
        key = (json.dumps(payload.get("query"), sort_keys=True), start, end)
        corpus = self.corpus
        if payload.get("is_random"):
            ids = [vid for vid in corpus.search(query, start, end) if vid not in corpus.hidden]
            picked = self._random.sample(ids, min(len(ids), self._random.randint(1, max_count))) if ids else []
            videos = [self._served(corpus.video_by_id[vid], wanted) for vid in picked]
            return 200, {"videos": videos, "cursor": len(videos), "has_more": False, "search_id": _search_id()}
        search_id = payload.get("search_id")
        if search_id:
            search = self._state.searches.get(str(search_id))
            if search is None or search.key != key or search.issued + self.faults.search_id_ttl < self.now():
                raise ApiError(400, api.INVALID_PARAMS, f"Search Id {search_id} is invalid or expired")
            if search.fresh and self.faults.reject_fresh_search_id:
                search.fresh = False
                raise ApiError(400, api.INVALID_PARAMS, f"Search Id {search_id} is invalid or expired")
            if cursor and self._random.random() < self.faults.invalid_cursor_rate:
                raise ApiError(400, api.INVALID_PARAMS, api.INVALID_CURSOR_MESSAGE)
        else:
            ids = corpus.search(query, start, end)
            if self._random.random() < self.faults.empty_page_rate:
                at = self._random.randint(0, len(ids) // max_count) * max_count
                ids[at:at] = [-1] * max_count  # a page's worth of deleted videos
            search_id = _search_id()
            search = _Search(key, ids, self.now())
            self._state.searches[search_id] = search
        page = search.ids[cursor : cursor + max_count]
        next_cursor = min(cursor + max_count, len(search.ids)) if cursor < len(search.ids) else cursor
        videos = [
            self._served(corpus.video_by_id[vid], wanted) for vid in page if vid >= 0 and vid not in corpus.hidden
        ]
        return 200, {
            "videos": videos,
            "cursor": next_cursor,
            "has_more": next_cursor < len(search.ids),
            "search_id": str(search_id),
        }

    def comment_list(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        """A video's comments (``video_id``) or a comment's replies (``comment_id``), never both.

        ``display_name`` is served whether asked or not, and replies come without
        ``video_id`` whatever ``fields`` says, as the documentation's reply example shows.
        """
        allowed = api.COMMENT_FIELDS if self.faults.strict_comment_fields else (*api.COMMENT_FIELDS, "display_name")
        wanted = self._require_fields(fields, allowed) | {"display_name"}
        video_id = self._int(payload, "video_id")
        comment_id = self._int(payload, "comment_id")
        if (video_id is None) == (comment_id is None):
            raise ApiError(400, api.INVALID_PARAMS, "You must request either video_id or comment_id, not both")
        max_count = self._max_count(payload, 10)
        cursor = self._int(payload, "cursor", 0) or 0
        cap = self.faults.comment_cap
        if cursor < 0 or (cap and cursor >= cap):
            raise ApiError(400, api.INVALID_PARAMS, api.INVALID_CURSOR_MESSAGE)
        if cursor and self._random.random() < self.faults.invalid_cursor_rate:
            raise ApiError(400, api.INVALID_PARAMS, api.INVALID_CURSOR_MESSAGE)
        if video_id is not None:
            thread = self.corpus.comments(video_id)
        else:
            thread = self.corpus.replies(comment_id)  # type: ignore[arg-type]
            wanted = (wanted | REPLY_FIELDS_ALWAYS_SERVED) - {"video_id"}
        if cap:
            thread = thread[:cap]
        page = thread[cursor : cursor + max_count]
        next_cursor = cursor + len(page)
        comments = [self._served(comment, wanted) for comment in page if not self.corpus.comment_gone(comment)]
        if comments and self.faults.hostile_values:  # the first of each page, as a broken server sends it
            comments[0] = {**comments[0], "like_count": "many", "create_time": "yesterday"}
        return 200, {"comments": comments, "cursor": next_cursor, "has_more": next_cursor < len(thread)}

    def _user(self, payload: dict[str, Any]) -> str:
        username = payload.get("username")
        if not isinstance(username, str) or not username:
            raise ApiError(400, api.INVALID_PARAMS, "username is required")
        reason = self.corpus.unavailable_reason(username)
        if reason == "not_found":
            raise ApiError(400, api.INVALID_PARAMS, f"User {username} is invalid: cannot find the user")
        if reason == "refused":
            raise ApiError(400, api.INVALID_PARAMS, f"API cannot return this user's information: {username}")
        return username

    def user_info(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        wanted = self._require_fields(fields, api.USER_FIELDS)
        bad = self.faults.user_info_answer
        if bad == "error-200":
            raise ApiError(200, api.INVALID_PARAMS, f"User {payload.get('username')} is invalid: cannot find the user")
        if bad == "html":
            raise _Html(MAINTENANCE_HTML)
        if bad == "other-user":
            raise ApiError(400, api.INVALID_PARAMS, "User someone.else is invalid: cannot find the user")
        if bad == "rate-limited":
            raise _RateLimited
        username = self._user(payload)
        return 200, self._served(self.corpus.users[username], wanted)

    def _timeline(self, kind: str, payload: dict[str, Any], per_second: int) -> tuple[list[dict], int, bool]:
        """A page of a list whose cursor is a timestamp: entries on or before it."""
        username = self._user(payload)
        if not self.corpus.list_is_public(kind, username):
            raise ApiError(400, api.INVALID_PARAMS, f"API cannot return this user's information: {username}")
        max_count = self._max_count(payload, 20)
        cursor = self._int(payload, "cursor") or int(self.now() * per_second)
        entries = [entry for entry in self.corpus.user_list(kind, username) if entry["_time"] * per_second <= cursor]
        page = entries[:max_count]
        next_cursor = page[-1]["_time"] * per_second - 1 if page else cursor
        return page, next_cursor, len(entries) > max_count

    def liked_videos(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        wanted = self._require_fields(fields, USER_VIDEO_FIELDS)
        page, cursor, has_more = self._timeline("liked", payload, per_second=1000)
        return 200, {
            "user_liked_videos": [self._served(v, wanted) for v in page],
            "cursor": cursor,
            "has_more": has_more,
        }

    def _follow(self, kind: str, key: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        page, cursor, has_more = self._timeline(kind, payload, per_second=1)
        people = [{k: v for k, v in entry.items() if not k.startswith("_")} for entry in page]
        return 200, {key: people, "cursor": cursor, "has_more": has_more}

    def followers(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        return self._follow("followers", "user_followers", payload)

    def following(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        return self._follow("following", "user_following", payload)

    def pinned_videos(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        wanted = self._require_fields(fields, USER_VIDEO_FIELDS)
        username = self._user(payload)
        return 200, {"pinned_videos_list": [self._served(v, wanted) for v in self.corpus.pinned(username)]}

    def reposted_videos(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        wanted = self._require_fields(fields, USER_VIDEO_FIELDS)
        username = self._user(payload)
        if not self.corpus.list_is_public("reposted", username):
            raise ApiError(400, api.INVALID_PARAMS, f"API cannot return this user's information: {username}")
        max_count = self._max_count(payload, 20)
        cursor = self._int(payload, "cursor", 0) or 0
        entries = self.corpus.user_list("reposted", username)
        page = entries[cursor : cursor + max_count]
        next_cursor = cursor + len(page)
        return 200, {
            "reposted_videos": [self._served(v, wanted) for v in page],
            "cursor": next_cursor,
            "has_more": next_cursor < len(entries),
        }

    def playlist_info(self, payload: dict[str, Any], fields: tuple[str, ...] | None) -> tuple[int, dict[str, Any]]:
        playlist_id = self._int(payload, "playlist_id")
        videos = self.corpus.playlists.get(playlist_id) if playlist_id is not None else None
        if videos is None or playlist_id is None:
            raise ApiError(400, api.INVALID_PARAMS, f"Invalid playlist_id: {playlist_id}")
        max_count = self._max_count(payload, 20)
        cursor = self._int(payload, "cursor", 0) or 0
        page = videos[cursor : cursor + max_count]
        next_cursor = cursor + len(page)
        last = max(self.corpus.video_by_id[vid]["create_time"] for vid in videos)
        data = {
            "playlist_id": playlist_id,
            "playlist_name": f"Playlist {playlist_id % 1000}",
            "playlist_item_total": len(videos),
            "playlist_last_updated": last,
            "playlist_video_ids": page,
            "cursor": next_cursor,
            "has_more": next_cursor < len(videos),
        }
        return (500 if self.faults.playlist_500 else 200), data

    _endpoints: ClassVar[dict[str, Any]] = {
        api.VIDEO_QUERY_PATH: video_query,
        api.COMMENT_LIST_PATH: comment_list,
        api.USER_INFO_PATH: user_info,
        api.LIKED_VIDEOS_PATH: liked_videos,
        api.PINNED_VIDEOS_PATH: pinned_videos,
        api.REPOSTED_VIDEOS_PATH: reposted_videos,
        api.FOLLOWERS_PATH: followers,
        api.FOLLOWING_PATH: following,
        api.PLAYLIST_INFO_PATH: playlist_info,
    }


_search_ids = itertools.count(7_354_367_454_467_855_403 + secrets.randbelow(10**9) * 10**6, 7919)


@functools.cache
def _bomb() -> bytes:
    """A JSON answer of 256 MB, gzip-compressed to about a quarter of a MB (made once)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    head = b'{"data": {"videos": [], "cursor": 0, "has_more": false, "padding": "'
    parts = [compressor.compress(head)]
    block = b" " * (1 << 20)
    parts += [compressor.compress(block) for _ in range(256)]
    parts.append(compressor.compress(b'"}, "error": {"code": "ok", "message": ""}}'))
    parts.append(compressor.flush())
    return b"".join(parts)


def _oversized(how: str) -> web.Response:
    if how == "gzip":
        return web.Response(body=_bomb(), content_type="application/json", headers={"Content-Encoding": "gzip"})
    padding = b" " * (64 << 20)
    return web.Response(
        body=b'{"data": {"videos": [], "padding": "' + padding + b'"}}', content_type="application/json"
    )


def _search_id() -> str:
    """A 19-digit numeric string, unique in this process, like the real ones."""
    return str(next(_search_ids))


def _nulls_dropped(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON ``null`` for an optional key means the key is absent (real clients send both)."""
    return {key: value for key, value in payload.items() if value is not None}


def _record_count(data: dict[str, Any]) -> int:
    return sum(len(value) for value in data.values() if isinstance(value, list)) or 1

"""Scrapy settings for tiktok-spiders.

This is the one place where the environment and ``.env`` become settings:
``load_dotenv(override=False)`` lets the real environment win over ``.env``, and
``scrapy crawl -s NAME=value`` wins over both.  Every ``TIKTOK_*`` setting is
documented here once and in the README's settings table.
"""

from __future__ import annotations

import os

from dotenv import find_dotenv, load_dotenv
from scrapy.settings import default_settings as scrapy_defaults

from tiktok_spiders.api import DEFAULT_BASE_URL

load_dotenv(find_dotenv(usecwd=True), override=False)


def _env(name: str, default: str) -> str:
    """The value as given (text): read with ``getint`` / ``getbool`` where it is used, and
    checked by ``tiktok_spiders.config`` before a crawl, so a typo is one line, not a traceback."""
    return os.environ.get(name) or default


BOT_NAME = "tiktok_spiders"
SPIDER_MODULES = ["tiktok_spiders.spiders"]
NEWSPIDER_MODULE = "tiktok_spiders.spiders"
# crawl (exit status from the outcome, one-line errors), study, tables, refresh, report
COMMANDS_MODULE = "tiktok_spiders.commands"

# --- Credentials and places -------------------------------------------------
# Client key and secret of your Research API app (never logged).
TIKTOK_CLIENT_KEY = _env("TIKTOK_CLIENT_KEY", "")
TIKTOK_CLIENT_SECRET = _env("TIKTOK_CLIENT_SECRET", "")
# Where the API lives; point it at the bundled emulator to try a study for free.
TIKTOK_API_BASE_URL = _env("TIKTOK_API_BASE_URL", DEFAULT_BASE_URL)
# Feeds and the ledger (resume state, request counts) are kept here.
TIKTOK_DATA_DIR = _env("TIKTOK_DATA_DIR", "data")
# Feed formats written from the ledger when a spider closes (jsonl, csv).
TIKTOK_FEED_FORMATS = _env("TIKTOK_FEED_FORMATS", "jsonl,csv")
# Requests are counted per client key and UTC day in this file, shared by every data
# directory of this user (TikTok counts the quota per key).  Empty: the user's state
# directory (~/.local/state/tiktok-spiders/quota.sqlite on Linux).
TIKTOK_QUOTA_FILE = _env("TIKTOK_QUOTA_FILE", "")
# A data directory belongs to the API and client key that filled it; true lets a crawl
# with another base URL or key use it anyway (and makes it theirs from then on).
TIKTOK_ALLOW_API_CHANGE = _env("TIKTOK_ALLOW_API_CHANGE", "false")
# The data directory and its files are readable by their owner only (0700 / 0600);
# false leaves permissions to the umask.
TIKTOK_PRIVATE_FILES = _env("TIKTOK_PRIVATE_FILES", "true")
# A crawl stops before the next request when the data directory's disk has less free
# space than this (MB): a page is never paid for without room to store it.
TIKTOK_MIN_FREE_SPACE_MB = _env("TIKTOK_MIN_FREE_SPACE_MB", "100")

# --- Quota -------------------------------------------------------------------
# Requests per UTC day, counted across runs; the crawl stops cleanly before it.
TIKTOK_DAILY_REQUEST_LIMIT = _env("TIKTOK_DAILY_REQUEST_LIMIT", "1000")
# Followers and following have a quota of their own: 20,000 calls per UTC day.
TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT = _env("TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT", "20000")
# When the quota is spent, wait for the next UTC midnight and go on (else stop).
TIKTOK_WAIT_FOR_QUOTA_RESET = _env("TIKTOK_WAIT_FOR_QUOTA_RESET", "false")

# --- Retries -----------------------------------------------------------------
# Attempts after the first for 5xx, timeouts, dropped connections, rate limits
# and the API's transient "Search Id ... invalid" / "Invalid count or cursor".
TIKTOK_RETRY_TIMES = _env("TIKTOK_RETRY_TIMES", "8")
# Exponential backoff: base * 2**attempt seconds, capped, half of it random (api.backoff).
TIKTOK_RETRY_BACKOFF_BASE = _env("TIKTOK_RETRY_BACKOFF_BASE", "1.0")
TIKTOK_RETRY_BACKOFF_MAX = _env("TIKTOK_RETRY_BACKOFF_MAX", "60")

# The longest wait a Retry-After may ask (seconds): past it the crawl stops with one line
# (run it again later) instead of sleeping for days; either form (seconds, HTTP date) is read.
TIKTOK_MAX_RETRY_AFTER = _env("TIKTOK_MAX_RETRY_AFTER", "900")

# --- Pace -----------------------------------------------------------------------
# At most this many requests per second (0: no cap).  Off by default: at the API's
# latencies (seconds) 16 concurrent requests stay below the official client's 10/s,
# and a 429 rate_limit_exceeded pauses the crawl and halves its rate from then on.
TIKTOK_MAX_REQUESTS_PER_SECOND = _env("TIKTOK_MAX_REQUESTS_PER_SECOND", "0")

# --- Query semantics ---------------------------------------------------------
# The API's docs disagree on whether end_date is inclusive; evidence says it is.
# Set false to send end_date + 1 day so that the requested last day is covered.
TIKTOK_END_DATE_INCLUSIVE = _env("TIKTOK_END_DATE_INCLUSIVE", "true")

# --- Comments and replies ---------------------------------------------------------
# The most comments (and replies) a list is paged to: the API served only the top 1,000
# (older docs; unconfirmed since).  0 pages on until the API says has_more false.
TIKTOK_COMMENT_CAP = _env("TIKTOK_COMMENT_CAP", "1000")
# Ask for display_name on comments and replies, which the API returns but does not list
# among their fields; a refusal drops it again with a warning.  It is kept whenever sent.
TIKTOK_ASK_DISPLAY_NAME = _env("TIKTOK_ASK_DISPLAY_NAME", "false")

# --- Refresh (TikTok's terms: refresh regularly, delete what is no longer available) ---
# Warn when the data directory's last refresh (or, never refreshed, its first collection)
# is older than this many days.
TIKTOK_REFRESH_DAYS = _env("TIKTOK_REFRESH_DAYS", "15")
# Seconds before the first status poll of a compliance task; each later poll waits twice
# as long (at most 10 minutes).  Every poll costs a request.
TIKTOK_COMPLIANCE_POLL_SECONDS = _env("TIKTOK_COMPLIANCE_POLL_SECONDS", "10")
# A compliance task still Processing this many hours after it was created is created again
# (with the same ids): how long TikTok takes is not documented.
TIKTOK_COMPLIANCE_MAX_HOURS = _env("TIKTOK_COMPLIANCE_MAX_HOURS", "24")
# The brake: a refresh that would purge more than this share of any kind of record (0.2:
# a fifth of the videos, say) purges nothing and says what it found; `-a confirm_purge=true`
# purges it.  An empty or cut-short answer looks like a mass deletion: this catches it.
TIKTOK_REFRESH_MAX_PURGE_SHARE = _env("TIKTOK_REFRESH_MAX_PURGE_SHARE", "0.2")

# --- Tables -------------------------------------------------------------------
# What `scrapy tables` lets DuckDB hold while it joins and sorts (MB); beyond it, DuckDB
# works on disk beside the tables.  The tables' own chunks add a few hundred MB at most.
TIKTOK_TABLES_MEMORY_MB = _env("TIKTOK_TABLES_MEMORY_MB", "1024")

# --- Progress ----------------------------------------------------------------
# Scrapy's whole log on the terminal (also: --verbose, -L LEVEL, --logfile); by default the
# terminal shows progress, warnings, errors and summaries, and the rest goes to <data dir>/logs/.
TIKTOK_VERBOSE = _env("TIKTOK_VERBOSE", "false")
# Seconds between progress lines on long crawls.
TIKTOK_PROGRESS_INTERVAL = _env("TIKTOK_PROGRESS_INTERVAL", "30")

# --- Scrapy ------------------------------------------------------------------
# An API, not a website: robots.txt does not apply (and the API has none).
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
COOKIES_ENABLED = False
# Independent windows, comment threads and users run side by side (the pages of
# one search stay in order: each needs the previous cursor).  16 measured in
# bench/run.py; the API's latency (seconds) keeps this far below its rate limit.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16
# Stop downloading while 1 MB of answers wait for the pipelines: a crash loses what
# was downloaded but not yet committed, so keep that small (Scrapy's default is 5 MB).
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 1_000_000
# A callback returns at most the next page's request: its items went through the
# pipelines inside it (spiders/pages.py).  Scrapy starts CONCURRENT_ITEMS
# tasks per callback output; at its default of 100 that cost the comments stage about a
# quarter of its time (measured without latency: ~10 s, now ~7 s; docs/scrapy-internals.md).
CONCURRENT_ITEMS = 1
# "Gave up retrying" goes to the run log: the page's failure (or the missing token) is said once, by
# the spider (or the token middleware), not twice on the terminal.
RETRY_GIVE_UP_LOG_LEVEL = "INFO"
# The API can take minutes (504 after ~4 min); give it that long.
DOWNLOAD_TIMEOUT = 300
# No answer of the API is larger than a few MB (middlewares/size.py bounds each endpoint's, also after
# decompression); Scrapy's default is 1 GiB.  This bounds anything else.
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 8 * 1024 * 1024
# The API never redirects: a 3xx means a wrong TIKTOK_API_BASE_URL (http for https, a
# proxy's login page), and following it would turn each POST into a GET.  It is a failure
# with its reason instead.
REDIRECT_ENABLED = False

# Scrapy imports every component its base settings name, even a disabled one (docs/scrapy-internals.md).  These
# two are off above, and their imports (aiohttp, tldextract) cost about 0.2 s at the start
# of every crawl (bench/internals.py), so they are not named at all.
EXTENSIONS_BASE = {
    path: order
    for path, order in scrapy_defaults.EXTENSIONS_BASE.items()
    if path != "scrapy.extensions.remote_control.RemoteControl"
}
DOWNLOADER_MIDDLEWARES_BASE = {
    path: order
    for path, order in scrapy_defaults.DOWNLOADER_MIDDLEWARES_BASE.items()
    if path != "scrapy.downloadermiddlewares.cookies.CookiesMiddleware"
}
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "tiktok_spiders.middlewares.size.AnswerSizeMiddleware": 540,
    "tiktok_spiders.middlewares.retry.ApiRetryMiddleware": 550,
    "tiktok_spiders.middlewares.pace.PaceMiddleware": 575,
    "tiktok_spiders.middlewares.auth.AccessTokenMiddleware": 600,
    "tiktok_spiders.middlewares.quota.DailyQuotaMiddleware": 950,
}
ITEM_PIPELINES = {
    "tiktok_spiders.pipelines.validate.ValidationPipeline": 100,
    "tiktok_spiders.pipelines.store.LedgerPipeline": 300,
}
EXTENSIONS = {
    "scrapy.extensions.logstats.LogStats": None,
    # feeds first, so the closing summary knows whether they could be written
    "tiktok_spiders.extensions.export.LedgerFeeds": 500,
    "tiktok_spiders.extensions.progress.Progress": 600,
}
# Scrapy's in-memory stats without the per-call cost of its deprecation shim (docs/scrapy-internals.md).
STATS_CLASS = "tiktok_spiders.stats.StatsCollector"
LOG_LEVEL = "INFO"
LOG_FORMATTER = "tiktok_spiders.logformatter.QuietLogFormatter"
FEED_EXPORT_ENCODING = "utf-8"

"""Configuration checked before anything is requested or written.

Settings are kept as given (text from ``.env`` or the environment) and read with
Scrapy's typed getters where they are used; this module checks them all first, so
``TIKTOK_RETRY_TIMES=abc`` or a data directory that is a file is one line naming
the setting or path, exit status 2, and nothing written.
"""

from __future__ import annotations

import difflib
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from dotenv import dotenv_values, find_dotenv

from tiktok_spiders.feeds import feed_formats

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting or path that cannot work: said in one line, before the crawl."""


#: Numeric settings: (getter, smallest allowed value, whether the smallest is excluded).
NUMERIC = {
    "TIKTOK_DAILY_REQUEST_LIMIT": ("getint", 1, False),
    "TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT": ("getint", 1, False),
    "TIKTOK_RETRY_TIMES": ("getint", 0, False),
    "TIKTOK_RETRY_BACKOFF_BASE": ("getfloat", 0, False),
    "TIKTOK_RETRY_BACKOFF_MAX": ("getfloat", 0, False),
    "TIKTOK_MAX_RETRY_AFTER": ("getfloat", 0, False),
    "TIKTOK_MAX_REQUESTS_PER_SECOND": ("getfloat", 0, False),
    "TIKTOK_PROGRESS_INTERVAL": ("getfloat", 0, False),
    "TIKTOK_MIN_FREE_SPACE_MB": ("getfloat", 0, False),
    "TIKTOK_COMMENT_CAP": ("getint", 0, False),
    "TIKTOK_REFRESH_DAYS": ("getint", 1, False),
    "TIKTOK_COMPLIANCE_POLL_SECONDS": ("getfloat", 0, False),
    "TIKTOK_COMPLIANCE_MAX_HOURS": ("getfloat", 0, True),
    "TIKTOK_REFRESH_MAX_PURGE_SHARE": ("getfloat", 0, True),
    "TIKTOK_TABLES_MEMORY_MB": ("getint", 64, False),
    "CONCURRENT_REQUESTS": ("getint", 1, False),
    "DOWNLOAD_TIMEOUT": ("getfloat", 0, True),
}
#: Numeric settings that are shares: at most 1.
SHARES = ("TIKTOK_REFRESH_MAX_PURGE_SHARE",)
BOOLEAN = (
    "TIKTOK_WAIT_FOR_QUOTA_RESET",
    "TIKTOK_END_DATE_INCLUSIVE",
    "TIKTOK_ALLOW_API_CHANGE",
    "TIKTOK_PRIVATE_FILES",
    "TIKTOK_ASK_DISPLAY_NAME",
    "TIKTOK_VERBOSE",
)


def known_settings() -> list[str]:
    """Every ``TIKTOK_*`` setting there is: those ``settings.py`` defines."""
    import tiktok_spiders.settings as project  # already imported by every command: it is the settings module

    return sorted(name for name in vars(project) if name.startswith("TIKTOK_"))


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


_warned: set[str] = set()


def check_names(settings: BaseSettings) -> None:
    """A ``TIKTOK_*`` setting that does not exist is a typo: given with ``-s`` (a setting of its own,
    then) it is a :class:`ConfigError` before anything is spent; in ``.env`` or the environment
    (which only the known names are read from) a warning, once."""
    known = known_settings()
    for name in sorted(settings.attributes):
        if name.startswith("TIKTOK_") and name not in known:
            raise ConfigError(f"-s {name}: there is no such setting{did_you_mean(name, known)}")
    dotenv = dotenv_values(find_dotenv(usecwd=True)) if find_dotenv(usecwd=True) else {}
    for name in sorted({*os.environ, *dotenv}):
        if name.startswith("TIKTOK_") and name not in known and name not in _warned:
            _warned.add(name)
            where = ".env" if name in dotenv else "the environment"
            logger.warning("%s in %s is not a setting, and is ignored%s", name, where, did_you_mean(name, known))


def check_settings(settings: BaseSettings) -> None:
    """Every name a setting, every numeric and boolean setting readable and in range, the feed formats known."""
    check_names(settings)
    for name, (getter, smallest, exclusive) in NUMERIC.items():
        try:
            value = getattr(settings, getter)(name)
        except (TypeError, ValueError):
            kind = "a whole number" if getter == "getint" else "a number"
            raise ConfigError(f"{name} must be {kind}, not {settings.get(name)!r}") from None
        if value < smallest or (exclusive and value == smallest):
            relation = "more than" if exclusive else "at least"
            raise ConfigError(f"{name} must be {relation} {smallest}, not {settings.get(name)!r}")
    for name in SHARES:
        if settings.getfloat(name) > 1:
            raise ConfigError(f"{name} is a share between 0 and 1 (0.2 for 20 %), not {settings.get(name)!r}")
    for name in BOOLEAN:
        try:
            settings.getbool(name)
        except ValueError:
            raise ConfigError(f"{name} must be true or false, not {settings.get(name)!r}") from None
    try:
        feed_formats(settings)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if not str(settings.get("TIKTOK_API_BASE_URL") or "").startswith(("http://", "https://")):
        raise ConfigError(f"TIKTOK_API_BASE_URL must be an http(s) URL, not {settings.get('TIKTOK_API_BASE_URL')!r}")


def check_data_dir(path: str | Path, min_free_mb: float = 0) -> Path:
    """A data directory that is (or can become) a writable directory with room to spare."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"TIKTOK_DATA_DIR {path} is a file, not a directory: choose another TIKTOK_DATA_DIR")
    existing = next((parent for parent in (path, *path.parents) if parent.exists()), Path("."))
    if not existing.is_dir():
        raise ConfigError(f"TIKTOK_DATA_DIR {path}: {existing} is a file, not a directory")
    free_mb = shutil.disk_usage(existing).free / 1e6
    if free_mb < min_free_mb:
        raise ConfigError(
            f"{existing} has {free_mb:.0f} MB free, less than TIKTOK_MIN_FREE_SPACE_MB ({min_free_mb:g}): "
            "free some space or choose another TIKTOK_DATA_DIR"
        )
    return path

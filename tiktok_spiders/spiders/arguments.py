"""Spider arguments (``-a name=value``) and the checks made before a crawl starts.

Everything a researcher can get wrong before the first request — an unknown or
misspelled argument, a bad number or field list, missing credentials, a settings
typo, an unusable data directory — is a :class:`BadArgument`: one line on stderr,
exit status 2, nothing written.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from tiktok_spiders.config import ConfigError, check_data_dir, check_settings
from tiktok_spiders.feeds import WRITABLE, feed_path
from tiktok_spiders.kinds import KINDS

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

#: Constructor parameters that spider classes pass each other, not arguments a researcher gives.
INTERNAL_PARAMETERS = frozenset({"self", "args", "kwargs", "name", "seed_values", "seed_path", "minimum"})


class BadArgument(ValueError):
    """Bad input from the researcher: reported as one line, before any request."""


def argument_names(spidercls: type, extra: Iterable[str] = ()) -> list[str]:
    """The ``-a`` arguments a spider class takes: its constructors' parameters (the README's table)."""
    names: set[str] = set(extra)
    for klass in spidercls.__mro__:
        init = vars(klass).get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return sorted(names - INTERNAL_PARAMETERS)


def refuse_unknown(spider_name: str, given: Iterable[str], known: list[str]) -> None:
    """:class:`BadArgument` for the first argument the spider does not take, with a "did you mean"."""
    unknown = sorted(set(given) - {"name"})
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise BadArgument(
            f"unknown argument {unknown[0]!r} for spider {spider_name} ({hint}it takes: {', '.join(known)})"
        )


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def comma_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def whole_number(name: str, value: str | int, minimum: int = 0) -> int:
    """A whole-number argument of at least ``minimum``, or :class:`BadArgument` naming it."""
    try:
        number = int(value)
    except ValueError:
        raise BadArgument(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise BadArgument(f"{name} must be {minimum} or more, not {value!r}")
    return number


def parse_fields(value: str | None, allowed: tuple[str, ...], always: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The ``fields`` argument, checked against the documented list (default: all of it)."""
    if not value:
        return allowed
    names = comma_list(value)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise BadArgument(f"unknown field {unknown[0]!r}; known fields: {', '.join(allowed)}")
    return tuple(dict.fromkeys((*always, *names)))


def check_credentials(settings: BaseSettings) -> None:
    if not settings.get("TIKTOK_CLIENT_KEY") or not settings.get("TIKTOK_CLIENT_SECRET"):
        raise BadArgument(
            "TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET are not set: put them in .env "
            "(see .env.example) or in the environment"
        )


def check_scrapy_feeds(settings: BaseSettings, spider_name: str) -> None:
    """``-o`` / ``-O`` never name a feed the study writes itself: the two would write one file, which
    could end up holding this run's records alone, and the next stage reads it."""
    data_dir = settings["TIKTOK_DATA_DIR"]
    own = {feed_path(data_dir, kind, fmt).resolve() for kind in KINDS.values() for fmt in WRITABLE}
    for uri in settings.getdict("FEEDS"):
        text = str(uri).replace("%(name)s", spider_name)  # Scrapy's own placeholder for the spider
        if "://" in text and not text.startswith("file://"):
            continue  # stored elsewhere (s3://, ftp://): never one of the study's files
        if Path(unquote(urlparse(text).path) if text.startswith("file://") else text).resolve() in own:
            raise BadArgument(
                f"-o/-O {text} is a feed the study writes itself from the ledger at every close: "
                "give another file (that feed is written anyway)"
            )


def check_configuration(settings: BaseSettings, spider_name: str) -> None:
    """Settings, credentials, the data directory and Scrapy's feeds, before anything is written."""
    try:
        check_settings(settings)
        check_data_dir(settings["TIKTOK_DATA_DIR"], settings.getfloat("TIKTOK_MIN_FREE_SPACE_MB"))
    except ConfigError as error:
        raise BadArgument(str(error)) from None
    check_credentials(settings)
    check_scrapy_feeds(settings, spider_name)

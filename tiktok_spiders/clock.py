"""What time it is, for everything the tool decides by the clock.

Quota days, refresh due dates, when a page was collected, how long a compliance
task has been processing: all read the time here, in UTC, so a test moves the
clock (``monkeypatch.setattr(clock, "now", ...)``, or ``tests/forkserver.py``'s
``clock`` for a command) instead of waiting for days to pass.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def today() -> date:
    """Today's date in UTC: the quota's day."""
    return now().date()


def stamp() -> str:
    """Now as ISO 8601 to the second, with ``Z``: how times are written to the ledger and the feeds."""
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")

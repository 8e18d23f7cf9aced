"""A controllable clock: services take ``now``; routes get it from an injectable Clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gridsvc.settings import get_settings


class Clock:
    """The wall clock (UTC, timezone-aware)."""

    def now(self) -> datetime:
        """The current time."""
        return datetime.now(UTC)

    def today(self) -> date:
        """The current date where the users are (the configured local time zone, not the
        server's): between 16:00 and 24:00 UTC it is already tomorrow in Asia/Shanghai."""
        return self.now().astimezone(local_zone()).date()


class FixedClock(Clock):
    """A clock that stands still until moved: tests set time without sleeping."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        """The time it was set to."""
        return self._at

    def set(self, at: datetime) -> None:
        """Move to a given time."""
        self._at = at

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta given as keywords (minutes=30, days=2 …)."""
        self._at += timedelta(**delta)
        return self._at


_SYSTEM = Clock()


def get_clock() -> Clock:
    """The process clock (a FastAPI dependency; tests override it with a FixedClock)."""
    return _SYSTEM


def local_zone() -> ZoneInfo:
    """The users' time zone (``GRIDSVC_LOCAL_TIMEZONE``), the one every local date and time uses."""
    return ZoneInfo(get_settings().app.local_timezone)


def local_today() -> date:
    """Today's date in the users' time zone: the default of every "as of" and "on" date."""
    return _SYSTEM.today()

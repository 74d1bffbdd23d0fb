"""Reading Logs filters and Metrics periods from query strings (API) and forms (dashboard)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portico.errors import InvalidRequest
from portico.metrics.logs import LogFilters
from portico.models import utcnow
from portico.schemas import MAX_ID
from portico.vocabulary import Channel

PERIODS = {"today": None, "7d": 7, "30d": 30, "90d": 90}
EARLIEST, LATEST = "0001-01-02", "9999-12-30"


def parse_moment(value: str | None, *, name: str, end_of_day: bool = False) -> datetime | None:
    """`2026-11-24` (a whole day, UTC) or an ISO date-time; naive times are UTC."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day + timedelta(days=1) if end_of_day else day
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a date like 2026-11-24 or an ISO date-time.", field=name) from None
    except OverflowError:
        # 9999-12-31 is a valid date, but the day after it (the end of the range) is not.
        raise InvalidRequest(f"'{name}' must be a date between {EARLIEST} and {LATEST}.", field=name) from None


def parse_user(value: str | None) -> str | None:
    """A private link's id (ASCII digits, in the ids' range), 'anonymous' or 'preview'.

    `str.isdigit` takes '²' and Arabic-Indic digits, which `int()` refuses or reads: both are
    refused here with the sentence the filter gives for any other wrong value."""
    if not value or value in ("anonymous", Channel.PREVIEW):
        return value or None
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID):
        raise InvalidRequest("user must be a private link's id, 'anonymous' or 'preview'.", field="user")
    return value


def log_filters(
    *,
    user: str | None,
    channel: str | None,
    start: str | None,
    end: str | None,
    end_reason: str | None,
    q: str | None,
    rating: str | None = None,
) -> LogFilters:
    return LogFilters(
        rating=rating or None,
        user=parse_user(user),
        channel=channel or None,
        start=parse_moment(start, name="from"),
        end=parse_moment(end, name="to", end_of_day=True),
        end_reason=end_reason or None,
        q=(q or "").strip() or None,
    )


def period(*, name: str | None, start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """A named period (today, 7d, 30d, 90d) or a custom from/to; ends now unless told."""
    now = utcnow()
    if name and name != "custom":
        if name not in PERIODS:
            raise InvalidRequest("period must be today, 7d, 30d, 90d or custom.", field="period")
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        days = PERIODS[name]
        return (midnight if days is None else midnight - timedelta(days=days - 1)), now
    begin = parse_moment(start, name="from") or now - timedelta(days=7)
    finish = parse_moment(end, name="to", end_of_day=True) or now
    return begin, finish

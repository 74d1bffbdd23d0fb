"""Metrics for a period: read from the hourly rollups, merged into hour or day buckets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import InvalidRequest
from portico.metrics.histogram import merge_all, percentile
from portico.metrics.rollup import ROLLUP_SECONDS, hour_of, settle
from portico.models import PrivateLink, RefusalHourly, UsageHourly, UsageUserHourly, utcnow
from portico.vocabulary import Refusal

# Every refusal that can be counted against an assistant: an unknown one has no assistant to count
# against, and rate limits are counted in memory or Redis, never in the database.
REFUSAL_CODES = tuple(code for code in Refusal if code not in (Refusal.NOT_FOUND, Refusal.RATE_LIMITED))
MAX_BUCKETS = 24 * 93


@dataclass
class Bucket:
    start: datetime
    sessions: int = 0
    messages: int = 0
    engine_errors: int = 0
    refusals: int = 0
    replies: int = 0
    rated_up: int = 0
    rated_down: int = 0

    @property
    def rated_up_share(self) -> float | None:
        return share(self.rated_up, self.replies)

    @property
    def rated_down_share(self) -> float | None:
        return share(self.rated_down, self.replies)


def share(part: int, whole: int) -> float | None:
    """A percentage with one decimal, or None when there is nothing to share."""
    return round(100 * part / whole, 1) if whole else None


@dataclass
class Metrics:
    start: datetime
    end: datetime
    bucket: str
    buckets: list[Bucket]
    totals: dict[str, Any]
    refusals: dict[str, int]
    channels: dict[str, int]
    users: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "bucket": self.bucket,
            "totals": self.totals,
            "refusals": self.refusals,
            "channels": self.channels,
            "buckets": [
                {
                    "start": b.start.isoformat(),
                    "sessions": b.sessions,
                    "messages": b.messages,
                    "engine_errors": b.engine_errors,
                    "refusals": b.refusals,
                    "replies": b.replies,
                    "rated_up": b.rated_up,
                    "rated_down": b.rated_down,
                    "rated_up_share": b.rated_up_share,
                    "rated_down_share": b.rated_down_share,
                }
                for b in self.buckets
            ],
            "users": self.users,
        }


def bucket_start(moment: datetime, bucket: str) -> datetime:
    hour = hour_of(moment)
    return hour if bucket == "hour" else hour.replace(hour=0)


async def metrics(db: AsyncSession, *, assistant_id: int, start: datetime, end: datetime, bucket: str) -> Metrics:
    if bucket not in ("hour", "day"):
        raise InvalidRequest("bucket must be 'hour' or 'day'.", field="bucket")
    if start >= end:
        raise InvalidRequest("'from' must be before 'to'.", field="range")
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    first = bucket_start(start, bucket)
    if (end - first) / step > MAX_BUCKETS:
        raise InvalidRequest(
            f"That is too many {bucket}s for one chart: choose a shorter period or a larger bucket.", field="length"
        )
    now = utcnow()
    if end > hour_of(now - timedelta(seconds=2 * ROLLUP_SECONDS)):
        await settle(db, assistant_id=assistant_id, now=now)

    buckets: dict[datetime, Bucket] = {}
    moment = first
    while moment < end:
        buckets[moment] = Bucket(moment)
        moment += step
    in_range = (UsageHourly.assistant_id == assistant_id, UsageHourly.hour >= hour_of(start), UsageHourly.hour < end)
    totals: dict[str, Any] = {
        "sessions": 0,
        "messages": 0,
        "guest_messages": 0,
        "replies": 0,
        "engine_errors": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "sessions_ended": 0,
        "duration_sum": 0,
        "rated_up": 0,
        "rated_down": 0,
    }
    duration_bins: list[list[int]] = []
    first_token_bins: list[list[int]] = []
    channels: dict[str, int] = {}
    # Rows, not ORM objects: a 90-day page reads 2,160 of them.
    for row in await db.execute(select(*UsageHourly.__table__.columns).where(*in_range)):
        target = buckets.get(bucket_start(row.hour, bucket))
        if target is not None:
            target.sessions += row.sessions
            target.messages += row.guest_messages + row.replies
            target.engine_errors += row.engine_errors
            target.replies += row.replies
            target.rated_up += row.rated_up
            target.rated_down += row.rated_down
        for name in (
            "sessions",
            "guest_messages",
            "replies",
            "engine_errors",
            "tokens_in",
            "tokens_out",
            "sessions_ended",
            "duration_sum",
            "rated_up",
            "rated_down",
        ):
            totals[name] += getattr(row, name)
        for channel, count in row.channels.items():
            channels[channel] = channels.get(channel, 0) + count
        duration_bins.append(row.duration_bins)
        first_token_bins.append(row.first_token_bins)
    totals["messages"] = totals["guest_messages"] + totals["replies"]

    refusals: dict[str, int] = {code.value: 0 for code in REFUSAL_CODES}
    refused = select(RefusalHourly.hour, RefusalHourly.code, RefusalHourly.count).where(
        RefusalHourly.assistant_id == assistant_id, RefusalHourly.hour >= hour_of(start), RefusalHourly.hour < end
    )
    for hour, code, count in await db.execute(refused):
        refusals[code] = refusals.get(code, 0) + count
        target = buckets.get(bucket_start(hour, bucket))
        if target is not None:
            target.refusals += count

    users, totals["unique_users"] = await per_user(db, assistant_id=assistant_id, start=hour_of(start), end=end)
    ended = totals["sessions_ended"]
    totals["avg_duration_seconds"] = round(totals["duration_sum"] / ended, 1) if ended else None
    durations, first_tokens = merge_all(duration_bins), merge_all(first_token_bins)
    totals["p95_duration_seconds"] = _rounded(percentile(durations, 0.95))
    totals["p50_first_token_ms"] = _rounded(percentile(first_tokens, 0.50))
    totals["p95_first_token_ms"] = _rounded(percentile(first_tokens, 0.95))
    totals["refusals"] = sum(refusals.values())
    # Shares of the period's replies that guests rated up and down (percent; None without replies).
    totals["rated_up_share"] = share(totals["rated_up"], totals["replies"])
    totals["rated_down_share"] = share(totals["rated_down"], totals["replies"])
    return Metrics(
        start,
        end,
        bucket,
        list(buckets.values()),
        totals,
        refusals,
        channels,
        users=users,
    )


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


async def per_user(
    db: AsyncSession, *, assistant_id: int, start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Every private link, active first: its cap and use (all time), its messages in the period and
    when it was last seen; and how many links were active in the period (unique users). Only the
    period's hourly rows are read, so a page costs the same however long the history behind it."""
    usage = (
        select(
            UsageUserHourly.link_id,
            func.sum(UsageUserHourly.messages).label("messages"),
            func.max(UsageUserHourly.last_seen).label("last_seen"),
        )
        .where(UsageUserHourly.assistant_id == assistant_id, UsageUserHourly.hour >= start, UsageUserHourly.hour < end)
        .group_by(UsageUserHourly.link_id)
        .subquery()
    )
    query = (
        select(PrivateLink, usage.c.link_id.label("active"), usage.c.messages, usage.c.last_seen)
        .outerjoin(usage, usage.c.link_id == PrivateLink.id)
        .where(PrivateLink.assistant_id == assistant_id)
        .order_by(PrivateLink.revoked_at.is_not(None), PrivateLink.name, PrivateLink.id)
    )
    users = []
    unique = 0
    for link, active, messages, last_seen in (await db.execute(query)).all():
        unique += active is not None
        seen = max(filter(None, [link.last_used_at, last_seen]), default=None)
        users.append(
            {
                "link_id": link.id,
                "name": link.name,
                "revoked": link.revoked_at is not None,
                "sessions_used": link.sessions_used,
                "max_sessions": link.max_sessions,
                "messages": int(messages or 0),
                "last_seen": seen.isoformat() if seen else None,
            }
        )
    return users, unique

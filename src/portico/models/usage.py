"""Rollups that Metrics read instead of scanning millions of sessions and messages.

Rows are recomputed from the raw sessions and messages for recent hours (see
metrics/rollup.py), so they survive the retention purge of the rows they came from.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from portico.models.base import Base, UTCDateTime
from portico.vocabulary import Refusal, sql_in


class UsageHourly(Base):
    __tablename__ = "usage_hourly"

    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    # Guest sessions started in this hour (owner previews never count), in all and by channel.
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    channels: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    guest_messages: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    engine_errors: Mapped[int] = mapped_column(Integer, default=0)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    # Sessions that ended in this hour, with their durations, and replies' time to first token:
    # counts per histogram bin (metrics/histogram.py), so percentiles can be merged over hours.
    sessions_ended: Mapped[int] = mapped_column(Integer, default=0)
    duration_sum: Mapped[int] = mapped_column(Integer, default=0)
    duration_bins: Mapped[list[int]] = mapped_column(JSON, default=list)
    first_token_bins: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Replies written in this hour that guests rated up or down (as rated now: a rating made
    # later recounts its reply's hour, metrics/rollup.py).
    rated_up: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    rated_down: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class UsageUserHourly(Base):
    """Per private link and hour: for unique users and the per-user table."""

    __tablename__ = "usage_user_hourly"

    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("private_links.id", ondelete="CASCADE"), primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefusalHourly(Base):
    """Refusals at the gate, counted by code and nothing else: not who, not from where."""

    __tablename__ = "refusals_hourly"
    __table_args__ = (CheckConstraint(f"code IN {sql_in(Refusal)}", name="code"),)

    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class DailyUsage(Base):
    """Today's use of an assistant with a daily quota, counted as it happens (chat/store.py).

    Written only while the assistant has `sessions_per_day` or `tokens_per_day`; set from the raw
    rows when a cap is set (metrics/quotas.py). One row per assistant and UTC day.
    """

    __tablename__ = "daily_usage"

    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

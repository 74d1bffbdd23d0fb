"""The gate's pure decision, without a database: the order of its checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portico.access.gate import Admission, decide, link_refusal
from portico.chat.records import AssistantFacts, LinkFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PAST = NOW - timedelta(seconds=1)
FUTURE = NOW + timedelta(days=1)


def assistant(**changes: object) -> AssistantFacts:
    values = dict(
        id=1, public_id="p", name="A", description="", published_version=1, status="live", share_mode="public"
    )
    return AssistantFacts(**{**values, **changes})  # type: ignore[arg-type]


def link(**changes: object) -> LinkFacts:
    values = dict(id=7, assistant_id=1, name="U", revoked=False, max_sessions=0, sessions_used=0)
    return LinkFacts(**{**values, **changes})  # type: ignore[arg-type]


def code(**kwargs: object) -> str:
    decision = decide(**{"now": NOW, **kwargs})  # type: ignore[arg-type]
    return "admit" if isinstance(decision, Admission) else decision.code


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(public_id_given=True, key_given=False, assistant=None, link=None), "not_found"),
        (dict(public_id_given=False, key_given=True, assistant=None, link=None), "link_invalid"),
        (dict(public_id_given=True, key_given=True, assistant=None, link=link()), "not_found"),
        (dict(public_id_given=True, key_given=True, assistant=assistant(), link=link(assistant_id=2)), "link_invalid"),
        (
            dict(public_id_given=True, key_given=False, assistant=assistant(published_version=None), link=None),
            "not_published",
        ),
        (
            dict(
                public_id_given=False,
                key_given=True,
                assistant=assistant(published_version=None, status="offline"),
                link=link(),
            ),
            "not_published",
        ),
        (
            dict(public_id_given=False, key_given=True, assistant=assistant(status="offline"), link=link(revoked=True)),
            "assistant_offline",
        ),
        (
            dict(public_id_given=True, key_given=True, assistant=assistant(status="offline"), link=None),
            "assistant_offline",
        ),
        (dict(public_id_given=True, key_given=True, assistant=assistant(), link=None), "link_invalid"),
        (
            dict(
                public_id_given=False,
                key_given=True,
                assistant=assistant(),
                link=link(revoked=True, max_sessions=1, sessions_used=1),
            ),
            "link_revoked",
        ),
        (
            dict(public_id_given=False, key_given=True, assistant=assistant(), link=link(revoked=True, paused=True)),
            "link_revoked",
        ),
        (
            dict(
                public_id_given=False,
                key_given=True,
                assistant=assistant(),
                link=link(paused=True, expires_at=PAST, max_sessions=1, sessions_used=1),
            ),
            "link_paused",
        ),
        (
            dict(
                public_id_given=False,
                key_given=True,
                assistant=assistant(),
                link=link(expires_at=NOW, max_sessions=1, sessions_used=1),
            ),
            "link_expired",
        ),
        (
            dict(
                public_id_given=False,
                key_given=True,
                assistant=assistant(),
                link=link(expires_at=FUTURE, max_sessions=1, sessions_used=1),
            ),
            "link_exhausted",
        ),
        (
            dict(
                public_id_given=False, key_given=True, assistant=assistant(), link=link(max_sessions=1, sessions_used=1)
            ),
            "link_exhausted",
        ),
        (
            dict(
                public_id_given=True,
                key_given=True,
                assistant=assistant(access_code_hash="h", public_link_expires_at=PAST),
                link=link(),
            ),
            "admit",
        ),
        (
            dict(
                public_id_given=False,
                key_given=True,
                assistant=assistant(share_mode="private"),
                link=link(max_sessions=2, sessions_used=1),
            ),
            "admit",
        ),
        (
            dict(public_id_given=True, key_given=False, assistant=assistant(share_mode="private"), link=None),
            "key_required",
        ),
        (
            dict(
                public_id_given=True,
                key_given=False,
                assistant=assistant(share_mode="private", public_link_expires_at=PAST, access_code_hash="h"),
                link=None,
            ),
            "key_required",
        ),
        (
            dict(
                public_id_given=True,
                key_given=False,
                assistant=assistant(public_link_expires_at=NOW, access_code_hash="h"),
                link=None,
                access_code_valid=False,
            ),
            "link_expired",
        ),
        (
            dict(public_id_given=True, key_given=False, assistant=assistant(access_code_hash="h"), link=None),
            "access_code_required",
        ),
        (
            dict(
                public_id_given=True,
                key_given=False,
                assistant=assistant(access_code_hash="h"),
                link=None,
                access_code_valid=False,
            ),
            "access_code_invalid",
        ),
        (
            dict(
                public_id_given=True,
                key_given=False,
                assistant=assistant(access_code_hash="h", public_link_expires_at=FUTURE),
                link=None,
                access_code_valid=True,
            ),
            "admit",
        ),
        (
            dict(public_id_given=True, key_given=False, assistant=assistant(), link=None, access_code_valid=False),
            "admit",
        ),
        (dict(public_id_given=True, key_given=False, assistant=assistant(), link=None), "admit"),
    ],
)
def test_gate_checks_in_the_documented_order(kwargs, expected):
    assert code(**kwargs) == expected


def test_admission_is_attributed_to_the_link():
    decision = decide(public_id_given=False, key_given=True, assistant=assistant(), link=link(), now=NOW)
    assert isinstance(decision, Admission) and decision.link is not None and decision.link.id == 7


@pytest.mark.parametrize(
    ("fresh", "expected"),
    [
        (None, "link_revoked"),
        (link(revoked=True, paused=True), "link_revoked"),
        (link(paused=True, expires_at=PAST), "link_paused"),
        (link(expires_at=PAST, max_sessions=1, sessions_used=1), "link_expired"),
        (link(max_sessions=1, sessions_used=1), "link_exhausted"),
    ],
)
def test_a_use_not_taken_is_explained_by_the_link_as_it_now_is(fresh, expected):
    assert link_refusal(fresh, assistant_id=1, now=NOW).code == expected

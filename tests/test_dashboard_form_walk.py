"""Every dashboard form, given a bad value, answers 422 with the page again: what was typed is still
in the field, and beside it is Portico's own sentence about that field, never pydantic's.

The bad values of the forms the API's models check are made from those models' own constraints (one
past each limit, and words where a number goes), so a new limit is walked without touching this file.
"""

from __future__ import annotations

import html
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field

import annotated_types
import pytest
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo

from portico.assistants.schemas import AssistantCreate, AssistantUpdate, Quotas, SessionSettings
from portico.engines.openai import OpenAIConfig
from tests.conftest import Person
from tests.dashboard_helpers import Dashboard
from tests.test_dashboard_pages import BEHAVIOR, field_errors, web  # noqa: F401 (fixture)

# pydantic's own wording, which no dashboard sentence may carry.
LIBRARY_WORDS = re.compile(
    r"should|Input|input_value|Value error|valid (integer|number|string|url)|pydantic|type=|Field required", re.I
)


def constraints(info: FieldInfo) -> list[object]:
    """A field's limits, wherever pydantic keeps them (on the field, or inside `Annotated[...]`)."""
    found = list(info.metadata)

    def walk(annotation: object) -> None:
        for arg in typing.get_args(annotation):
            if isinstance(arg, StringConstraints | annotated_types.BaseMetadata):
                found.append(arg)
            else:
                walk(arg)

    walk(info.annotation)
    return found


def number_kind(info: FieldInfo) -> type | None:
    annotation = info.annotation
    kinds = {annotation, *typing.get_args(annotation)}
    return int if int in kinds else float if float in kinds else None


def bad_values(model: type[BaseModel], name: str) -> Iterator[str]:
    """Values the model refuses for `name`, as a person could type them."""
    info = model.model_fields[name]
    kind = number_kind(info)
    if kind is not None:
        yield "lots"
    if kind is int:
        yield "2.5"
    for limit in constraints(info):
        if isinstance(limit, annotated_types.MaxLen):
            yield "x" * (limit.max_length + 1)
        if isinstance(limit, StringConstraints) and limit.max_length is not None:
            yield "x" * (limit.max_length + 1)
        if isinstance(limit, StringConstraints) and limit.min_length:
            yield " "
        if isinstance(limit, annotated_types.Le):
            yield str(limit.le + 1)  # type: ignore[operator]
        if isinstance(limit, annotated_types.Lt | annotated_types.Gt):
            yield str(getattr(limit, "lt", None) or limit.gt)  # type: ignore[union-attr]
        if isinstance(limit, annotated_types.Ge):
            yield str(limit.ge - 1)  # type: ignore[operator]


@dataclass
class Form:
    """One dashboard form: where it is, what it posts, and which field gets which bad values."""

    name: str
    action: str  # {id} is the assistant's id
    valid: dict[str, str]
    cases: list[tuple[str, str]] = field(default_factory=list)  # (form field, bad value)
    secret: frozenset[str] = frozenset()  # password fields: never sent back in the page


def model_cases(model: type[BaseModel], names: typing.Iterable[str]) -> list[tuple[str, str]]:
    cases = [(name, bad) for name in names for bad in bad_values(model, name)]
    assert cases, f"{model.__name__} has no limits on {names}"
    return cases


OPENAI = {**BEHAVIOR, "engine_type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
FORMS = [
    Form("create assistant", "/dashboard/assistants", {"name": "Tutor"}, model_cases(AssistantCreate, ["name"])),
    Form(
        "behavior",
        "/dashboard/assistants/{id}/behavior",
        BEHAVIOR,
        model_cases(AssistantUpdate, ["name", "description", "greeting", "instructions", "knowledge"])
        + model_cases(SessionSettings, SessionSettings.model_fields),
    ),
    Form(
        "behavior, engine",
        "/dashboard/assistants/{id}/behavior",
        OPENAI,
        model_cases(OpenAIConfig, ["model", "temperature", "max_tokens", "timeout", "api_key"])
        + [("base_url", "ftp//nowhere")],
        secret=frozenset({"api_key"}),
    ),
    Form(
        "limits",
        "/dashboard/assistants/{id}/limits",
        {name: "0" for name in Quotas.model_fields},
        model_cases(Quotas, Quotas.model_fields),
    ),
    Form(
        "logs settings",
        "/dashboard/assistants/{id}/logs/settings",
        {"retention_days": "0", "store_transcripts": "1"},
        model_cases(AssistantUpdate, ["retention_days"]),
    ),
    Form(
        "allowed websites",
        "/dashboard/assistants/{id}/domains",
        {"allowed_domains": "school.example"},
        [("allowed_domains", "ftp://files.example"), ("allowed_domains", "x" * 301)],
    ),
    Form("API token", "/dashboard/tokens", {"name": "Laptop"}, [("name", " "), ("name", "x" * 201)]),
    Form(
        "password",
        "/dashboard/account/password",
        {"current": "correct horse battery", "new": "a new password"},
        [("new", "short"), ("current", "wrong password")],
        secret=frozenset({"current", "new"}),
    ),
    Form(
        "delete assistant",
        "/dashboard/assistants/{id}/delete",
        {"confirm_name": "Helper"},
        [("confirm_name", "helper"), ("confirm_name", ""), ("confirm_name", "Someone else")],
    ),
]


def kept(page: str, name: str) -> str | None:
    """What the page shows in field `name` (an input's value or a textarea's text)."""
    found = re.search(rf'<input [^>]*name="{name}"[^>]* value="([^"]*)"', page) or re.search(
        rf'<textarea [^>]*name="{name}"[^>]*>([^<]*)</textarea>', page
    )
    return html.unescape(found.group(1)) if found else None


def test_every_form_the_dashboard_has_is_walked():
    """A new POST route in the dashboard must join FORMS (or say why it has no field to get wrong)."""
    from portico.access import views as access_views
    from portico.assistants import views as assistants_views
    from portico.identity import views as identity_views
    from portico.metrics import views as metrics_views

    without_fields = {
        "/dashboard/sign-out",
        "/dashboard/tokens/{token_id}/revoke",
        "/dashboard/assistants/{assistant_id}/publish",  # its problems are the draft's, shown above
        "/dashboard/assistants/{assistant_id}/versions/{number}/restore",
        "/dashboard/assistants/{assistant_id}/duplicate",  # a button: the copy is made from what is stored
        "/dashboard/assistants/{assistant_id}/preview/sessions",  # the preview's script reads JSON
        "/dashboard/assistants/{assistant_id}/preview/sessions/{session_id}/messages",
        # The preview's thumbs: its script reads the JSON answer (tests/test_feedback.py).
        "/dashboard/assistants/{assistant_id}/preview/sessions/{session_id}/messages/{message_id}/feedback",
    }
    # Sign-in, setup and sign-up are walked in tests/test_dashboard_auth.py; the Share page's other
    # forms (users, caps, links) in tests/test_dashboard_forms.py and the Share tests.
    elsewhere = {"/dashboard/sign-in", "/dashboard/setup", "/dashboard/sign-up"}
    walked = {form.action.replace("{id}", "{assistant_id}") for form in FORMS}
    mine = [assistants_views.router, metrics_views.router, identity_views.router]
    posts = {
        route.path  # type: ignore[attr-defined]
        for router in mine
        for route in router.routes
        if "POST" in getattr(route, "methods", set())
    }
    assert posts - walked - without_fields - elsewhere == set()
    assert access_views.router.routes  # the Share page's forms exist (and are the links branch's to walk)


@pytest.mark.parametrize("form", FORMS, ids=[form.name for form in FORMS])
async def test_a_bad_value_in_any_form_keeps_what_was_typed_and_says_so_in_portico_s_words(
    web: Dashboard, alice: Person, form: Form
):
    assistant = await alice.new_assistant()
    action = form.action.format(id=assistant["id"])
    await web.get("/dashboard")
    problems = []
    for name, bad in form.cases:
        response = await web.post(action, {**form.valid, name: bad})
        errors = {k: html.unescape(v) for k, v in field_errors(response.text).items()}
        said = errors.get(name, "")
        if response.status_code != 422 or not said:
            problems.append(f"{name}={bad[:20]!r}: {response.status_code}, errors {errors}")
            continue
        if LIBRARY_WORDS.search(said) or not said.endswith(".") or not (said[0].isupper() or said[0] == "'"):
            problems.append(f"{name}={bad[:20]!r}: not our sentence: {said!r}")
        if f'aria-describedby="{name}-error" aria-invalid="true"' not in response.text and (
            f'aria-describedby="{name}-hint {name}-error" aria-invalid="true"' not in response.text
        ):
            problems.append(f"{name}: the field is not marked invalid and tied to its message")
        if name not in form.secret and kept(response.text, name) != bad:
            problems.append(
                f"{name}={bad[:20]!r}: the page lost what was typed ({(kept(response.text, name) or '')[:20]!r})"
            )
        if name in form.secret and bad in response.text:
            problems.append(f"{name}: a secret came back in the page")
    assert problems == []
    # Nothing was saved, and the assistant is still there.
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).status_code == 200


@pytest.mark.parametrize("form", [f for f in FORMS if f.name != "delete assistant"], ids=lambda f: f.name)
async def test_the_same_forms_filled_well_redirect_so_a_reload_sends_nothing(web: Dashboard, alice: Person, form: Form):
    assistant = await alice.new_assistant(name="Helper")
    await web.get("/dashboard")
    response = await web.post(form.action.format(id=assistant["id"]), form.valid)
    assert response.status_code == 303, response.text[:500]

"""The chat page guests open: `/c/{public_id}` (public link) and `/c#k=KEY` (private link), and
the widget's frame, `/c/{widget_id}?embed=1`.

Opening the page takes nothing: the session starts on the guest's first message. The page is in
the guest's language: `?lang=` (the widget's loader passes its `data-lang` so), else the
assistant's default language, else the browser's `Accept-Language`, else English.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portico.access.gate import GateRefusal
from portico.chat import sessions
from portico.chat.http import StoreDep
from portico.chat.records import AssistantFacts
from portico.kit import i18n
from portico.kit.i18n import N_, gettext
from portico.vocabulary import FEEDBACK_REASON_LABELS, REFUSAL_STATUS, Refusal
from portico.web.pages import STRICT_CSP, templates
from portico.widget.domains import frame_ancestors

router = APIRouter(include_in_schema=False)

# The page's own words, for what the API cannot say: a heading when no assistant can be named,
# and the one sentence for when the server cannot be reached at all. Every other sentence on
# the page is a `message` from the API (static/chat.js holds none).
UNAVAILABLE = N_("Unavailable")
NETWORK_MESSAGE = N_("The connection was lost. Check your internet connection and try again.")


def _page(request: Request, facts: AssistantFacts | None = None, **context: object) -> dict[str, object]:
    """The page's context, in the guest's language (which every sentence made after this is in)."""
    default = (facts.settings or {}).get("language") if facts else None
    accept = request.headers.get("accept-language", "")
    language = i18n.choose(request.query_params.get("lang", "")[:64], default, accept_language=accept)
    i18n.use(language)
    return {
        "language": language,
        "unavailable": gettext(UNAVAILABLE),
        "network_message": gettext(NETWORK_MESSAGE),
        # The reasons a guest may give for a thumbs down, in the vocabulary's order.
        "reasons": [(reason.value, gettext(label)) for reason, label in FEEDBACK_REASON_LABELS.items()],
        **context,
    }


@router.get("/c", response_class=HTMLResponse)
async def private_chat(request: Request) -> HTMLResponse:
    # The key is in the fragment, which the server never sees; the page's script looks it up.
    context = _page(request, embed=False)
    return templates.TemplateResponse(request, "chat.html", {**context, "title": gettext("Chat")})


# Refusals the page's script answers itself: a key may be in the fragment, or the guest types the code.
ASKED_BY_THE_PAGE = {Refusal.KEY_REQUIRED, Refusal.ACCESS_CODE_REQUIRED}


@router.get("/c/{public_id}", response_class=HTMLResponse)
async def public_chat(public_id: str, request: Request, store: StoreDep, embed: bool = False) -> HTMLResponse:
    # The widget's frame is named by the widget id, which rotating the public link leaves alone.
    status = 200
    # Opening the page counts nothing: the page's own lookup counts a refusal once (chat.js).
    named = {"widget_id": public_id} if embed else {"public_id": public_id}
    facts, decision = await sessions.page_facts(store, **named)
    context = _page(request, facts, embed=embed, **named)
    if facts is not None:
        # Named even when refused (offline, not published, private: a key may be in the fragment).
        context.update(title=facts.name, name=facts.name, description=facts.description)
    if isinstance(decision, GateRefusal) and decision.code not in ASKED_BY_THE_PAGE:
        status = REFUSAL_STATUS.get(decision.code, 403)
        if facts is None:
            context.update(title=context["unavailable"], description="")  # no name, so no avatar letter
        context.update(refusal=decision.message)
    response = templates.TemplateResponse(request, "chat.html", context, status_code=status)
    if embed:
        # The widget's frame: framable only by the assistant's allowed domains (any site when
        # the list is empty). The browser enforces this; the direct link is not affected.
        allowed = list(facts.allowed_domains) if facts else []
        policy = STRICT_CSP.replace("frame-ancestors 'none'", f"frame-ancestors {frame_ancestors(allowed)}")
        response.headers["Content-Security-Policy"] = policy
    return response

"""The chat page guests open: `/c/{public_id}` (public link) and `/c#k=KEY` (private link), and
the widget's frame, `/c/{widget_id}?embed=1`.

Opening the page takes nothing: the session starts on the guest's first message.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portico.access.gate import GateRefusal, decide
from portico.chat.api import StoreDep
from portico.models import utcnow
from portico.vocabulary import FEEDBACK_REASON_LABELS, REFUSAL_STATUS, Refusal
from portico.web.pages import STRICT_CSP, templates
from portico.widget.domains import frame_ancestors

router = APIRouter(include_in_schema=False)

# The page's own words, for what the API cannot say: a heading when no assistant can be named,
# and the one sentence for when the server cannot be reached at all. Every other sentence on
# the page is a `message` from the API or in the template (static/chat*.js hold none).
UNAVAILABLE = "Unavailable"
NETWORK_MESSAGE = "The connection was lost. Check your internet connection and try again."


# The reasons a guest may give for a thumbs down, in the vocabulary's order and words.
REASONS = [(reason.value, label) for reason, label in FEEDBACK_REASON_LABELS.items()]


def _page(**context: object) -> dict[str, object]:
    return {"unavailable": UNAVAILABLE, "network_message": NETWORK_MESSAGE, "reasons": REASONS, **context}


@router.get("/c", response_class=HTMLResponse)
async def private_chat(request: Request) -> HTMLResponse:
    # The key is in the fragment, which the server never sees; the page's script looks it up.
    return templates.TemplateResponse(request, "chat.html", _page(title="Chat", embed=False))


# Refusals the page's script answers itself: a key may be in the fragment, or the guest types the code.
ASKED_BY_THE_PAGE = {Refusal.KEY_REQUIRED, Refusal.ACCESS_CODE_REQUIRED}


@router.get("/c/{public_id}", response_class=HTMLResponse)
async def public_chat(public_id: str, request: Request, store: StoreDep, embed: bool = False) -> HTMLResponse:
    # The widget's frame is named by the widget id, which rotating the public link leaves alone.
    context = _page(widget_id=public_id, embed=embed) if embed else _page(public_id=public_id, embed=embed)
    status = 200
    # Opening the page counts nothing: the page's own lookup counts a refusal once (chat.js).
    facts = await (store.facts_by_widget_id(public_id) if embed else store.facts_by_public_id(public_id))
    decision = decide(public_id_given=True, key_given=False, assistant=facts, link=None, now=utcnow())
    if facts is not None:
        # Named even when refused (offline, not published, private: a key may be in the fragment).
        context.update(title=facts.name, name=facts.name, description=facts.description)
    if isinstance(decision, GateRefusal) and decision.code not in ASKED_BY_THE_PAGE:
        status = REFUSAL_STATUS.get(decision.code, 403)
        if facts is None:
            context.update(title=UNAVAILABLE, description="")  # no name, so no avatar letter
        context.update(refusal=decision.message)
    response = templates.TemplateResponse(request, "chat.html", context, status_code=status)
    if embed:
        # The widget's frame: framable only by the assistant's allowed domains (any site when
        # the list is empty). The browser enforces this; the direct link is not affected.
        allowed = list(facts.allowed_domains) if facts else []
        policy = STRICT_CSP.replace("frame-ancestors 'none'", f"frame-ancestors {frame_ancestors(allowed)}")
        response.headers["Content-Security-Policy"] = policy
    return response

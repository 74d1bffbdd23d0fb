"""Documents (issue 24): owners upload files, the assistant answers from them citing the document and
page, a Publish snapshots what guests read, and bad files fail alone with a reason."""

from __future__ import annotations

import httpx
import pytest

from portico.config import Settings
from portico.documents.convert import ConversionFailed
from portico.documents.pool import ConversionPool
from tests import document_files as files
from tests.chat_helpers import parse_events, say
from tests.conftest import Person, app_for, start
from tests.team_helpers import make_team

PRICES_2027 = files.pdf(
    [
        ["Price list 2027", "Bikes are rented by the day from our shop at the harbour."],
        ["Rental prices", "A tandem bike costs EUR 45 a day.", "A cargo bike costs EUR 60 a day."],
    ]
)
PRICES_2028 = files.pdf(
    [
        ["Price list 2027", "Bikes are rented by the day from our shop at the harbour."],
        ["Rental prices", "A tandem bike costs EUR 50 a day.", "A cargo bike costs EUR 65 a day."],
    ]
)
PDF = "application/pdf"


def base(assistant: dict) -> str:
    return f"/api/v1/assistants/{assistant['id']}/documents"


async def upload(person: Person, assistant: dict, *named: tuple[str, bytes]) -> httpx.Response:
    return await person.request("POST", base(assistant), files=[("files", (name, data)) for name, data in named])


async def ask(client: httpx.AsyncClient, assistant: dict, question: str) -> tuple[str, list[str]]:
    session = (await start(client, public_id=assistant["public_id"])).json()
    events = parse_events((await say(client, session, question, stream=True)).text)
    done = next(data for name, data in events if name == "done")
    return "".join(data["text"] for name, data in events if name == "token"), done["sources"]


async def test_files_of_each_kind_are_listed_and_show_their_structured_text(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    page = b"<html><head><script>steal()</script></head><body><h1>Opening hours</h1><p>Mon to Fri.</p></body></html>"
    response = await upload(
        alice,
        assistant,
        ("Price list 2027.pdf", PRICES_2027),
        ("Staff handbook.docx", files.docx()),
        ("Rooms.xlsx", files.xlsx()),
        ("Hours.html", page),
        ("Notes.md", b"# Parking\n\nParking is free."),
    )
    assert response.status_code == 201, response.text
    listed = (await alice.request("GET", base(assistant))).json()["documents"]
    assert [(d["title"], d["kind"], d["pages"], d["status"]) for d in listed] == [
        ("Price list 2027", "pdf", 2, "ready"),
        ("Staff handbook", "docx", None, "ready"),
        ("Rooms", "xlsx", None, "ready"),
        ("Hours", "html", None, "ready"),
        ("Notes", "markdown", None, "ready"),
    ]
    assert all(d["passages"] >= 1 and d["size_bytes"] > 0 and d["has_original"] is False for d in listed)
    texts = [(await alice.request("GET", f"{base(assistant)}/{d['id']}")).json()["text"] for d in listed]
    assert "<!-- page 2 -->\n\nRental prices\nA tandem bike costs EUR 45 a day." in texts[0]
    assert "## Holidays" in texts[1] and "- Ask your manager two weeks ahead" in texts[1]
    assert "| Years of service | Extra days |" in texts[1]
    assert "| Harbour | 12 | EUR 240 |" in texts[2]
    assert texts[3] == "# Opening hours\n\nMon to Fri.\n"  # the script is never read


async def test_the_built_in_engine_answers_from_a_document_and_names_its_page(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False, knowledge="")
    assert (await upload(alice, assistant, ("Price list 2027.pdf", PRICES_2027))).status_code == 201
    await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/publish")
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "live"})
    reply, sources = await ask(client, assistant, "How much is a tandem bike?")
    assert "EUR 45" in reply
    assert sources == ["Price list 2027, page 2"]
    # The owner's Logs name the document and page too.
    path = f"/api/v1/assistants/{assistant['id']}/sessions"
    session = (await alice.request("GET", path)).json()["items"][0]
    messages = (await alice.request("GET", f"{path}/{session['id']}")).json()["messages"]
    assert messages[-1]["sources"] == ["Price list 2027, page 2"]


async def test_a_section_of_a_document_without_pages_is_cited_by_its_heading(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False, knowledge="")
    assert (await upload(alice, assistant, ("Staff handbook.docx", files.docx()))).status_code == 201
    await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/publish")
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "live"})
    reply, sources = await ask(client, assistant, "How many days of paid holiday do employees get?")
    assert "28 days" in reply
    assert sources == ["Staff handbook: Holidays"]


async def test_replacing_a_file_changes_what_guests_read_only_at_publish(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    uploaded = (await upload(alice, assistant, ("Price list 2027.pdf", PRICES_2027))).json()["documents"][0]
    path = f"/api/v1/assistants/{assistant['id']}"
    await alice.request("POST", f"{path}/publish")
    await alice.request("PUT", f"{path}/status", json={"status": "live"})

    replaced = await alice.request(
        "PUT", f"{base(assistant)}/{uploaded['id']}", files={"file": ("Price list 2027.pdf", PRICES_2028, PDF)}
    )
    assert replaced.status_code == 200, replaced.text
    assert (await alice.request("GET", path)).json()["has_unpublished_changes"] is True
    diff = (await alice.request("GET", f"{path}/draft/diff")).json()
    assert [c["field"] for c in diff["changes"]] == ["documents"]
    assert "EUR 60" in (await ask(client, assistant, "How much is a cargo bike?"))[0]

    await alice.request("POST", f"{path}/publish")
    assert "EUR 65" in (await ask(client, assistant, "How much is a cargo bike?"))[0]
    assert (await alice.request("GET", path)).json()["has_unpublished_changes"] is False

    # Deleting it in the draft leaves guests the published text, too, until the next Publish.
    assert (await alice.request("DELETE", f"{base(assistant)}/{uploaded['id']}")).status_code == 204
    assert "EUR 65" in (await ask(client, assistant, "How much is a cargo bike?"))[0]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("Program.pdf", b"MZ\x90\x00 an executable renamed", "document_unreadable"),
        ("Secret.pdf", files.encrypted_pdf(), "document_encrypted"),
        ("Empty.txt", b"", "document_empty"),
        ("Bomb.docx", files.zip_bomb_docx(), "document_bomb"),
        ("Scan.pdf", files.pdf([[]]), "document_no_text"),
        ("Tool.exe", b"MZ", "document_type_unsupported"),
        ("Loop.pdf", files.looping_pdf(), "document_unreadable"),
    ],
)
async def test_a_file_that_cannot_be_read_is_refused_with_a_reason(client, alice: Person, name, data, code):
    assistant = await alice.new_assistant(publish=False, live=False)
    response = await upload(alice, assistant, (name, data))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"].startswith(f"{name}: ")
    assert (await alice.request("GET", base(assistant))).json()["documents"] == []


async def test_one_bad_file_among_several_fails_alone(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    response = await upload(alice, assistant, ("Secret.pdf", files.encrypted_pdf()), ("Notes.md", b"# A\n\nB."))
    assert response.status_code == 201, response.text
    failed, ready = response.json()["documents"]
    assert (failed["status"], failed["error_code"], ready["status"]) == ("failed", "document_encrypted", "ready")
    assert "password" in failed["reason"]


async def test_a_replacement_that_cannot_be_read_leaves_the_document_as_it_was(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    uploaded = (await upload(alice, assistant, ("Prices.pdf", PRICES_2027))).json()["documents"][0]
    response = await alice.request(
        "PUT", f"{base(assistant)}/{uploaded['id']}", files={"file": ("Prices.pdf", b"not a pdf", PDF)}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "document_unreadable")
    kept = (await alice.request("GET", f"{base(assistant)}/{uploaded['id']}")).json()
    assert "EUR 45" in kept["text"]


async def test_a_file_name_loses_its_folders_and_is_cut_to_255_characters(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    response = await upload(alice, assistant, ("../../etc/" + "x" * 300 + ".md", b"# A\n\nB."))
    document = response.json()["documents"][0]
    assert document["filename"] == "x" * 252 + ".md"
    assert len(document["title"]) == 200


@pytest.fixture
def small_limits(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "document_max_bytes": 2_000,
            "documents_per_assistant": 2,
            "document_chars_per_assistant": 100,
            "document_max_pages": 1,
        }
    )


@pytest.fixture
def keeping(settings: Settings) -> Settings:
    return settings.model_copy(update={"document_keep_originals": True})


async def person_on(settings: Settings, alice: Person):
    application = app_for(settings)
    async with application.router.lifespan_context(application):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=str(alice.http.base_url)) as http:
            yield Person(alice.email, alice.token, http)


@pytest.fixture
async def limited(small_limits: Settings, alice: Person):
    async for person in person_on(small_limits, alice):
        yield person


@pytest.fixture
async def keeper(keeping: Settings, alice: Person):
    async for person in person_on(keeping, alice):
        yield person


async def test_the_file_itself_is_kept_only_when_the_setting_says_so(alice: Person, keeper: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    dropped = (await upload(alice, assistant, ("Prices.pdf", PRICES_2027))).json()["documents"][0]
    assert dropped["has_original"] is False
    missing = await alice.request("GET", f"{base(assistant)}/{dropped['id']}/original")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "document_not_found")

    kept = (await upload(keeper, assistant, ("Prices.pdf", PRICES_2027))).json()["documents"][0]
    assert kept["has_original"] is True
    download = await keeper.request("GET", f"{base(assistant)}/{kept['id']}/original")
    assert (download.status_code, download.content) == (200, PRICES_2027)
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''Prices.pdf"


async def test_a_file_larger_than_other_request_bodies_may_be_is_uploaded(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    text = ("# Section\n\n" + "Plain words of a long handbook. " * 40 + "\n\n") * 1_500  # about 2 MB
    response = await upload(alice, assistant, ("Handbook.md", text.encode()))
    assert response.status_code == 201, response.text[:200]
    assert response.json()["documents"][0]["size_bytes"] > 1024 * 1024


async def test_the_limits_refuse_what_is_too_big_too_many_or_too_long(limited: Person):
    assistant = await limited.new_assistant(publish=False, live=False)
    too_big = await upload(limited, assistant, ("Big.txt", b"x" * 2_001))
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "document_too_large")
    pages = await upload(limited, assistant, ("Prices.pdf", PRICES_2027))
    assert (pages.status_code, pages.json()["error"]["code"]) == (422, "document_too_many_pages")
    long = await upload(limited, assistant, ("Long.txt", b"word " * 30))
    assert (long.status_code, long.json()["error"]["code"]) == (422, "document_chars_limit")
    assert (await upload(limited, assistant, ("A.txt", b"Short."), ("B.txt", b"Short too."))).status_code == 201
    third = await upload(limited, assistant, ("C.txt", b"One more."))
    assert (third.status_code, third.json()["error"]["code"]) == (422, "too_many_documents")


async def test_editors_manage_documents_other_teams_get_404_and_the_audit_log_records_it(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    assistant = await alice.new_assistant(publish=False, live=False)
    uploaded = await upload(ed, assistant, ("Notes.md", b"# A\n\nB."))
    assert uploaded.status_code == 201
    document = uploaded.json()["documents"][0]
    replaced = await ed.request(
        "PUT", f"{base(assistant)}/{document['id']}", files={"file": ("Notes.md", b"# C\n\nD.")}
    )
    assert replaced.status_code == 200
    assert (await ed.request("DELETE", f"{base(assistant)}/{document['id']}")).status_code == 204

    audit = (await alice.request("GET", "/api/v1/team/audit")).json()["items"]
    changes = [e["detail"].get("change") for e in audit if e["detail"].get("fields") == "documents"]
    assert changes == ["deleted", "replaced", "uploaded"]

    other = await make_person_elsewhere(app, client)
    again = (await upload(alice, assistant, ("Notes.md", b"# A\n\nB."))).json()["documents"][0]
    for method, path in [
        ("GET", base(assistant)),
        ("GET", f"{base(assistant)}/{again['id']}"),
        ("DELETE", f"{base(assistant)}/{again['id']}"),
    ]:
        response = await other.request(method, path)
        assert response.status_code == 404, (method, path)
    theirs = await other.new_assistant(publish=False, live=False)
    response = await other.request("GET", f"{base(theirs)}/{again['id']}")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "document_not_found")


async def make_person_elsewhere(app: object, client: httpx.AsyncClient) -> Person:
    from tests.conftest import make_person

    return await make_person(app, client, "bob@example.com")


@pytest.mark.sqlite_only
async def test_a_file_past_the_time_limit_is_stopped_and_the_next_one_converts():
    pool = ConversionPool(1)
    try:
        with pytest.raises(ConversionFailed) as stopped:
            await pool.convert("Prices.pdf", PRICES_2027, max_pages=500, seconds=0.000_1)
        assert stopped.value.code == "document_timeout"
        converted = await pool.convert("Prices.pdf", PRICES_2027, max_pages=500, seconds=60)
        assert converted.pages == 2
    finally:
        pool.close()


@pytest.mark.sqlite_only
async def test_no_write_lock_is_held_while_a_file_converts(app, client, alice: Person):
    """On SQLite a transaction holds the one write lock: a file converting for a minute must not
    hold every guest's message back."""
    import asyncio

    from portico.db import writer_lock

    assistant = await alice.new_assistant(publish=False, live=False)
    converting, go_on = asyncio.Event(), asyncio.Event()
    real = ConversionPool(1)

    class Watched(ConversionPool):
        async def convert(self, filename: str, data: bytes, *, max_pages: int, seconds: float):  # type: ignore[override]
            converting.set()
            await go_on.wait()
            return await real.convert(filename, data, max_pages=max_pages, seconds=seconds)

    app.state.documents_pool = Watched(1)
    try:
        uploading = asyncio.create_task(upload(alice, assistant, ("Notes.md", b"# A\n\nB.")))
        await asyncio.wait_for(converting.wait(), 10)
        assert not writer_lock(app.state.engine).locked()  # type: ignore[attr-defined]
        go_on.set()
        assert (await uploading).status_code == 201
    finally:
        del app.state.documents_pool
        real.close()


async def test_restoring_a_version_keeps_the_drafts_documents_and_a_copy_starts_without(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    assistant = await alice.new_assistant(publish=False, live=False)
    path = f"/api/v1/assistants/{assistant['id']}"
    await upload(alice, assistant, ("Prices.pdf", PRICES_2027))
    await alice.request("POST", f"{path}/publish")
    await alice.request("PATCH", path, json={"greeting": "Changed"})
    web = await team.browser("alice")
    restored = await web.post(f"/dashboard/assistants/{assistant['id']}/versions/1/restore")
    assert restored.status_code == 303, restored.text
    assert (await alice.request("GET", path)).json()["has_unpublished_changes"] is False
    assert len((await alice.request("GET", base(assistant))).json()["documents"]) == 1

    copy = (await alice.request("POST", f"{path}/duplicate")).json()
    assert (await alice.request("GET", base(copy))).json()["documents"] == []
    assert "documents" not in str(copy["draft"])

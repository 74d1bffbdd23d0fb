"""Driving the dashboard's forms over HTTP, as a browser without JavaScript would."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Dashboard:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = await self.http.get(path, headers={"Accept": "text/html"}, **kwargs)  # type: ignore[arg-type]
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict | None = None, files: dict | None = None) -> httpx.Response:
        if not self.csrf:
            await self.get("/dashboard/sign-in")
        body = {"csrf": self.csrf, **(data or {})}
        response = await self.http.post(path, data=body, files=files, headers={"Accept": "text/html"})
        if "portico_session=" in response.headers.get("set-cookie", ""):
            # Signed in or out: the forms' token changed with the session, as a browser's next page shows.
            self.csrf = ""
        return response

    async def sign_in(self, email: str, password: str) -> httpx.Response:
        await self.get("/dashboard/sign-in")
        return await self.post("/dashboard/sign-in", {"email": email, "password": password})


def dashboard_client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://portico.test")

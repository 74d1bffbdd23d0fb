"""identity/ is the floor every domain stands on for who is asking: it imports nothing above it
(docs/design.md, "Identity"), and nothing below the HTTP layer imports its views."""

from __future__ import annotations

import ast
from pathlib import Path

import portico

SRC = Path(portico.__file__).parent

# What identity/ may import from Portico: itself, the lower floors, and the HTTP helpers of web/
# (forms) and the CLI's (commands) for its own views and commands.
ALLOWED = {
    "portico.identity",
    "portico.kit",
    "portico.models",
    "portico.errors",
    "portico.vocabulary",
    "portico.config",
    "portico.db",
    "portico.schemas",
    "portico.deps",
    "portico.web.forms",
    "portico.commands",
}
HTTP_MODULES = {"views", "join", "api", "cli", "deps"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "portico":  # `from portico import teams` imports the package teams
                found.update(f"portico.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("portico")}


def _allowed(name: str) -> bool:
    return name == "portico" or any(name == ok or name.startswith(ok + ".") for ok in ALLOWED)


def test_identity_imports_nothing_from_the_domains_above_it():
    crossings = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / "identity").glob("*.py")
        for name in _imports(path)
        if not _allowed(name)
    }
    assert crossings == set()


def test_nothing_below_the_http_layer_imports_identitys_views():
    below = [path for path in (SRC / "identity").glob("*.py") if path.stem not in HTTP_MODULES]
    assert below, "identity has service modules"
    for path in below:
        views = {name for name in _imports(path) if name.rsplit(".", 1)[-1] in ("views", "join")}
        assert views == set(), f"{path.name} imports {views}"

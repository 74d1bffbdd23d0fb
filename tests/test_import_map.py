"""The map of docs/design.md ("Map"), checked: a module that imports across it fails here, naming
the import and the rule.

An AST walk over src/portico, without importing anything. The layers, bottom up:
- the floor: `kit`, `vocabulary`, `errors`, `config`, `db`, `schemas`, `models`, `migrations`,
  each importing only the parts of the floor below it;
- stores and services: every other module of a domain package, which imports the floor and
  other services, never an edge module;
- the edge: routers (`api.py`, `views.py`, any module that makes an `APIRouter`), HTTP and CLI
  helpers (`deps.py`, `http.py`, `web/`, `handlers`, `commands`, `cli.py`, and any module that
  imports FastAPI or Starlette), which import services and helpers but no router;
- the assembly: `app` mounts the routers, `cli` the command groups.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src"
ROOT = "portico"

# What each part of the floor may import (itself included): nothing above it.
FLOOR: dict[str, set[str]] = {
    "kit": {"kit"},
    "vocabulary": {"kit"},
    "errors": {"kit"},
    "config": {"kit"},
    "db": {"kit"},
    "schemas": {"kit", "vocabulary", "errors"},
    "models": {"models", "vocabulary", "kit"},
    "migrations": {"migrations", "models", "vocabulary", "kit", "db", "config"},
}
ASSEMBLY = {"portico.app", "portico.cli", "portico.serving", "portico", "portico.__main__"}
ROUTER_NAMES = {"api", "views"}
EDGE_NAMES = {"api", "views", "cli", "http", "deps", "handlers", "commands", "health"}
HTTP_LIBRARIES = ("fastapi", "starlette", "sse_starlette")
# Identity is who is asking; teams and owners (its old home) build on it, never the other way.
APART = {"identity": ("teams", "owners")}


@dataclass(frozen=True)
class Module:
    name: str
    imports: frozenset[str]  # portico modules (and packages) it names
    libraries: frozenset[str]  # the top-level names of what else it imports
    makes_router: bool


def read_module(name: str, source: str, *, package: bool = False) -> Module:
    tree = ast.parse(source)
    imports: set[str] = set()
    libraries: set[str] = set()
    # The package a relative import starts from.
    here = name if package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (imports if alias.name.split(".")[0] == ROOT else libraries).add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if base.split(".")[0] != ROOT:
                libraries.add(base.split(".")[0])
                continue
            # `from portico.chat import api` names the module portico.chat.api.
            imports.add(base)
            imports.update(f"{base}.{alias.name}" for alias in node.names)
    makes_router = any(
        isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "APIRouter"
        for node in tree.body
        for node in ast.walk(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )
    return Module(name, frozenset(imports), frozenset(lib.split(".")[0] for lib in libraries), makes_router)


def read_tree(src: Path = SRC) -> dict[str, Module]:
    modules = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if package else parts)
        modules[name] = read_module(name, path.read_text(encoding="utf-8"), package=package)
    return modules


def part(name: str) -> str:
    """The top-level part of Portico a module belongs to: `chat` for portico.chat.store."""
    return name.split(".")[1] if name.count(".") else ""


def is_router(module: Module) -> bool:
    return module.name.rpartition(".")[2] in ROUTER_NAMES or module.makes_router


def is_edge(module: Module) -> bool:
    if part(module.name) in FLOOR:  # the floor may name a request type (kit.net) or a dependency (db)
        return False
    last = module.name.rpartition(".")[2]
    return (
        is_router(module)
        or last in EDGE_NAMES
        or part(module.name) == "web"
        or any(library in HTTP_LIBRARIES for library in module.libraries)
    )


def crossings(modules: dict[str, Module]) -> list[str]:
    """Every import across the map, as 'importer -> imported: the rule it breaks'."""
    found = []
    for module in modules.values():
        named = {modules[name] for name in module.imports if name in modules and name != module.name}
        own = part(module.name)
        for other in sorted(named, key=lambda m: m.name):
            rule = None
            if own in FLOOR:
                if part(other.name) not in FLOOR[own]:
                    rule = f"the floor's {own} imports only {sorted(FLOOR[own])}"
            elif module.name in ASSEMBLY:
                continue
            elif is_router(other):
                rule = "only the assembly (app.py) imports a router or view module"
            elif other.name.endswith(".cli") and module.name != "portico.cli":
                rule = "only the CLI's assembly (cli.py) imports a command group"
            elif is_edge(other) and not is_edge(module):
                rule = "stores and services import no HTTP or CLI module"
            elif part(other.name) in APART.get(own, ()):
                rule = f"{own} imports nothing from {', '.join(APART[own])}"
            if rule:
                found.append(f"{module.name} -> {other.name}: {rule}")
    return found


def test_no_module_imports_across_the_map():
    modules = read_tree()
    assert "portico.chat.store" in modules and "portico.app" in modules  # the walk found the code
    assert crossings(modules) == []


def test_every_part_of_portico_is_on_the_map():
    """A new package must be placed on docs/design.md's map (and so in the floor or above it)."""
    design = (SRC.parent / "docs" / "design.md").read_text(encoding="utf-8")
    mapped = design.split("## Map", 1)[1].split("\n## ", 1)[0]
    parts = {part(name) for name in read_tree() if part(name) and part(name) != "__main__"}
    missing = sorted(name for name in parts if f"`{name}" not in mapped)
    assert missing == []


def _synthetic(**sources: str) -> dict[str, Module]:
    return {
        name: read_module(name, source, package=name.count(".") < 2 and name != "portico.app")
        for name, source in sources.items()
    }


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        # A view importing another domain's view (what assistants' page frame was).
        (
            {
                "portico.access.views": "from portico.assistants.views import assistant_page",
                "portico.assistants.views": "router = APIRouter()",
            },
            ["portico.access.views -> portico.assistants.views: only the assembly"],
        ),
        # A router found by what it makes, imported with a relative import.
        (
            {
                "portico.chat.helpers": "from . import sheet",
                "portico.chat.sheet": "from fastapi import APIRouter\nrouter = APIRouter()",
            },
            ["portico.chat.helpers -> portico.chat.sheet: only the assembly"],
        ),
        # The floor importing a service.
        (
            {"portico.models.link": "from portico.chat.store import GuestStore", "portico.chat.store": ""},
            ["portico.models.link -> portico.chat.store: the floor's models"],
        ),
        # A service importing an HTTP helper.
        (
            {"portico.chat.store": "from portico.chat import http", "portico.chat.http": "import fastapi"},
            ["portico.chat.store -> portico.chat.http: stores and services"],
        ),
        # Identity importing teams.
        (
            {"portico.identity.members": "from portico.teams import service", "portico.teams.service": ""},
            ["portico.identity.members -> portico.teams.service: identity imports nothing"],
        ),
        # What the map allows: the assembly mounts routers, a view imports services and helpers.
        (
            {
                "portico.app": "from portico.chat import api",
                "portico.chat.api": "from portico.chat.http import StoreDep\nfrom portico.chat import sessions",
                "portico.chat.http": "from fastapi import Depends",
                "portico.chat.sessions": "from portico.kit import crypto",
                "portico.kit.crypto": "import hashlib",
                "portico.teams.service": "from portico.identity import members",
                "portico.identity.members": "from portico.models import Owner",
            },
            [],
        ),
    ],
)
def test_the_walk_finds_each_kind_of_crossing(sources: dict[str, str], expected: list[str]):
    found = crossings(_synthetic(**sources))
    assert len(found) == len(expected), found
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start), line

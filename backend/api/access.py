"""What each API route asks of its caller, read from the route's own dependencies: the security table in
docs/api.md and the ticket route's list of streams both come from here, so neither can drift from the code."""
from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from backend.api.deps import get_principal, get_stream_principal

_CONVERTOR = re.compile(r"\{(\w+):\w+\}")  # {path:path} in the route is {path} in the OpenAPI
STREAM = "read (bearer header or stream ticket)"
ANY_TOKEN = "any valid token"
PUBLIC = "none"


def _needs(dependant: Dependant) -> str | None:
    for dep in dependant.dependencies:
        if dep.call is get_stream_principal:
            return STREAM
        scope = getattr(dep.call, "scope", None)
        if scope:
            return scope
        if dep.call is get_principal:
            return ANY_TOKEN
        found = _needs(dep)
        if found:
            return found
    return None


def route_needs(route: RouteContext) -> str:
    return _needs(route.dependant) or PUBLIC


def api_routes(app: FastAPI) -> list[tuple[str, str, RouteContext]]:
    """(method, path as the OpenAPI writes it, route) of every documented operation, in path order."""
    out = [(m, _CONVERTOR.sub(r"{\1}", r.path), r) for r in iter_route_contexts(app.routes)
           if isinstance(r.original_route, APIRoute) and r.include_in_schema for m in sorted(r.methods)]
    return sorted(out, key=lambda t: (t[1], t[0]))


def is_stream_path(app: FastAPI, path: str) -> bool:
    return any(route_needs(r) == STREAM and r.path_regex.fullmatch(path) for _, _, r in api_routes(app))


def security_table(app: FastAPI) -> str:
    """The Markdown table of docs/api.md's security section."""
    lines = ["| Method | Path | Needs |", "| --- | --- | --- |"]
    lines += [f"| {m} | `{p}` | {route_needs(r)} |" for m, p, r in api_routes(app)]
    return "\n".join(lines) + "\n"

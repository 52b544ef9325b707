"""A declarative route table: method, path pattern, access rule, handler.

Patterns are ``/``-separated literals and ``{name}`` parameters, matched
against the request's path segments (split before percent-decoding, see
``wire.segments``). The table compiles to a tree of literal and parameter
branches, so a request costs one dict lookup per segment. Among several
matching routes the first in table order with the request's method wins; a
path that matches only with other methods is 405 with an ``Allow`` header.

Access rules: ``PUBLIC`` routes need no token and hold no pool data; ``READ``
and ``WRITE`` routes need the token (when the server has one) and the matching
``--access`` mode. Every path under ``/v0`` checks the token before it is
matched, so an unknown ``/v0`` path does not tell a stranger it does not exist.

The ``body`` of a route names the request body it takes (``"json"`` or a
media type); the dispatcher checks the ``Content-Type`` (415) and reads the
body (``--max-body-bytes``) before the handler runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from plasmite_core.errors import NotFoundError, UsageError

from .wire import HttpError

PUBLIC, READ, WRITE = "public", "read", "write"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    access: str
    handler: Callable[..., Awaitable[None]]
    body: str | None = None  # "json", or the one media type the body must have
    head: bool = False  # also answer HEAD (static routes)


@dataclass(slots=True)
class Request:
    """What a handler receives besides the app."""

    scope: dict
    receive: Callable
    send: Callable
    cors: list
    params: dict[str, Any]
    body: bytes = b""


@dataclass
class _Node:
    literals: dict[str, "_Node"] = field(default_factory=dict)
    param: tuple[str, "_Node"] | None = None
    routes: list[Route] = field(default_factory=list)


class Router:
    def __init__(self, routes: list[Route] = ()) -> None:
        self._root = _Node()
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        node = self._root
        for part in (p for p in route.pattern.split("/") if p):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if node.param is None:
                    node.param = (name, _Node())
                elif node.param[0] != name:
                    raise ValueError(f"parameter {{{name}}} conflicts with {{{node.param[0]}}} in {route.pattern}")
                node = node.param[1]
            else:
                node = node.literals.setdefault(part, _Node())
        node.routes.append(route)

    def match(self, method: str, segs: list[str]) -> tuple[Route, dict[str, str]]:
        """The route for ``method`` on these segments and its raw parameters; 404 or 405 otherwise."""
        # The common case without backtracking: literals first, then the parameter.
        node: _Node | None = self._root
        params: dict[str, str] = {}
        for seg in segs:
            child = node.literals.get(seg)
            if child is None:
                if node.param is None:
                    node = None
                    break
                name, child = node.param
                params[name] = seg
            node = child
        if node is not None:
            for route in node.routes:
                if route.method == method or (route.head and method == "HEAD"):
                    return route, params
        return self._search(method, segs)

    def _search(self, method: str, segs: list[str]) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for routes, params in self._walk(self._root, segs, 0, {}):
            for route in routes:
                if route.method == method or (route.head and method == "HEAD"):
                    return route, params
                if route.method not in allowed:
                    allowed.append(route.method)
        if allowed:
            text = ", ".join(allowed)
            raise HttpError(UsageError(f"method {method} not allowed here", hint=f"use {text}"), 405,
                            [(b"allow", text.encode())])
        raise HttpError(
            NotFoundError(f"no such endpoint: {method} /{'/'.join(segs)}", hint="see /openapi.json for the endpoints"),
            404,
        )

    def _walk(self, node: _Node, segs: list[str], i: int, params: dict):
        """Every (routes, params) whose pattern matches, literals before parameters."""
        if i == len(segs):
            if node.routes:
                yield node.routes, params
            return
        seg = segs[i]
        child = node.literals.get(seg)
        if child is not None:
            yield from self._walk(child, segs, i + 1, params)
        if node.param is not None:
            name, child = node.param
            yield from self._walk(child, segs, i + 1, {**params, name: seg})

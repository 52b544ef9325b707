"""Who may do what: Host, Origin and Content-Type guards, bearer tokens, access modes, CORS.

A developer's laptop always has a browser open, so a server bound to loopback
is still reachable by every web page the user visits: a page may send "simple"
requests (a form, or ``fetch`` with a ``text/plain`` body) to
``http://127.0.0.1:9700`` without a preflight, and a page on a DNS name the
attacker re-points at 127.0.0.1 (DNS rebinding) becomes same-origin with the
server and may read the answers too. Three checks close that, before any side
effect:

- ``Host`` must name this server: a loopback IP or ``localhost``/``*.localhost``
  (which browsers never resolve through DNS), the bound IP (any IP literal
  when bound to all interfaces), or a name the operator allowed with
  ``--allowed-host``. Rebinding needs an attacker's DNS name in ``Host``.
- A state-changing request (any method but GET, HEAD and OPTIONS) carrying an
  ``Origin`` must come from the server's own origin or an allowed
  ``--cors-origin``; without ``Origin``, a ``Sec-Fetch-Site`` that says
  cross-site is refused too. Non-browser clients send neither.
- JSON endpoints require a JSON ``Content-Type`` and the Lite3 append its own
  type (415 otherwise): no form or ``text/plain`` body is ever parsed.

Then, on ``/v0`` routes, the bearer token (compared in constant time) and the
route's access rule (read or write against ``--access``); CORS grants go to
the exact ``--cors-origin`` origins only.
"""

from __future__ import annotations

import hmac
import ipaddress
import re

from plasmite_core.errors import PermissionDeniedError, UsageError

from .wire import PROTOCOL_VERSION, HttpError

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_CACHE_LIMIT = 256
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def split_host(value: str) -> str | None:
    """The host name of a ``Host`` header value (lower case, no port, no brackets), or None if malformed."""
    text = value.strip().lower()
    if not text or any(c in text for c in "/@?#\\ \t,"):
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        host = text[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
        return host
    host, sep, port = text.partition(":")
    if sep and (not port.isdigit() or ":" in port):
        return None
    return host.rstrip(".") if host != "." else None


def normalize_allowed_host(raw: str) -> str:
    """One ``--allowed-host`` entry: a name, ``.suffix`` (the name and its subdomains), an IP, or ``*``."""
    text = (raw or "").strip().lower()
    hint = "give a host name like pools.example.com, .example.com for it and its subdomains, an IP, or *"
    if text == "*":
        return text
    if not text:
        raise UsageError("--allowed-host must not be empty", hint=hint)
    if "://" in text or "/" in text:
        raise UsageError(f"--allowed-host takes a host name, not a URL: {raw!r}", hint=hint)
    suffix = text.startswith(".")
    body = text[1:] if suffix else text
    if body.startswith("[") and body.endswith("]") and not suffix:
        body = body[1:-1]
    if ":" in body:
        try:
            return str(ipaddress.IPv6Address(body))
        except ValueError:
            raise UsageError(f"--allowed-host takes no port: {raw!r}",
                             hint="the port is not part of the match; " + hint) from None
    if not _NAME.fullmatch(body):
        raise UsageError(f"invalid --allowed-host {raw!r}", hint=hint)
    body = body.rstrip(".")
    return "." + body if suffix else body


class HostPolicy:
    """Which ``Host`` values name this server (see the module docstring)."""

    def __init__(self, bind_host: str, allowed: list[str] | tuple[str, ...] = ()) -> None:
        self.any = "*" in allowed
        self.names = {a for a in allowed if not a.startswith(".") and a != "*"}
        self.suffixes = tuple(a for a in allowed if a.startswith("."))
        try:
            bound = ipaddress.ip_address(bind_host)
        except ValueError:
            bound = None
        self.bound = bound
        self.all_interfaces = bound is not None and bound.is_unspecified
        self._ok: dict[bytes, bool] = {}

    def allows_name(self, host: str) -> bool:
        if self.any or host in self.names:
            return True
        if host == "localhost" or host.endswith(".localhost"):
            return True
        for suffix in self.suffixes:
            if host == suffix[1:] or host.endswith(suffix):
                return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback or self.all_interfaces or ip == self.bound or str(ip) in self.names

    def allows(self, value: bytes) -> bool:
        """Whether a raw ``Host`` header value is acceptable (cached: a server sees few distinct values)."""
        known = self._ok.get(value)
        if known is not None:
            return known
        host = split_host(value.decode("latin-1"))
        ok = host is not None and self.allows_name(host)
        if len(self._ok) < _CACHE_LIMIT:
            self._ok[value] = ok
        return ok


def check_host(policy: HostPolicy, host: bytes | None) -> None:
    """Refuse a request whose ``Host`` does not name this server (403). A request without one passes:
    browsers always send it, so its absence is not a rebinding."""
    if host is None or policy.allows(host):
        return
    shown = host.decode("latin-1")[:200]
    name = split_host(shown)
    hint = (
        f"if clients really reach this server as {name!r}, start it with --allowed-host {name}"
        if name else "send a valid Host header"
    )
    raise HttpError(PermissionDeniedError(f"forbidden: host not allowed: {shown!r}", hint=hint), 403)


def own_origin(scheme: str, host: bytes) -> str:
    """The origin a page served by this request's ``Host`` would have."""
    text = host.decode("latin-1").strip().lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and text.endswith(default):
        text = text[: -len(default)]
    return f"{scheme}://{text}"


def check_origin(method: str, origin: str | None, fetch_site: bytes | None, scheme: str,
                 host: bytes | None, cors: set[str]) -> None:
    """Refuse a state-changing request from a foreign page (403), before anything is read or written."""
    if method in SAFE_METHODS:
        return
    if origin is None:
        if fetch_site in (b"cross-site", b"same-site"):
            raise HttpError(PermissionDeniedError(
                "forbidden: cross-site request refused (Sec-Fetch-Site: " + fetch_site.decode() + ")",
                hint="state changes are accepted from this server's own pages and --cors-origin origins only",
            ), 403)
        return
    lowered = origin.strip().lower()
    if lowered in cors or origin in cors:
        return
    if host is not None and lowered == own_origin(scheme, host):
        return
    raise HttpError(PermissionDeniedError(
        f"forbidden: cross-origin {method} from {origin[:200]!r} refused",
        hint="the server operator can allow a browser origin with --cors-origin",
    ), 403)


def media_type(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.split(b";", 1)[0].strip().lower().decode("latin-1")


def require_json(content_type: bytes | None) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``*/*+json``)."""
    kind = media_type(content_type)
    if kind == "application/json" or (kind is not None and kind.startswith("application/") and kind.endswith("+json")):
        return
    got = "no Content-Type" if kind is None else f"Content-Type {kind!r}"
    raise HttpError(UsageError(
        f"unsupported media type: this endpoint takes JSON, got {got}",
        hint="send Content-Type: application/json (curl: --json, or -H 'content-type: application/json')",
    ), 415)


def require_type(content_type: bytes | None, expected: str, hint: str) -> None:
    """415 unless the body is declared as ``expected`` (parameters allowed)."""
    kind = media_type(content_type)
    if kind == expected:
        return
    got = "no Content-Type" if kind is None else f"Content-Type {kind!r}"
    raise HttpError(UsageError(f"unsupported media type: this endpoint takes {expected}, got {got}", hint=hint), 415)


# ------------------------------------------------------------ token, access


def check_token(expected: bytes | None, scope) -> None:
    """401 unless the request carries ``Authorization: Bearer <expected>`` (once)."""
    if expected is None:
        return
    values = [v for k, v in scope["headers"] if k == b"authorization"]
    if not values:
        raise HttpError(
            PermissionDeniedError("missing bearer token", hint="send Authorization: Bearer <token>"),
            401, [(b"www-authenticate", b"Bearer")],
        )
    scheme, _, presented = values[0].partition(b" ") if len(values) == 1 else (b"", b"", b"")
    # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
    if scheme.lower() != b"bearer" or not hmac.compare_digest(presented, expected):
        raise HttpError(
            PermissionDeniedError("invalid bearer token", hint="check the token (or --token-file) you are using"),
            401, [(b"www-authenticate", b'Bearer error="invalid_token"')],
        )


def check_access(config, read: bool) -> None:
    """403 when ``--access`` forbids the route's kind of operation."""
    if config.allows_read if read else config.allows_write:
        return
    what = "read" if read else "write"
    raise HttpError(
        PermissionDeniedError(
            f"forbidden: access mode {config.access} disallows {what} operations",
            hint="the server operator can change it with --access",
        ),
        403,
    )


# ---------------------------------------------------------------------- CORS

_EXPOSED = b"plasmite-version, plasmite-seq, plasmite-time-ns"
_METHODS = b"GET, POST, DELETE, OPTIONS"


def cors_headers(cors: set[str], origin: str | None) -> list:
    """The CORS grant for an allowed origin (on every response, errors included)."""
    if origin is not None and origin in cors:
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", _EXPOSED),
            (b"vary", b"origin"),
        ]
    return [(b"vary", b"origin")] if cors else []


async def preflight(cors: set[str], origin: str | None, headers, send) -> None:
    """Answer a CORS preflight: 204 for an allowed origin, 403 otherwise."""
    wants = any(k == b"access-control-request-method" for k, _ in headers)
    if origin is None or not wants:
        raise HttpError(
            UsageError("OPTIONS is only answered as a CORS preflight"), 405, [(b"allow", _METHODS)],
        )
    if origin not in cors:
        raise HttpError(
            PermissionDeniedError(
                f"origin not allowed: {origin}", hint="the server operator can allow it with --cors-origin"
            ),
            403,
        )
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", _METHODS),
                (b"access-control-allow-headers", b"authorization, content-type, mcp-protocol-version, last-event-id"),
                (b"access-control-max-age", b"600"),
                (b"vary", b"origin"),
                (b"plasmite-version", PROTOCOL_VERSION),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})

"""Redis refs: ``redis[s]://[user:password@]host:port[/POOL][?db=N&option=...]``.

The database and options live in the query string so the path can name the
pool as in every other pool ref. ``safe`` is the form shown in errors, logs
and ``pool info``: it never carries a user name or password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from plasmite_core.errors import UsageError


@dataclass
class Location:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    db: int = 0
    pool: str | None = None
    cluster: bool | None = None  # None: ask the server
    replicas: int | None = None  # flush waits for this many replicas (None: all connected)
    wait_timeout_ms: int = 1000
    reconnect_s: float = 60.0
    extra: dict[str, str] = field(default_factory=dict)  # other query keys, for redis-py (ssl_ca_certs=...)

    @property
    def server_safe(self) -> str:
        """The server without credentials (for messages, logs and pool info)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def pool_safe(self, pool: str | None) -> str:
        """A pool's ref without credentials."""
        return self.server_safe + (f"/{pool}" if pool else "") + (f"?db={self.db}" if self.db else "")

    @property
    def safe(self) -> str:
        return self.pool_safe(self.pool)

    def server_url(self, with_db: bool = True) -> str:
        """The URL handed to redis-py (credentials included, never shown)."""
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = urlencode(self.extra)
        db = f"/{self.db}" if with_db else ""
        return f"{self.scheme}://{auth}{host}:{self.port}{db}" + (f"?{query}" if query else "")


def _int(key: str, text: str, lo: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = lo - 1
    if value < lo:
        raise UsageError(f"redis ref option {key} must be an integer >= {lo}, got {text!r}",
                         hint=f"e.g. ?{key}={max(lo, 1)}")
    return value


def parse(url: str) -> Location:
    """Parse a redis ref; a path names the pool (one segment)."""
    if not isinstance(url, str):
        raise UsageError("a redis ref must be a string", hint="e.g. redis://127.0.0.1:6379/chat")
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    scheme = parts.scheme.lower() if parts is not None else ""
    if parts is None or scheme not in ("redis", "rediss") or not host or parts.fragment:
        raise UsageError(
            "invalid redis ref (credentials hidden): " + _redact(url),
            hint="use redis://[user:password@]host:port/POOL, with ?db=N for a database other than 0",
        )
    pool = parts.path[1:] if parts.path.startswith("/") else parts.path
    if "/" in pool:
        raise UsageError(
            f"invalid redis ref: {_redact(url)}: the path must be one pool name",
            hint="put the database in the query string: redis://host:6379/POOL?db=2",
        )
    loc = Location(scheme, host, port, parts.username or None, parts.password, pool=pool or None)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "db":
            loc.db = _int(key, value, 0)
        elif key == "cluster":
            loc.cluster = value.lower() in ("1", "true", "yes")
        elif key == "replicas":
            loc.replicas = _int(key, value, 0)
        elif key == "wait_timeout_ms":
            loc.wait_timeout_ms = _int(key, value, 1)
        elif key == "reconnect_s":
            loc.reconnect_s = float(_int(key, value, 0))
        else:
            loc.extra[key] = value
    if loc.pool is not None:
        from plasmite import validate_pool_name

        loc.pool = validate_pool_name(loc.pool)
    return loc


def _redact(url: str) -> str:
    """``url`` with anything between ``//`` and ``@`` replaced."""
    head, sep, rest = url.partition("://")
    if not sep:
        return "<unparseable>"
    at = rest.rfind("@", 0, rest.find("/") if "/" in rest else len(rest))
    if at >= 0:
        rest = "***@" + rest[at + 1:]
    return f"{head}://{rest}"

"""redis-py exceptions mapped to Plasmite's nine error kinds.

Messages name the server by its safe location (never credentials) and carry
a hint saying what to check. Our Lua scripts raise errors with a leading code
word (``NOPOOL``, ``EXISTS``, ``TOOBIG``) that maps to a kind here.
"""

from __future__ import annotations

from redis import exceptions as rx

from plasmite_core.errors import (
    AlreadyExistsError,
    BusyError,
    CorruptError,
    InternalError,
    IoError,
    NotFoundError,
    PermissionDeniedError,
    PlasmiteError,
    UsageError,
)

# Errors after which a follower reconnects and resumes (server restarting,
# failing over, or briefly unreachable).
TRANSIENT = (rx.ConnectionError, rx.TimeoutError, rx.BusyLoadingError, rx.TryAgainError, rx.ClusterDownError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) and not isinstance(exc, (rx.AuthenticationError, rx.AuthorizationError))


def map_error(exc: BaseException, where: str, pool: str | None = None) -> PlasmiteError:
    """The Plasmite error for a redis-py exception raised while talking to ``where``."""
    text = str(exc)
    code = text.split(" ", 1)[0] if text else ""
    if not code.isupper():
        code = ""
    if isinstance(exc, (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError)) or code in (
        "NOAUTH", "WRONGPASS", "NOPERM",
    ):
        return PermissionDeniedError(
            f"Redis at {where} refused access ({code or 'authentication failed'})",
            hint="check the user name and password in the ref (redis://user:password@host:port/POOL) "
            "and the ACL rules of that user",
        )
    if isinstance(exc, rx.BusyLoadingError) or code in ("LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN"):
        return BusyError(f"Redis at {where} is busy ({code or 'loading'})",
                         hint="the server is loading its data set or running a long script; retry shortly")
    if isinstance(exc, rx.ReadOnlyError) or code == "READONLY":
        return IoError(f"Redis at {where} is a read-only replica",
                       hint="point the ref at the primary (or at Sentinel's current primary)")
    if isinstance(exc, rx.ClusterDownError) or code == "CLUSTERDOWN":
        return BusyError(f"Redis Cluster at {where} is down", hint="wait for the cluster to elect primaries, then retry")
    if isinstance(exc, rx.TimeoutError):
        return IoError(f"Redis at {where} did not answer in time",
                       hint="check the network and the server's load; slow commands show in SLOWLOG")
    if isinstance(exc, rx.ConnectionError) and ("certificate" in text.lower() or "SSL" in text):
        return IoError(f"TLS handshake with Redis at {where} failed: {text[:160]}",
                       hint="trust the server's certificate with --tls-ca PEM (or ?ssl_ca_certs=PEM in the ref); "
                       "is the port a TLS port?")
    if isinstance(exc, rx.ConnectionError):
        return IoError(f"cannot reach Redis at {where}: {_cause(exc)}",
                       hint="is redis-server running and listening there? check host, port, TLS (rediss://) "
                       "and firewalls")
    if code == "NOPOOL":
        return NotFoundError(f"pool not found: {pool or '?'} on {where}", pool,
                             hint="create it with `pls pool create REDIS_URL/POOL` or RedisClient.create_pool")
    if code == "EXISTS":
        return AlreadyExistsError(f"pool already exists: {pool or '?'} on {where}", pool,
                                  hint="open the existing pool instead, or delete it first")
    if code == "TOOBIG":
        return UsageError(f"message larger than pool {pool or '?'} can hold", pool,
                          hint="create the pool with a larger size, or send smaller messages")
    if code == "OOM":
        return IoError(f"Redis at {where} is out of memory (maxmemory reached)",
                       hint="raise maxmemory, or shrink pools; evicting policies must not touch pool keys")
    if "ID specified in XADD" in text or "WRONGTYPE" in text or "user_script" in text:
        # A stream behind its seq counter, a key of another type, or a meta
        # hash our scripts cannot read: the pool's keys were changed outside.
        return CorruptError(f"pool {pool or '?'} on {where} is damaged: {text[:160]}", pool,
                            hint="its keys (plasmite:{POOL}:meta and :log) were changed outside Plasmite; "
                            "recreate the pool")
    if isinstance(exc, rx.ResponseError) and "unknown command" in text:
        return UsageError(f"Redis at {where} cannot host pools: {text[:200]}",
                          hint="Plasmite needs Redis 6.2 or newer with Lua scripting")
    return InternalError(f"Redis at {where}: {type(exc).__name__}: {text[:200]}",
                         hint="report this with the command you ran")


def _cause(exc: BaseException) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    if "timed out" in text.lower():
        return "connection timed out"
    if "closed" in text.lower():
        return "connection closed by the server"
    return "connection failed"

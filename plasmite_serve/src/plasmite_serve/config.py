"""Server configuration: parse, validate and resolve everything before binding.

`pls serve`, `pls serve check` and `create_app()` share this module so that a
configuration `check` accepts is exactly one `serve` starts with, and so that
every refusal (non-loopback without opt-in, wildcard CORS, half a TLS pair,
...) is a Usage error with a hint instead of a failure at first request.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from plasmite_core.errors import IoError, NotFoundError, PlasmiteError, UsageError
from plasmite_core.tokens import read_token_file

DEFAULT_BIND = "127.0.0.1:9700"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_TAIL_TIMEOUT_MS = 30_000
DEFAULT_MAX_TAIL_CONCURRENCY = 64
# Largest pool a remote client may create: remote creates allocate disk.
DEFAULT_MAX_POOL_BYTES = 1 << 30
# Slow or idle connections are closed after these; see _uvicorn.py.
DEFAULT_IDLE_TIMEOUT_MS = 30_000
DEFAULT_HEAD_TIMEOUT_MS = 10_000
DEFAULT_BODY_TIMEOUT_MS = 30_000
DEFAULT_MAX_CONNECTIONS = 1024
# How long an append waits for a pool's writer lock held by another process before Busy/423.
DEFAULT_LOCK_TIMEOUT_MS = 5_000
ACCESS_MODES = ("read-only", "write-only", "read-write")
SELF_SIGNED_VALIDITY_DAYS = 825


@dataclass
class ServeConfig:
    """What the user asked for (flags or keyword arguments), not yet validated."""

    bind: str = DEFAULT_BIND
    pool_dir: str | os.PathLike | None = None
    token: str | None = None
    token_file: str | os.PathLike | None = None
    access: str = "read-write"
    cors_origins: list[str] = field(default_factory=list)
    allow_non_loopback: bool = False
    insecure_no_tls: bool = False
    tls_cert: str | os.PathLike | None = None
    tls_key: str | os.PathLike | None = None
    tls_self_signed: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_tail_timeout_ms: int = DEFAULT_MAX_TAIL_TIMEOUT_MS
    max_tail_concurrency: int = DEFAULT_MAX_TAIL_CONCURRENCY
    max_pool_bytes: int = DEFAULT_MAX_POOL_BYTES
    allowed_hosts: list[str] = field(default_factory=list)
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS
    head_timeout_ms: int = DEFAULT_HEAD_TIMEOUT_MS
    body_timeout_ms: int = DEFAULT_BODY_TIMEOUT_MS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    backend: str | None = None  # pools on a transport's server (redis://...) instead of pool_dir


@dataclass
class TlsMaterial:
    cert_path: Path
    key_path: Path
    fingerprint: str
    self_signed: bool = False


@dataclass
class ResolvedConfig:
    """A validated configuration: every field is ready to use."""

    host: str
    port: int
    pool_dir: Path
    token: str | None
    token_file_used: bool
    access: str
    cors_origins: list[str]
    allow_non_loopback: bool
    insecure_no_tls: bool
    tls: TlsMaterial | None
    tls_self_signed: bool
    max_body_bytes: int
    max_tail_timeout_ms: int
    max_tail_concurrency: int
    max_pool_bytes: int = 0
    allowed_hosts: list[str] = field(default_factory=list)
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS
    head_timeout_ms: int = DEFAULT_HEAD_TIMEOUT_MS
    body_timeout_ms: int = DEFAULT_BODY_TIMEOUT_MS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    backend: str | None = None

    @property
    def allows_read(self) -> bool:
        return self.access in ("read-only", "read-write")

    @property
    def allows_write(self) -> bool:
        return self.access in ("write-only", "read-write")

    @property
    def scheme(self) -> str:
        return "https" if (self.tls is not None or self.tls_self_signed) else "http"

    @property
    def listen(self) -> str:
        return format_hostport(self.host, self.port)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{format_hostport(display_host(self.host), self.port)}"


# ---------------------------------------------------------------- bind address


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` with an IP literal (``[::1]:9700`` for IPv6); ``localhost`` means 127.0.0.1."""
    raw = (text or "").strip()
    hint = "use a host:port value like 127.0.0.1:9700 (or [::1]:9700)"
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0 or raw[end + 1 : end + 2] != ":":
            raise UsageError(f"invalid bind address: {text!r}", hint=hint)
        host, port_text = raw[1:end], raw[end + 2 :]
    else:
        host, sep, port_text = raw.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(f"invalid bind address: {text!r}", hint=hint)
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"invalid bind address: {text!r} (host must be an IP address)", hint=hint) from None
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"invalid bind address: {text!r} (bad port)", hint=hint) from None
    if not 0 <= port <= 65535:
        raise UsageError(f"invalid bind address: {text!r} (port out of range)", hint=hint)
    return str(ip), port


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def display_host(host: str) -> str:
    """The host a client on this machine would dial (unspecified binds become loopback)."""
    if host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def scope_label(host: str) -> str:
    if is_loopback(host):
        return "loopback only"
    if is_unspecified(host):
        return "all interfaces"
    return "network reachable"


# ---------------------------------------------------------------------- CORS


def normalize_cors_origin(raw: str) -> str:
    """Exact ``scheme://host[:port]`` origins only; wildcards and paths are refused."""
    text = (raw or "").strip()
    example = "use explicit origins like https://app.example.com or http://localhost:5173"
    if not text:
        raise UsageError("CORS origin must not be empty", hint=example)
    if "*" in text:
        raise UsageError(f"CORS wildcard origin is not allowed: {text!r}", hint="repeat --cors-origin once per exact origin; " + example)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid CORS origin: {text!r}", hint=example) from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"CORS origin scheme must be http or https: {text!r}", hint=example)
    if not parts.hostname:
        raise UsageError(f"CORS origin must include a host: {text!r}", hint=example)
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"CORS origin must not include user info: {text!r}", hint=example)
    if parts.path not in ("", "/"):
        raise UsageError(f"CORS origin must not include a path: {text!r}", hint="give only scheme, host and optional port")
    if parts.query or parts.fragment or text.endswith("?") or "#" in text:
        raise UsageError(f"CORS origin must not include a query or fragment: {text!r}", hint="give only scheme, host and optional port")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    origin = f"{parts.scheme}://{host}"
    if port is not None and port != default_port:
        origin += f":{port}"
    return origin


def normalize_cors_origins(raw: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for entry in raw or ():
        origin = normalize_cors_origin(entry)
        if origin not in out:
            out.append(origin)
    return out


# --------------------------------------------------------------------- tokens


def generate_token() -> str:
    """32 random bytes, hex: 256 bits from the OS CSPRNG."""
    return secrets.token_hex(32)


# ------------------------------------------------------------------------ TLS


def fingerprint_der(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def cert_fingerprint(cert_path: str | os.PathLike) -> str:
    """SHA-256 fingerprint of the first certificate in a PEM file."""
    p = Path(cert_path)
    try:
        pem = p.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise NotFoundError(f"TLS certificate not found: {p}", str(p), hint="fix --tls-cert, or run `pls serve init`") from None
    except OSError as exc:
        raise IoError(f"cannot read TLS certificate {p}: {exc.strerror or exc}", str(p)) from None
    begin = pem.find("-----BEGIN CERTIFICATE-----")
    end = pem.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        raise UsageError(f"TLS certificate file contains no certificate: {p}", str(p), hint="give a PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        der = ssl.PEM_cert_to_DER_cert(pem[begin : end + len("-----END CERTIFICATE-----")] + "\n")
    except ValueError:
        raise UsageError(f"TLS certificate is not valid PEM: {p}", str(p)) from None
    return fingerprint_der(der)


def check_tls_pair(cert_path: Path, key_path: Path) -> None:
    """Load the pair the way the server will, so a mismatch fails before binding."""
    if not key_path.exists():
        raise NotFoundError(f"TLS key not found: {key_path}", str(key_path), hint="fix --tls-key, or run `pls serve init`")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(cert_path), str(key_path))
    except ssl.SSLError as exc:
        raise UsageError(
            f"invalid TLS certificate or key ({exc.reason or exc})", str(cert_path),
            hint="check that --tls-key is the private key of --tls-cert (PEM)",
        ) from None
    except OSError as exc:
        raise IoError(f"cannot read TLS material: {exc.strerror or exc}", str(key_path)) from None


def host_names(bind_host: str | None, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Names a server certificate should cover besides localhost and the loopback IPs.

    The bind IP when it is a specific address; for an all-interfaces bind, this
    machine's host name and the addresses it resolves to locally (no network
    traffic); plus ``extra`` (``--san``).
    """
    import re

    names: list[str] = []
    dns = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")

    def add(value: str, strict: bool = False) -> None:
        value = value.strip()
        if not value or value in names or value in ("localhost", "127.0.0.1", "::1"):
            return
        try:
            if ipaddress.ip_address(value).is_loopback:
                return
        except ValueError:
            if not dns.fullmatch(value) or len(value) > 253:
                if strict:
                    raise UsageError(f"invalid certificate name: {value!r}",
                                     hint="use a DNS name (letters, digits, '-', '.') or an IP address") from None
                return
        names.append(value)

    if bind_host and not is_unspecified(bind_host):
        add(bind_host)
    elif bind_host:
        import socket

        try:
            hostname = socket.gethostname()
        except OSError:
            hostname = ""
        if hostname:
            add(hostname)
            try:
                for info in socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP):
                    add(str(info[4][0]).split("%", 1)[0])
            except OSError:
                pass
    for value in extra:
        add(value, strict=True)
    return names


def generate_self_signed(bind_host: str | None = None, extra_names: list[str] | tuple[str, ...] = ()
                         ) -> tuple[bytes, bytes, str]:
    """A fresh EC P-256 certificate for localhost, 127.0.0.1, ::1 and ``host_names()``.

    Returns ``(cert_pem, key_pem, fingerprint)``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plasmite serve")])
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    for value in host_names(bind_host, extra_names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            sans.append(x509.DNSName(value))
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=SELF_SIGNED_VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem, fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def write_private(path: Path, data: bytes, *, force: bool = True) -> None:
    """Write a secret with mode 0600 from the first byte (never world-readable)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if not force:
        flags |= os.O_EXCL
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            fh.write(data)
    finally:
        if fd >= 0:
            os.close(fd)


# ------------------------------------------------------------------- resolve


def _positive(name: str, value: object, example: str) -> int:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a positive integer", hint=f"use a positive value like {example}") from None
    if number <= 0:
        raise UsageError(f"{name} must be greater than zero", hint=f"use a positive value like {example}")
    return number


def resolve(config: ServeConfig, *, self_signed_dir: Path | None = None) -> ResolvedConfig:
    """Validate ``config``; raise a PlasmiteError (Usage, NotFound, Io) naming the flag at fault.

    With ``tls_self_signed`` and a ``self_signed_dir``, the certificate and key
    are generated into that directory (the caller owns its lifetime); without a
    directory only the rules are checked (``serve check``) and the fingerprint
    of a throwaway certificate is not reported.
    """
    host, port = parse_bind(config.bind)
    if config.access not in ACCESS_MODES:
        raise UsageError(f"invalid --access {config.access!r}", hint="use read-only, write-only or read-write")
    cors = normalize_cors_origins(list(config.cors_origins or ()))
    loopback = is_loopback(host)
    if not loopback and not config.allow_non_loopback:
        raise UsageError(
            f"non-loopback bind {format_hostport(host, port)} requires explicit opt-in",
            hint="re-run with --allow-non-loopback, or bind a loopback address such as 127.0.0.1:9700",
        )
    if (config.tls_cert is None) != (config.tls_key is None):
        raise UsageError(
            "TLS requires both --tls-cert and --tls-key",
            hint="give both paths, or run `pls serve init` to generate a matching pair",
        )
    if config.tls_self_signed and config.tls_cert is not None:
        raise UsageError(
            "--tls-self-signed cannot be combined with --tls-cert/--tls-key",
            hint="use either --tls-self-signed or certificate paths (`pls serve init` can generate them)",
        )
    if config.token is not None and config.token_file is not None:
        raise UsageError(
            "--token cannot be combined with --token-file",
            hint="use --token for development, or --token-file (see `pls serve init`) for deployments",
        )
    max_body = _positive("--max-body-bytes", config.max_body_bytes, "1048576")
    max_timeout = _positive("--max-tail-timeout-ms", config.max_tail_timeout_ms, "30000")
    max_tails = _positive("--max-tail-concurrency", config.max_tail_concurrency, "64")
    max_pool = _positive("--max-pool-bytes", config.max_pool_bytes, "1073741824")
    idle_timeout = _positive("--idle-timeout-ms", config.idle_timeout_ms, "30000")
    head_timeout = _positive("--head-timeout-ms", config.head_timeout_ms, "10000")
    body_timeout = _positive("--body-timeout-ms", config.body_timeout_ms, "30000")
    max_connections = _positive("--max-connections", config.max_connections, "1024")
    lock_timeout = _positive("--lock-timeout-ms", config.lock_timeout_ms, "5000")
    from .security import normalize_allowed_host

    allowed_hosts: list[str] = []
    for entry in config.allowed_hosts or ():
        allowed = normalize_allowed_host(entry)
        if allowed not in allowed_hosts:
            allowed_hosts.append(allowed)

    token = config.token
    token_file_used = False
    if config.token_file is not None:
        token = read_token_file(config.token_file)
        token_file_used = True
    elif token is not None:
        token = token.strip()
        if not token or any(ch.isspace() for ch in token):
            raise UsageError("--token must be a non-empty value without whitespace", hint="or use --token-file")

    allows_write = config.access in ("write-only", "read-write")
    tls_configured = config.tls_self_signed or config.tls_cert is not None
    if not loopback and allows_write:
        if not token_file_used:
            raise UsageError(
                "non-loopback write access requires --token-file",
                hint="run `pls serve init` and pass the generated --token-file, or use --access read-only",
            )
        if not tls_configured and not config.insecure_no_tls:
            raise UsageError(
                "non-loopback write access requires TLS",
                hint="use --tls-cert/--tls-key (see `pls serve init`) or --tls-self-signed; --insecure-no-tls only for demos",
            )

    tls: TlsMaterial | None = None
    if config.tls_cert is not None:
        cert_path = Path(config.tls_cert).expanduser().absolute()
        key_path = Path(config.tls_key).expanduser().absolute()  # type: ignore[arg-type]
        fingerprint = cert_fingerprint(cert_path)
        check_tls_pair(cert_path, key_path)
        tls = TlsMaterial(cert_path, key_path, fingerprint)
    elif config.tls_self_signed and self_signed_dir is not None:
        cert_pem, key_pem, fingerprint = generate_self_signed(host)
        cert_path = Path(self_signed_dir) / "plasmite-self-signed-cert.pem"
        key_path = Path(self_signed_dir) / "plasmite-self-signed-key.pem"
        cert_path.write_bytes(cert_pem)
        write_private(key_path, key_pem)
        tls = TlsMaterial(cert_path, key_path, fingerprint, self_signed=True)

    return ResolvedConfig(
        host=host,
        port=port,
        pool_dir=resolve_pool_dir(config.pool_dir),
        backend=config.backend or None,
        token=token,
        token_file_used=token_file_used,
        access=config.access,
        cors_origins=cors,
        allow_non_loopback=config.allow_non_loopback,
        insecure_no_tls=config.insecure_no_tls,
        tls=tls,
        tls_self_signed=config.tls_self_signed,
        max_body_bytes=max_body,
        max_tail_timeout_ms=max_timeout,
        max_tail_concurrency=max_tails,
        max_pool_bytes=max_pool,
        allowed_hosts=allowed_hosts,
        idle_timeout_ms=idle_timeout,
        head_timeout_ms=head_timeout,
        body_timeout_ms=body_timeout,
        max_connections=max_connections,
        lock_timeout_ms=lock_timeout,
    )


def resolve_pool_dir(pool_dir: str | os.PathLike | None) -> Path:
    if pool_dir is not None:
        return Path(pool_dir).expanduser().absolute()
    from plasmite_core.refs import default_pool_dir

    return Path(default_pool_dir()).expanduser().absolute()


__all__ = [
    "ACCESS_MODES",
    "DEFAULT_BIND",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_TAIL_CONCURRENCY",
    "DEFAULT_MAX_TAIL_TIMEOUT_MS",
    "PlasmiteError",
    "ResolvedConfig",
    "ServeConfig",
    "TlsMaterial",
    "cert_fingerprint",
    "generate_self_signed",
    "host_names",
    "generate_token",
    "normalize_cors_origin",
    "normalize_cors_origins",
    "parse_bind",
    "read_token_file",
    "resolve",
]

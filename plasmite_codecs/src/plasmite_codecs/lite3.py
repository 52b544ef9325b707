"""Lite3 in pure Python: the binary JSON form upstream Plasmite stores and serves.

A Lite3 document is a B-tree of fixed 96-byte nodes laid out in one flat
buffer, so a reader can jump to one field without decoding the rest. Upstream
writes it with a C library; this module reproduces that library's bytes
exactly (same insertion algorithm, same splits, same padding), so documents
made here and there are interchangeable byte for byte.

Entry points:

* ``from_json(text) -> bytes`` and ``to_json(buf) -> bytes``: the two
  conversions upstream exposes (strict JSON in, compact JSON out).
* ``encode(obj) -> bytes`` / ``decode(buf) -> obj`` for Python values
  (``bytes`` values map to the Lite3 bytes type).
* ``lookup(buf, path)`` / ``lookup_json(buf, path)``: one field, read in place.
* ``get_tags(buf)``, ``encode_message(tags, data)``, ``parse_message(buf)``:
  the ``{"meta":{"tags":[...]},"data":...}`` message form.

Errors: bad input to an encoder is ``UsageError``; a damaged or hostile
buffer is ``CorruptError``. Decoding is bounded: every node and entry read is
charged against the buffer length, so no buffer can make the reader loop or
do more than linear work. See docs/lite3.md for the format and the choices.

Why one module of this size: byte-identical output depends on the encoder,
the node splitter and the reader agreeing on every offset and padding rule,
so they live together; the encoder's fast paths repeat the general insert
for speed and the reference vectors (tests/codecs/test_lite3_vectors.py) keep them
equal.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from bisect import bisect_left
from operator import attrgetter, itemgetter
from operator import lt as _lt
from typing import Any, Iterable, Sequence

from plasmite_core.errors import CorruptError, ErrorKind, PlasmiteError, UsageError

__all__ = [
    "MISSING",
    "from_json",
    "to_json",
    "encode",
    "decode",
    "lookup",
    "lookup_json",
    "get_tags",
    "encode_message",
    "encode_message_json",
    "parse_message",
    "validate",
    "djb2",
    "format_double",
    "Lite3Codec",
]

NODE_SIZE = 96
MAX_DEPTH = 32  # containers, root included
MAX_TREE_HEIGHT = 9  # node levels inside one container
MAX_PROBES = 128
MAX_DOC = 0xFFFFFFFF

T_NULL, T_BOOL, T_I64, T_F64, T_BYTES, T_STR, T_OBJ, T_ARR = range(8)

_NODE = struct.Struct("<I7II7I8I")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_STR_HDR = struct.Struct("<BI")
_VAL_I64 = struct.Struct("<Bq")
_VAL_F64 = struct.Struct("<Bd")
_ZERO96 = bytes(NODE_SIZE)
_OBJ96 = bytes((6,)) + bytes(NODE_SIZE - 1)
_ARR96 = bytes((7,)) + bytes(NODE_SIZE - 1)
_PADS = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


class _Missing:
    """Sentinel returned by :func:`lookup` when the path does not exist."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def _corrupt(msg: str, offset: int | None = None) -> CorruptError:
    return CorruptError(
        ErrorKind.CORRUPT, f"invalid Lite3 document: {msg}", offset=offset,
        hint="the buffer is not a well-formed Lite3 document (truncated or damaged)",
    )


def _usage(msg: str, hint: str | None = None) -> UsageError:
    return UsageError(ErrorKind.USAGE, msg, hint=hint)


# ---------------------------------------------------------------------------
# hashing and key tags

def djb2(data: bytes) -> int:
    """DJB2 over the bytes (unsigned), modulo 2**32: the Lite3 key hash."""
    h = 5381
    for c in data:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def _key_tag(ks: int) -> bytes:
    """Little-endian key tag for a key of ``ks`` bytes including its NUL."""
    if ks < 64:
        return bytes(((ks << 2),))
    if ks < 16384:
        return ((ks << 2) | 1).to_bytes(2, "little")
    if ks >= 1 << 30:
        raise _usage("Lite3 keys are limited to 2**30 - 2 bytes")
    return ((ks << 2) | 3).to_bytes(4, "little")


# Key bytes -> (key bytes cut at NUL, hash, tag length, tag+key+NUL bytes).
_KEY_CACHE: dict[str, tuple[bytes, int, int, bytes]] = {}
_KEY_CACHE_MAX = 8192


def _key_info(k: str) -> tuple[bytes, int, int, bytes]:
    info = _KEY_CACHE.get(k)
    if info is not None:
        return info
    if type(k) is not str:
        if isinstance(k, str):
            k = str(k)
        else:
            raise _usage(
                f"Lite3 object keys must be strings, not {type(k).__name__}",
                hint="convert the key to str before encoding",
            )
    try:
        kb = k.encode("utf-8")
    except UnicodeEncodeError:
        raise _usage("object key is not valid Unicode (lone surrogate)") from None
    cut = kb.find(0)
    if cut >= 0:  # the reference stores keys as C strings
        kb = kb[:cut]
    tag = _key_tag(len(kb) + 1)
    info = (kb, djb2(kb), len(tag), tag + kb + b"\x00")
    if len(kb) <= 256:
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[k] = info
    return info


# ---------------------------------------------------------------------------
# encoder: replays the reference library's set/append operations


class _Node:
    """One 96-byte B-tree node while a document is being built."""

    __slots__ = ("ofs", "typ", "gen", "size", "hashes", "ents", "kids", "dead")

    def __init__(self, ofs: int, typ: int) -> None:
        self.ofs = ofs
        self.typ = typ
        self.gen = 0
        self.size = 0
        self.hashes: list[int] = []
        # one entry per used slot: [kv_ofs, key bytes|None, value ofs, payload len, child node|None]
        self.ents: list[list] = []
        self.kids: list[_Node] = []  # empty for a leaf
        self.dead = False


class _Pairs(list):
    """An object parsed from JSON text: its (key, value) pairs, duplicates kept."""

    __slots__ = ()


class _Builder:
    __slots__ = ("buf", "nodes", "sort")

    def __init__(self, typ: int) -> None:
        self.sort = False  # True: object members in key order, duplicates merged (serde_json's map)
        self.buf = bytearray(_ZERO96)
        self.buf[0] = typ
        self.nodes = [_Node(0, typ)]

    # -- value payloads -------------------------------------------------
    def value_bytes(self, v: Any) -> bytes:
        """Type byte plus payload for a scalar (containers handled by callers)."""
        t = type(v)
        if t is str:
            try:
                e = v.encode("utf-8")
            except UnicodeEncodeError:
                raise _usage("string is not valid Unicode (lone surrogate)") from None
            return _STR_HDR.pack(T_STR, len(e) + 1) + e + b"\x00"
        if t is int:
            if _I64_MIN <= v <= _I64_MAX:
                return _VAL_I64.pack(T_I64, v)
            try:
                f = float(v)
            except OverflowError:
                raise _usage("number is too large to store (overflows a double)") from None
            return _VAL_F64.pack(T_F64, f)
        if t is float:
            if v - v != 0.0:  # NaN or infinity
                raise _usage(
                    f"cannot store the non-finite number {v!r}",
                    hint="JSON has no NaN or Infinity; use null or a string",
                )
            return _VAL_F64.pack(T_F64, v)
        if v is None:
            return b"\x00"
        if v is True:
            return b"\x01\x01"
        if v is False:
            return b"\x01\x00"
        if t is bytes or t is bytearray or t is memoryview:
            b = bytes(v)
            if len(b) > MAX_DOC:
                raise _usage("bytes value too large for Lite3")
            return b"\x04" + _U32.pack(len(b)) + b
        # subclasses (IntEnum, str subclasses, ...)
        if isinstance(v, bool):
            return b"\x01\x01" if v else b"\x01\x00"
        if isinstance(v, int):
            return self.value_bytes(int(v))
        if isinstance(v, float):
            return self.value_bytes(float(v))
        if isinstance(v, str):
            return self.value_bytes(str(v))
        raise _usage(
            f"cannot encode a value of type {type(v).__name__} in Lite3",
            hint="values must be JSON-like: dict, list, str, int, float, bool, None or bytes",
        )

    # -- tree operations -----------------------------------------------
    def set(self, C: _Node, key: bytes | None, h: int, L: int, kprefix: bytes, vb: bytes) -> _Node | None:
        """One set (objects) or append (arrays) into the container whose top node is C."""
        if key is None:
            return self.append(C, vb)
        C.gen = (C.gen + 1) & 0xFFFFFF
        for i in range(MAX_PROBES):
            H = (h + i * i) & 0xFFFFFFFF
            node = C
            parent: _Node | None = None
            pj = 0
            while True:
                hs = node.hashes
                if len(hs) == 7:
                    parent, pj = self._split(node, parent, pj)
                    sep = parent.hashes[pj]
                    if H == sep:
                        node, j = parent, pj
                        hs = node.hashes
                    else:
                        if H > sep:
                            pj += 1
                        node = parent.kids[pj]
                        hs = node.hashes
                        j = bisect_left(hs, H)
                else:
                    j = bisect_left(hs, H)
                if j < len(hs) and hs[j] == H:
                    e = node.ents[j]
                    old = e[1]
                    if len(old) + 1 < 64:
                        oldL = 1
                    elif len(old) + 1 < 16384:
                        oldL = 2
                    else:
                        oldL = 4
                    if oldL != L:
                        raise _usage(
                            "object key collides with another key of a different length class "
                            "(the Lite3 reference library refuses this document)",
                            hint="rename one of the keys; its DJB2 hash equals another key's",
                        )
                    if old == key:
                        return self._overwrite(e, L, kprefix, vb)
                    break  # collision: next probe
                kids = node.kids
                if kids:
                    parent, pj = node, j
                    node = kids[j]
                    continue
                # new member in a leaf: entry bytes go at the end of the buffer
                buf = self.buf
                P = len(vb) - 1
                child = None
                if P == 95:
                    pad = -(len(buf) + len(kprefix)) & 3
                    if pad:
                        buf += _PADS[pad]
                kv = len(buf)
                buf += kprefix
                vofs = len(buf)
                buf += vb
                if P == 95 and vb[0] >= T_OBJ:
                    child = _Node(vofs, vb[0])
                    self.nodes.append(child)
                hs.insert(j, H)
                node.ents.insert(j, [kv, key, vofs, P, child])
                C.size += 1
                return child
        raise _usage("too many key hash collisions in one object (128 probes)")

    def append(self, C: _Node, vb: bytes) -> _Node | None:
        """One append into the array whose top node is C (the full algorithm).

        The new index is larger than every existing one, so the walk always
        takes the right-most child and a split always continues in the new
        right sibling.
        """
        C.gen = (C.gen + 1) & 0xFFFFFF
        node = C
        parent: _Node | None = None
        pj = 0
        while True:
            if len(node.hashes) == 7:
                parent, pj = self._split(node, parent, pj)
                pj += 1
                node = parent.kids[pj]
            kids = node.kids
            if not kids:
                break
            parent, pj = node, len(kids) - 1
            node = kids[-1]
        buf = self.buf
        P = len(vb) - 1
        child = None
        if P == 95:
            pad = -len(buf) & 3
            if pad:
                buf += _PADS[pad]
        vofs = len(buf)
        buf += vb
        if P == 95 and vb[0] >= T_OBJ:
            child = _Node(vofs, vb[0])
            self.nodes.append(child)
        node.hashes.append(C.size)
        node.ents.append([vofs, None, vofs, P, child])
        C.size += 1
        return child

    def _split(self, N: _Node, P: _Node | None, i: int) -> tuple[_Node, int]:
        buf = self.buf
        pad = -len(buf) & 3
        if pad:
            buf.extend(bytes(pad))
        if P is None:  # N is the container's top node: move its contents down
            A = _Node(len(buf), N.typ)
            A.gen = N.gen
            A.hashes, A.ents, A.kids = N.hashes, N.ents, N.kids
            buf.extend(_ZERO96)
            self.nodes.append(A)
            N.hashes, N.ents, N.kids = [], [], [A]
            P, i, N = N, 0, A
        S = _Node(len(buf), N.typ)
        buf.extend(_ZERO96)
        self.nodes.append(S)
        hs, es, ks = N.hashes, N.ents, N.kids
        S.hashes, S.ents = hs[4:], es[4:]
        P.hashes.insert(i, hs[3])
        P.ents.insert(i, es[3])
        P.kids.insert(i + 1, S)
        N.hashes, N.ents = hs[:3], es[:3]
        if ks:
            S.kids = ks[4:]
            N.kids = ks[:4]
        return P, i

    def _append_entry(self, key: bytes | None, L: int, kprefix: bytes, vb: bytes) -> tuple[int, int, _Node | None]:
        buf = self.buf
        P = len(vb) - 1
        if key is not None:
            if P == 95:
                pad = -(len(buf) + len(kprefix)) & 3  # so the value starts 4-aligned
                if pad:
                    buf.extend(bytes(pad))
            kv = len(buf)
            buf += kprefix
            vofs = len(buf)
        else:
            if P == 95:
                pad = -len(buf) & 3
                if pad:
                    buf.extend(bytes(pad))
            kv = vofs = len(buf)
        buf += vb
        child = None
        if P == 95 and (vb[0] == T_OBJ or vb[0] == T_ARR):
            child = _Node(vofs, vb[0])
            self.nodes.append(child)
        return kv, vofs, child

    def _overwrite(self, e: list, L: int, kprefix: bytes, vb: bytes) -> _Node | None:
        buf = self.buf
        kv, _key, V, oldP, oldchild = e
        T = 1 + oldP
        P = len(vb) - 1
        if oldchild is not None:
            oldchild.dead = True  # only its top node goes; the rest stays in the buffer
        if P >= T:
            buf[kv:V + T] = bytes(V + T - kv)
            kv, vofs, child = self._append_entry(e[1], L, kprefix, vb)
            e[0], e[2], e[3], e[4] = kv, vofs, P, child
            return child
        buf[V:V + T] = bytes(T)
        buf[V:V + P + 1] = vb
        child = None
        if P == 95 and (vb[0] == T_OBJ or vb[0] == T_ARR):
            child = _Node(V, vb[0])  # may be misaligned, as in the reference's release builds
            self.nodes.append(child)
        e[3], e[4] = P, child
        return child

    # -- filling containers from Python values ---------------------------
    # The loops below inline the common case (a new member lands in a top
    # node that is still a leaf with room) and the common scalar types; every
    # other case goes through ``set``, which is the full algorithm. Setting
    # ``fast = False`` forces the full algorithm everywhere (tests compare).
    fast = True

    def fill_object(self, C: _Node, items: Iterable, depth: int) -> None:
        if self.sort:
            items = _sorted_members(items)
        buf = self.buf
        kget = _KEY_CACHE.get
        # While C is a leaf with room, members are inserted right here with C's
        # counters held in locals; anything else goes through ``set`` (locals
        # written back first, reloaded after).
        fast = self.fast and not C.kids
        hs = C.hashes
        ents = C.ents
        gen = C.gen
        size = C.size
        for k, v in items:
            info = kget(k) if type(k) is str else None
            if info is None:
                info = _key_info(k)
            kb, h, L, kprefix = info
            t = type(v)
            sub = None
            if t is str:
                e = v.encode("utf-8")
                P = len(e) + 5
                vb = _STR_HDR.pack(T_STR, P - 4) + e + b"\x00"
            elif t is int and _I64_MIN <= v <= _I64_MAX:
                vb = _VAL_I64.pack(T_I64, v)
                P = 8
            elif t is float and v - v == 0.0:
                vb = _VAL_F64.pack(T_F64, v)
                P = 8
            elif t is dict:
                vb, sub, P = _OBJ96, v.items(), 95
            elif t is _Pairs:
                vb, sub, P = _OBJ96, v, 95
            elif t is list or t is tuple:
                vb, sub, P = _ARR96, v, 95
            elif isinstance(v, dict):
                vb, sub, P = _OBJ96, v.items(), 95
            elif isinstance(v, (list, tuple)):
                vb, sub, P = _ARR96, v, 95
            else:
                vb = self.value_bytes(v)
                P = len(vb) - 1
            if sub is not None and depth >= MAX_DEPTH:
                raise _depth_error()
            if fast:
                nh = len(hs)
                if nh < 7:
                    j = bisect_left(hs, h)
                    if j == nh or hs[j] != h:
                        gen += 1
                        size += 1
                        kv = len(buf)
                        if P == 95:
                            pad = -(kv + len(kprefix)) & 3
                            if pad:
                                buf += _PADS[pad]
                                kv += pad
                        buf += kprefix
                        vofs = len(buf)
                        buf += vb
                        hs.insert(j, h)
                        if sub is None:
                            ents.insert(j, [kv, kb, vofs, P, None])
                            continue
                        child = _Node(vofs, vb[0])
                        self.nodes.append(child)
                        ents.insert(j, [kv, kb, vofs, P, child])
                        if vb is _ARR96:
                            self.fill_array(child, sub, depth + 1)
                        else:
                            self.fill_object(child, sub, depth + 1)
                        continue
            C.gen = gen & 0xFFFFFF
            C.size = size
            child = self.set(C, kb, h, L, kprefix, vb)
            gen = C.gen
            size = C.size
            hs = C.hashes
            ents = C.ents
            fast = fast and not C.kids
            if sub is not None:
                if vb is _ARR96:
                    self.fill_array(child, sub, depth + 1)
                else:
                    self.fill_object(child, sub, depth + 1)
        C.gen = gen & 0xFFFFFF
        C.size = size

    def fill_array(self, C: _Node, items: Iterable, depth: int) -> None:
        buf = self.buf
        fast = self.fast and not C.kids
        hs = C.hashes
        ents = C.ents
        gen = C.gen
        size = C.size
        for v in items:
            t = type(v)
            sub = None
            if t is int and _I64_MIN <= v <= _I64_MAX:
                vb = _VAL_I64.pack(T_I64, v)
                P = 8
            elif t is float and v - v == 0.0:
                vb = _VAL_F64.pack(T_F64, v)
                P = 8
            elif t is str:
                e = v.encode("utf-8")
                P = len(e) + 5
                vb = _STR_HDR.pack(T_STR, P - 4) + e + b"\x00"
            elif t is dict:
                vb, sub, P = _OBJ96, v.items(), 95
            elif t is _Pairs:
                vb, sub, P = _OBJ96, v, 95
            elif t is list or t is tuple:
                vb, sub, P = _ARR96, v, 95
            elif isinstance(v, dict):
                vb, sub, P = _OBJ96, v.items(), 95
            elif isinstance(v, (list, tuple)):
                vb, sub, P = _ARR96, v, 95
            else:
                vb = self.value_bytes(v)
                P = len(vb) - 1
            if sub is not None and depth >= MAX_DEPTH:
                raise _depth_error()
            if fast and len(hs) < 7:
                # an append always lands after every existing index
                gen += 1
                vofs = len(buf)
                if P == 95:
                    pad = -vofs & 3
                    if pad:
                        buf += _PADS[pad]
                        vofs += pad
                buf += vb
                hs.append(size)
                size += 1
                if sub is None:
                    ents.append([vofs, None, vofs, P, None])
                    continue
                child = _Node(vofs, vb[0])
                self.nodes.append(child)
                ents.append([vofs, None, vofs, P, child])
            else:
                C.gen = gen & 0xFFFFFF
                C.size = size
                child = self.append(C, vb)
                gen = C.gen
                size = C.size
                hs = C.hashes
                ents = C.ents
                fast = fast and not C.kids
            if sub is not None:
                if vb is _ARR96:
                    self.fill_array(child, sub, depth + 1)
                else:
                    self.fill_object(child, sub, depth + 1)
        C.gen = gen & 0xFFFFFF
        C.size = size

    def finish(self) -> bytes:
        buf = self.buf
        if len(buf) > MAX_DOC:
            raise _usage("document too large for Lite3 (over 4 GiB)")
        pack = _NODE.pack_into
        zeros = _ZPAD
        for nd in self.nodes:
            if nd.dead:
                continue
            hs = nd.hashes
            kc = len(hs)
            kids = nd.kids
            if nd.size >= 1 << 26:
                raise _usage("container has too many members for Lite3 (2**26)")
            pack(
                buf, nd.ofs, nd.typ | (nd.gen << 8), *hs, *zeros[kc], kc | (nd.size << 6),
                *map(_first, nd.ents), *zeros[kc], *map(_ofs_of, kids), *zeros[len(kids) - 1],
            )
        return bytes(buf)


_first = itemgetter(0)
_ofs_of = attrgetter("ofs")
# zeros[k]: padding after k used slots of a 7-slot array; zeros[-1] pads all 8 children
_ZPAD = [(0,) * (7 - k) for k in range(8)] + [(0,) * 8]


def _depth_error() -> UsageError:
    return _usage(
        f"document nests more than {MAX_DEPTH} containers deep",
        hint=f"Lite3 allows at most {MAX_DEPTH} levels of objects/arrays",
    )


def _build(root: Any) -> bytes:
    t = type(root)
    try:
        if t is dict or t is _Pairs or (t is not list and t is not tuple and isinstance(root, dict)):
            b = _Builder(T_OBJ)
            b.fill_object(b.nodes[0], root.items() if t is not _Pairs else root, 1)
        elif t is list or t is tuple or isinstance(root, (list, tuple)):
            b = _Builder(T_ARR)
            b.fill_array(b.nodes[0], root, 1)
        else:
            raise _usage(
                "a Lite3 document must be an object or an array at the top level",
                hint='wrap the value, e.g. {"value": ...}',
            )
        return b.finish()
    except RecursionError:
        raise _depth_error() from None
    except UnicodeEncodeError:
        raise _usage("string or key is not valid Unicode (lone surrogate)") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_json_decoder = json.JSONDecoder(object_pairs_hook=_Pairs, parse_constant=_reject_constant)
_json_scan = _json_decoder.decode


def _parse_json_text(text: bytes | bytearray | memoryview | str) -> Any:
    if isinstance(text, str):
        s = text
    else:
        try:
            s = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _usage(f"invalid JSON: invalid UTF-8 at byte {exc.start}") from None
    try:
        return _json_scan(s)
    except RecursionError:
        raise _depth_error() from None
    except ValueError as exc:  # JSONDecodeError, int digit limits, constants
        raise _usage(f"invalid JSON: {exc}", hint="the input must be strict RFC 8259 JSON text") from None


def from_json(text: bytes | bytearray | memoryview | str) -> bytes:
    """Strict JSON text to Lite3, byte-identical to the reference converter.

    The top-level value must be an object or an array (the reference returns
    zero bytes for a scalar root; this raises UsageError instead).
    """
    return _build(_parse_json_text(text))


def encode(obj: Any) -> bytes:
    """A Python value (dict or list at the top) to Lite3.

    dict members are stored in iteration order, exactly as JSON text in that
    order would be; ``bytes`` become the Lite3 bytes type; ints outside int64
    become doubles (as for JSON input).
    """
    return _build(obj)


# ---------------------------------------------------------------------------
# reader

_ESC_RE = re.compile(rb'[\x00-\x1f"\\]')
_ESC_BYTES = bytes(range(0x20)) + b'"\\'  # a string needs escaping iff it holds one of these
_ESC = {bytes((c,)): b"\\u%04X" % c for c in range(0x20)}
_ESC.update({b"\b": b"\\b", b"\t": b"\\t", b"\n": b"\\n", b"\x0c": b"\\f", b"\r": b"\\r",
             b'"': b'\\"', b"\\": b"\\\\"})


def _esc_sub(m: re.Match) -> bytes:
    return _ESC[m.group()]


def _json_str(s: bytes) -> bytes:
    """Quote raw UTF-8 bytes as a JSON string the way the reference writer does."""
    if not s.isascii():
        try:
            s.decode("utf-8")
        except UnicodeDecodeError:
            raise _corrupt("string is not valid UTF-8") from None
    if len(s.translate(None, _ESC_BYTES)) != len(s):
        s = _ESC_RE.sub(_esc_sub, s)
    return b'"' + s + b'"'


def format_double(x: float) -> str:
    """A double as the reference's JSON writer prints it (always a '.' or an exponent)."""
    if x - x != 0.0:
        raise _corrupt(f"non-finite double {x!r} cannot be written as JSON")
    ax = -x if x < 0 else x
    if 1e-4 <= ax < 1e16 or ax == 0.0:
        return repr(x)  # positional and identical in this range, '-0.0' included
    r = repr(ax)
    mant, _, exp = r.partition("e")  # outside [1e-4, 1e16) repr always has an exponent
    digits = mant.replace(".", "")
    k = len(digits)
    n = int(exp) + 1
    if ax >= 2.2250738585072014e-308 and -6 < n <= 21:
        if n <= 0:
            s = "0." + "0" * (-n) + digits
        elif n >= k:
            s = digits + "0" * (n - k) + ".0"
        else:
            s = digits[:n] + "." + digits[n:]
    else:
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + str(n - 1)
    return "-" + s if x < 0 else s


_JKEY_CACHE: dict[bytes, bytes] = {}
_PKEY_CACHE: dict[bytes, str] = {}


def _key_piece_json(kb: bytes) -> bytes:
    p = _JKEY_CACHE.get(kb)
    if p is None:
        if b"\x00" in kb:
            raise _corrupt("key contains a NUL byte")
        p = _json_str(kb) + b":"
        if len(_JKEY_CACHE) >= _KEY_CACHE_MAX:
            _JKEY_CACHE.clear()
        _JKEY_CACHE[kb] = p
    return p


def _key_str(kb: bytes) -> str:
    k = _PKEY_CACHE.get(kb)
    if k is None:
        if b"\x00" in kb:
            raise _corrupt("key contains a NUL byte")
        try:
            k = kb.decode("utf-8")
        except UnicodeDecodeError:
            raise _corrupt("key is not valid UTF-8") from None
        if len(_PKEY_CACHE) >= _KEY_CACHE_MAX:
            _PKEY_CACHE.clear()
        _PKEY_CACHE[kb] = k
    return k


class _Reader:
    """Walks one buffer; every node and entry read is charged to ``left``."""

    __slots__ = ("buf", "n", "left")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.n = len(buf)
        self.left = self.n

    def entries(self, top: int, typ: int) -> Sequence[int]:
        """kv offsets of one container, in B-tree (hash) order, with sanity checks."""
        buf = self.buf
        if top + NODE_SIZE > self.n:
            raise _corrupt("container node runs past the end", top)
        t = _NODE.unpack_from(buf, top)
        if t[0] & 0xFF != typ:
            raise _corrupt("node type does not match its container", top)
        kc = t[8] & 7
        size = t[8] >> 6
        if t[16] == 0:  # the whole container is one leaf: the common case
            self.left -= NODE_SIZE
            if self.left < 0:
                raise _corrupt("nodes and entries overlap (more data referenced than present)", top)
            if size != kc:
                raise _corrupt(f"container size {size} does not match its {kc} entries", top)
            if kc > 1:
                hs = t[1:1 + kc]
                if not all(map(_lt, hs, hs[1:])):
                    raise _corrupt("key hashes out of order", top)
            return t[9:9 + kc]
        kvs: list[int] = []
        hs = []
        self._walk(top, typ, 1, kvs, hs)
        if len(kvs) != size:
            raise _corrupt(f"container size {size} does not match its {len(kvs)} entries", top)
        if not all(map(_lt, hs, hs[1:])):
            raise _corrupt("key hashes out of order", top)
        return kvs

    def _walk(self, ofs: int, typ: int, level: int, kvs: list[int], hs: list[int]) -> None:
        if level > MAX_TREE_HEIGHT:
            raise _corrupt("B-tree deeper than 9 levels (cycle?)", ofs)
        self.left -= NODE_SIZE
        if self.left < 0:
            raise _corrupt("nodes and entries overlap (more data referenced than present)", ofs)
        t = _NODE.unpack_from(self.buf, ofs)
        if t[0] & 0xFF != typ:
            raise _corrupt("node type does not match its container", ofs)
        kc = t[8] & 7
        if t[16] == 0:
            kvs.extend(t[9:9 + kc])
            hs.extend(t[1:1 + kc])
            return
        n = self.n
        for j in range(kc + 1):
            c = t[16 + j]
            if c == 0 or c & 3 or c + NODE_SIZE > n:
                raise _corrupt("child node offset invalid", ofs)
            self._walk(c, typ, level + 1, kvs, hs)
            if j < kc:
                kvs.append(t[9 + j])
                hs.append(t[1 + j])

    def key_at(self, kv: int) -> tuple[bytes, int]:
        """(key bytes, value offset) of the object entry at kv."""
        buf = self.buf
        n = self.n
        if kv >= n:
            raise _corrupt("key entry out of bounds", kv)
        b0 = buf[kv]
        L = (b0 & 3) + 1
        if L == 1:
            ks = b0 >> 2
        else:
            if kv + L > n:
                raise _corrupt("key tag out of bounds", kv)
            ks = int.from_bytes(buf[kv:kv + L], "little") >> 2
        v = kv + L + ks
        if ks == 0 or v >= n:
            raise _corrupt("key entry out of bounds", kv)
        if buf[v - 1] != 0:
            raise _corrupt("key is not NUL-terminated", kv)
        self.left -= L + ks
        return buf[kv + L:v - 1], v

    # -- to JSON --------------------------------------------------------
    def json_container(self, ofs: int, typ: int, depth: int, out: list, indent: int) -> None:
        if depth > MAX_DEPTH:
            raise _corrupt(f"nesting deeper than {MAX_DEPTH}", ofs)
        kvs = self.entries(ofs, typ)
        if indent >= 0:
            if not kvs:
                out.append(b"{}" if typ == T_OBJ else b"[]")
                return
            sep = b",\n" + b"    " * (indent + 1)
            out.append((b"{\n" if typ == T_OBJ else b"[\n") + b"    " * (indent + 1))
            inner = indent + 1
        else:
            sep = b","
            inner = -1
        value = self.json_value
        buf = self.buf
        n = self.n
        append = out.append
        if typ == T_OBJ:
            if indent < 0:
                append(b"{")
            jget = _JKEY_CACHE.get
            first = True
            for kv in kvs:
                if first:
                    first = False
                else:
                    append(sep)
                if kv >= n:
                    raise _corrupt("key entry out of bounds", kv)
                b0 = buf[kv]
                if b0 & 3:
                    kb, v = self.key_at(kv)
                else:
                    v = kv + 1 + (b0 >> 2)
                    if v >= n or v == kv + 1 or buf[v - 1]:
                        raise _corrupt("key entry out of bounds or not NUL-terminated", kv)
                    kb = buf[kv + 1:v - 1]
                    self.left -= v - kv
                piece = jget(kb)
                append(piece if piece is not None else _key_piece_json(kb))
                if inner >= 0:
                    append(b" ")
                ty = buf[v]
                if ty == T_STR and v + 5 <= n:
                    size = _U32.unpack_from(buf, v + 1)[0]
                    end = v + 5 + size
                    if size == 0 or end > n or buf[end - 1]:
                        raise _corrupt("string out of bounds or not NUL-terminated", v)
                    self.left -= 5 + size
                    if self.left < 0:
                        raise _corrupt("nodes and entries overlap", v)
                    sv = buf[v + 5:end - 1]
                    if sv.isascii() and len(sv.translate(None, _ESC_BYTES)) == len(sv):
                        append(b'"' + sv + b'"')
                    else:
                        append(_json_str(sv))
                elif ty == T_I64 and v + 9 <= n:
                    self.left -= 9
                    append(b"%d" % _I64.unpack_from(buf, v + 1)[0])
                else:
                    value(v, depth, out, inner)
            if self.left < 0:
                raise _corrupt("nodes and entries overlap (more data referenced than present)", ofs)
            close = b"}"
        else:
            if indent < 0:
                append(b"[")
            first = True
            for v in kvs:
                if first:
                    first = False
                else:
                    append(sep)
                ty = buf[v] if v < n else -1
                if ty == T_I64 and v + 9 <= n:
                    self.left -= 9
                    append(b"%d" % _I64.unpack_from(buf, v + 1)[0])
                elif ty == T_STR and v + 5 <= n:
                    size = _U32.unpack_from(buf, v + 1)[0]
                    end = v + 5 + size
                    if size == 0 or end > n or buf[end - 1]:
                        raise _corrupt("string out of bounds or not NUL-terminated", v)
                    self.left -= 5 + size
                    if self.left < 0:
                        raise _corrupt("nodes and entries overlap", v)
                    sv = buf[v + 5:end - 1]
                    if sv.isascii() and len(sv.translate(None, _ESC_BYTES)) == len(sv):
                        append(b'"' + sv + b'"')
                    else:
                        append(_json_str(sv))
                else:
                    value(v, depth, out, inner)
            if self.left < 0:
                raise _corrupt("nodes and entries overlap (more data referenced than present)", ofs)
            close = b"]"
        if indent >= 0:
            append(b"\n" + b"    " * indent + close)
        else:
            append(close)

    def json_value(self, v: int, depth: int, out: list, indent: int) -> None:
        buf = self.buf
        n = self.n
        if v >= n:
            raise _corrupt("value out of bounds", v)
        t = buf[v]
        if t == T_STR:
            if v + 5 > n:
                raise _corrupt("string length out of bounds", v)
            size = _U32.unpack_from(buf, v + 1)[0]
            end = v + 5 + size
            if size == 0 or end > n:
                raise _corrupt("string out of bounds", v)
            if buf[end - 1] != 0:
                raise _corrupt("string is not NUL-terminated", v)
            self.left -= 5 + size
            out.append(_json_str(buf[v + 5:end - 1]))
        elif t == T_I64:
            if v + 9 > n:
                raise _corrupt("integer out of bounds", v)
            self.left -= 9
            out.append(b"%d" % _I64.unpack_from(buf, v + 1)[0])
        elif t == T_OBJ or t == T_ARR:
            self.json_container(v, t, depth + 1, out, indent)
        elif t == T_F64:
            if v + 9 > n:
                raise _corrupt("double out of bounds", v)
            self.left -= 9
            out.append(format_double(_F64.unpack_from(buf, v + 1)[0]).encode())
        elif t == T_BOOL:
            if v + 2 > n:
                raise _corrupt("bool out of bounds", v)
            b = buf[v + 1]
            if b > 1:
                raise _corrupt("bool byte is not 0 or 1", v)
            self.left -= 2
            out.append(b"true" if b else b"false")
        elif t == T_NULL:
            self.left -= 1
            out.append(b"null")
        elif t == T_BYTES:
            if v + 5 > n:
                raise _corrupt("bytes length out of bounds", v)
            size = _U32.unpack_from(buf, v + 1)[0]
            if v + 5 + size > n:
                raise _corrupt("bytes out of bounds", v)
            self.left -= 5 + size
            out.append(b'"' + base64.b64encode(buf[v + 5:v + 5 + size]) + b'"')
        else:
            raise _corrupt(f"invalid value type {t}", v)
        if self.left < 0:
            raise _corrupt("nodes and entries overlap (more data referenced than present)", v)

    # -- to Python --------------------------------------------------------
    def py_container(self, ofs: int, typ: int, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _corrupt(f"nesting deeper than {MAX_DEPTH}", ofs)
        kvs = self.entries(ofs, typ)
        value = self.py_value
        buf = self.buf
        n = self.n
        if typ != T_OBJ:
            out = []
            append = out.append
            for v in kvs:
                ty = buf[v] if v < n else -1
                if ty == T_I64 and v + 9 <= n:
                    self.left -= 9
                    append(_I64.unpack_from(buf, v + 1)[0])
                elif ty == T_STR and v + 5 <= n:
                    size = _U32.unpack_from(buf, v + 1)[0]
                    end = v + 5 + size
                    if size == 0 or end > n or buf[end - 1]:
                        raise _corrupt("string out of bounds or not NUL-terminated", v)
                    self.left -= 5 + size
                    if self.left < 0:
                        raise _corrupt("nodes and entries overlap", v)
                    try:
                        append(buf[v + 5:end - 1].decode("utf-8"))
                    except UnicodeDecodeError:
                        raise _corrupt("string is not valid UTF-8", v) from None
                else:
                    append(value(v, depth))
            if self.left < 0:
                raise _corrupt("nodes and entries overlap (more data referenced than present)", ofs)
            return out
        pget = _PKEY_CACHE.get
        d = {}
        for kv in kvs:
            if kv >= n:
                raise _corrupt("key entry out of bounds", kv)
            b0 = buf[kv]
            if b0 & 3:
                kb, v = self.key_at(kv)
            else:
                v = kv + 1 + (b0 >> 2)
                if v >= n or v == kv + 1 or buf[v - 1]:
                    raise _corrupt("key entry out of bounds or not NUL-terminated", kv)
                kb = buf[kv + 1:v - 1]
                self.left -= v - kv
            key = pget(kb)
            if key is None:
                key = _key_str(kb)
            ty = buf[v]
            if ty == T_STR and v + 5 <= n:
                size = _U32.unpack_from(buf, v + 1)[0]
                end = v + 5 + size
                if size == 0 or end > n or buf[end - 1]:
                    raise _corrupt("string out of bounds or not NUL-terminated", v)
                self.left -= 5 + size
                if self.left < 0:
                    raise _corrupt("nodes and entries overlap", v)
                try:
                    d[key] = buf[v + 5:end - 1].decode("utf-8")
                except UnicodeDecodeError:
                    raise _corrupt("string is not valid UTF-8", v) from None
            elif ty == T_I64 and v + 9 <= n:
                self.left -= 9
                d[key] = _I64.unpack_from(buf, v + 1)[0]
            else:
                d[key] = value(v, depth)
        if self.left < 0:
            raise _corrupt("nodes and entries overlap (more data referenced than present)", ofs)
        return d

    def py_value(self, v: int, depth: int) -> Any:
        buf = self.buf
        n = self.n
        if v >= n:
            raise _corrupt("value out of bounds", v)
        t = buf[v]
        if t == T_STR:
            if v + 5 > n:
                raise _corrupt("string length out of bounds", v)
            size = _U32.unpack_from(buf, v + 1)[0]
            end = v + 5 + size
            if size == 0 or end > n:
                raise _corrupt("string out of bounds", v)
            if buf[end - 1] != 0:
                raise _corrupt("string is not NUL-terminated", v)
            self.left -= 5 + size
            if self.left < 0:
                raise _corrupt("nodes and entries overlap", v)
            try:
                return buf[v + 5:end - 1].decode("utf-8")
            except UnicodeDecodeError:
                raise _corrupt("string is not valid UTF-8", v) from None
        if t == T_I64:
            if v + 9 > n:
                raise _corrupt("integer out of bounds", v)
            self.left -= 9
            return _I64.unpack_from(buf, v + 1)[0]
        if t == T_OBJ or t == T_ARR:
            return self.py_container(v, t, depth + 1)
        if t == T_F64:
            if v + 9 > n:
                raise _corrupt("double out of bounds", v)
            self.left -= 9
            x = _F64.unpack_from(buf, v + 1)[0]
            if x - x != 0.0:
                raise _corrupt(f"non-finite double {x!r}", v)
            return x
        if t == T_BOOL:
            if v + 2 > n:
                raise _corrupt("bool out of bounds", v)
            b = buf[v + 1]
            if b > 1:
                raise _corrupt("bool byte is not 0 or 1", v)
            self.left -= 2
            return b == 1
        if t == T_NULL:
            self.left -= 1
            return None
        if t == T_BYTES:
            if v + 5 > n:
                raise _corrupt("bytes length out of bounds", v)
            size = _U32.unpack_from(buf, v + 1)[0]
            if v + 5 + size > n:
                raise _corrupt("bytes out of bounds", v)
            self.left -= 5 + size
            if self.left < 0:
                raise _corrupt("nodes and entries overlap", v)
            return buf[v + 5:v + 5 + size]
        raise _corrupt(f"invalid value type {t}", v)


# ---------------------------------------------------------------------------
# point lookups: only the nodes on the path are read


def _find(buf: bytes, n: int, top: int, typ: int, H: int) -> int:
    """kv offset of the slot holding hash H in the container at top, or -1."""
    ofs = top
    for _level in range(MAX_TREE_HEIGHT):
        t = _NODE.unpack_from(buf, ofs)
        if t[0] & 0xFF != typ:
            raise _corrupt("node type does not match its container", ofs)
        kc = t[8] & 7
        hs = t[1:1 + kc]
        j = bisect_left(hs, H)
        if j < kc and hs[j] == H:
            return t[9 + j]
        if t[16] == 0:
            return -1
        c = t[16 + j]
        if c == 0 or c & 3 or c + NODE_SIZE > n:
            raise _corrupt("child node offset invalid", ofs)
        ofs = c
    raise _corrupt("B-tree deeper than 9 levels (cycle?)", top)


def _locate(buf: bytes, path: Sequence[str | int]) -> int:
    """Offset of the value at path (0 for the root itself), or -1 when absent.

    Keys are compared in full at every probe, so a hash collision never
    returns the wrong member (the reference stops at a key-tag length
    mismatch instead; no document it writes can contain one).
    """
    n = len(buf)
    if n < NODE_SIZE:
        raise _corrupt("buffer shorter than one node (96 bytes)", 0)
    typ = buf[0]
    if typ != T_OBJ and typ != T_ARR:
        raise _corrupt("root is not an object or array", 0)
    ofs = 0
    last = len(path) - 1
    for depth, step in enumerate(path):
        if depth >= MAX_DEPTH:
            return -1
        if ofs + NODE_SIZE > n:
            raise _corrupt("container node runs past the end", ofs)
        if typ == T_OBJ:
            info = _LKEY_CACHE.get(step) if type(step) is str else None
            if info is None:
                info = _lookup_key(step)
            if not info:
                return -1
            kb, h = info
            for i in range(MAX_PROBES):
                kv = _find(buf, n, ofs, typ, (h + i * i) & 0xFFFFFFFF)
                if kv < 0:
                    return -1
                if kv >= n:
                    raise _corrupt("key entry out of bounds", kv)
                b0 = buf[kv]
                L = (b0 & 3) + 1
                if L == 1:
                    ks = b0 >> 2
                else:
                    if kv + L > n:
                        raise _corrupt("key tag out of bounds", kv)
                    ks = int.from_bytes(buf[kv:kv + L], "little") >> 2
                v = kv + L + ks
                if ks == 0 or v >= n or buf[v - 1]:
                    raise _corrupt("key entry out of bounds or not NUL-terminated", kv)
                if ks == len(kb) + 1 and buf[kv + L:v - 1] == kb:
                    break
            else:
                return -1
        else:
            if type(step) is not int:
                if isinstance(step, bool) or not isinstance(step, int):
                    return -1
                step = int(step)
            if step < 0:
                step += _U32.unpack_from(buf, ofs + 32)[0] >> 6
                if step < 0:
                    return -1
            if step > 0xFFFFFFFF:
                return -1
            v = _find(buf, n, ofs, typ, step)
            if v < 0:
                return -1
            if v >= n:
                raise _corrupt("value out of bounds", v)
        typ = buf[v]
        if depth < last and typ != T_OBJ and typ != T_ARR:
            return -1
        ofs = v
    return ofs


_LKEY_CACHE: dict[str, tuple[bytes, int] | tuple[()]] = {}


def _lookup_key(step: Any) -> tuple[bytes, int] | tuple[()]:
    """(key bytes, hash) for a lookup step, or () when no stored key can equal it."""
    if not isinstance(step, str):
        return ()
    try:
        kb = step.encode("utf-8")
    except UnicodeEncodeError:
        return ()
    info: tuple[bytes, int] | tuple[()] = () if b"\x00" in kb else (kb, djb2(kb))
    if len(kb) <= 256 and type(step) is str:
        if len(_LKEY_CACHE) >= _KEY_CACHE_MAX:
            _LKEY_CACHE.clear()
        _LKEY_CACHE[step] = info
    return info


def _as_bytes(buf: Any) -> bytes:
    if type(buf) is bytes:
        return buf
    try:
        return bytes(buf)
    except TypeError:
        raise _usage(f"expected a bytes-like Lite3 buffer, not {type(buf).__name__}") from None


def _check_root(buf: bytes) -> int:
    if len(buf) < NODE_SIZE:
        raise _corrupt(
            "empty buffer" if not buf else f"buffer of {len(buf)} bytes is shorter than one node (96)", 0
        )
    if len(buf) > MAX_DOC:
        raise _corrupt("buffer larger than 4 GiB", 0)
    typ = buf[0]
    if typ != T_OBJ and typ != T_ARR:
        raise _corrupt(f"root type {typ} is not an object or array", 0)
    return typ


_LOW_LEVEL = (IndexError, struct.error, ValueError, OverflowError, RecursionError)


def _low_level(exc: BaseException) -> CorruptError:
    """Any low-level slip on hostile input becomes CorruptError, never a crash."""
    if isinstance(exc, RecursionError):
        return _corrupt("structure too deep to walk")
    return _corrupt(f"{type(exc).__name__}: {exc}")


def to_json(buf: bytes | bytearray | memoryview, pretty: bool = False) -> bytes:
    """Lite3 to JSON text (compact; ``pretty=True`` indents by 4 like the reference).

    Members come out in the document's hash order, which is what the
    reference writer produces.
    """
    if type(buf) is not bytes:
        buf = _as_bytes(buf)
    try:
        typ = _check_root(buf)
        out: list[bytes] = []
        _Reader(buf).json_container(0, typ, 1, out, 0 if pretty else -1)
        return b"".join(out)
    except PlasmiteError:
        raise
    except _LOW_LEVEL as exc:
        raise _low_level(exc) from None


def decode(buf: bytes | bytearray | memoryview) -> Any:
    """Lite3 to a Python value (dict or list; bytes values come back as ``bytes``)."""
    if type(buf) is not bytes:
        buf = _as_bytes(buf)
    try:
        typ = _check_root(buf)
        return _Reader(buf).py_container(0, typ, 1)
    except PlasmiteError:
        raise
    except _LOW_LEVEL as exc:
        raise _low_level(exc) from None


def validate(buf: bytes | bytearray | memoryview) -> None:
    """Raise CorruptError unless the whole buffer reads as a JSON-representable document."""
    to_json(buf)


def lookup(buf: bytes | bytearray | memoryview, path: Sequence[str | int]) -> Any:
    """The value at ``path`` (keys for objects, ints for arrays), or MISSING.

    Only the nodes on the way are read: cost grows with the path and the tree
    height, not with the document. A string ``path`` is one key.
    """
    if type(buf) is not bytes:
        buf = _as_bytes(buf)
    if isinstance(path, (str, int)):
        path = (path,)
    try:
        v = _locate(buf, path)
        if v < 0:
            return MISSING
        if v == 0:
            return _Reader(buf).py_container(0, buf[0], 1)
        ty = buf[v]
        if ty == T_STR:
            n = len(buf)
            if v + 5 <= n:
                end = v + 5 + _U32.unpack_from(buf, v + 1)[0]
                if v + 5 < end <= n and not buf[end - 1]:
                    return buf[v + 5:end - 1].decode("utf-8")
        return _Reader(buf).py_value(v, len(path))
    except PlasmiteError:
        raise
    except _LOW_LEVEL as exc:
        raise _low_level(exc) from None


def lookup_json(buf: bytes | bytearray | memoryview, path: Sequence[str | int]) -> bytes | None:
    """Compact JSON text of the value at ``path``, or None when absent."""
    if type(buf) is not bytes:
        buf = _as_bytes(buf)
    if isinstance(path, (str, int)):
        path = (path,)
    try:
        v = _locate(buf, path)
        if v < 0:
            return None
        r = _Reader(buf)
        out: list[bytes] = []
        if v == 0:
            r.json_container(0, buf[0], 1, out, -1)
        else:
            r.json_value(v, len(path), out, -1)
        return b"".join(out)
    except PlasmiteError:
        raise
    except _LOW_LEVEL as exc:
        raise _low_level(exc) from None


_TAGS_PATH = ("meta", "tags")


def get_tags(buf: bytes | bytearray | memoryview) -> list[str]:
    """The ``meta.tags`` strings of a message document, read in place.

    Returns [] when the document has no ``meta.tags`` array; non-string
    elements are skipped (``parse_message`` is the strict check).
    """
    tags = lookup(buf, _TAGS_PATH)
    if type(tags) is not list:
        return []
    return [t for t in tags if type(t) is str]


# ---------------------------------------------------------------------------
# the message form {"meta":{"tags":[...]},"data":{...}}


def _sorted_members(items: Iterable) -> list:
    """Members in key order with duplicates merged (last wins), as serde_json's map has them."""
    members = dict(items)
    try:
        return sorted(members.items(), key=_first)
    except TypeError:
        bad = next(k for k in members if not isinstance(k, str))
        raise _usage(f"Lite3 object keys must be strings, not {type(bad).__name__}") from None


def _check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        raise _usage("tags must be a list of strings, not a string", hint='use tags=["a"]')
    out = list(tags)
    for t in out:
        if not isinstance(t, str):
            raise _usage(f"tags must be strings, got {type(t).__name__}")
    return out


def _message(tags: Any, data: Any) -> bytes:
    if type(data) is not _Pairs and not isinstance(data, dict):
        raise _usage("message data must be a JSON object", hint='wrap it, e.g. {"value": ...}')
    tag_list = _check_tags(tags)
    try:
        b = _Builder(T_OBJ)
        root = b.nodes[0]
        b.fill_object(root, (("meta", {"tags": tag_list}),), 1)
        b.sort = True
        b.fill_object(root, (("data", data),), 1)
        return b.finish()
    except RecursionError:
        raise _depth_error() from None
    except UnicodeEncodeError:
        raise _usage("string or key is not valid Unicode (lone surrogate)") from None


def encode_message(tags: Iterable[str] | None, data: Any) -> bytes:
    """The message document upstream builds for (tags, data), byte for byte.

    Upstream serialises ``{"meta":{"tags":[...]},"data":...}`` with
    serde_json (object keys sorted, duplicates already merged) and converts
    that text; this replays the same operations. ``data`` must be an object.
    """
    return _message(tags, data)


def encode_message_json(tags: Iterable[str] | None, data_json: bytes | str) -> bytes:
    """As :func:`encode_message`, with the data given as JSON text."""
    return _message(tags, _parse_json_text(data_json))


def parse_message(buf: bytes | bytearray | memoryview) -> tuple[list[str], bytes]:
    """Check a message document and return (tags, compact JSON of data).

    Enforces upstream's rules: the root, ``meta`` and ``data`` are objects,
    ``meta.tags`` is an array of strings. Bad input is a UsageError (this is
    the check for documents a client hands in).
    """
    try:
        buf = _as_bytes(buf)
        validate(buf)
        if buf[0] != T_OBJ:
            raise _usage("Lite3 message root must be an object")
        meta = _locate(buf, ("meta",))
        if meta < 0 or buf[meta] != T_OBJ:
            raise _usage('Lite3 message needs a "meta" object')
        tags = lookup(buf, _TAGS_PATH)
        if type(tags) is not list or any(type(t) is not str for t in tags):
            raise _usage('Lite3 message needs "meta.tags" as an array of strings')
        data = _locate(buf, ("data",))
        if data < 0 or buf[data] != T_OBJ:
            raise _usage('Lite3 message needs a "data" object')
        return tags, lookup_json(buf, ("data",))
    except (CorruptError, *_LOW_LEVEL) as exc:
        msg = exc.message if isinstance(exc, CorruptError) else f"{type(exc).__name__}: {exc}"
        raise UsageError(
            ErrorKind.USAGE, f"invalid Lite3 message: {msg.removeprefix('invalid Lite3 document: ')}",
            hint='send the Lite3 document of {"meta":{"tags":[...]},"data":{...}}',
        ) from None


# ---------------------------------------------------------------------------
# codec object for the plugin registry


class Lite3Codec:
    """The ``lite3`` payload codec (see the plugin hooks)."""

    name = "lite3"
    is_json = False

    encode = staticmethod(encode)
    decode = staticmethod(decode)
    to_json = staticmethod(to_json)
    from_json = staticmethod(from_json)
    lookup = staticmethod(lookup)
    lookup_json = staticmethod(lookup_json)
    get_tags = staticmethod(get_tags)
    parse_message = staticmethod(parse_message)  # the one check of client-sent message documents

    def __repr__(self) -> str:
        return "<Lite3Codec>"

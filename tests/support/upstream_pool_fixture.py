"""Write pool files in upstream Plasmite's on-disk format 3, for the import tests.

Written from upstream's engine source (``src/core/pool.rs``: the header
layout and ``write_index_slot``; ``src/core/frame.rs``: the 64-byte frame
header, the commit marker and the 8-byte alignment; ``src/core/plan.rs``: a
wrap marker only when at least a frame header fits before the ring's end, and
the oldest frames dropped to make room), not from this project's reader.
Payloads are the Lite3 document of the message envelope with the keys in
serde_json's order, built by this project's Lite3 encoder, which the Lite3
vector tests check byte for byte against upstream's published vectors.
"""

from __future__ import annotations

import struct
from collections import deque
from pathlib import Path

import msgspec

HEADER_SIZE = 4096
SLOT = 16
FRAME_HEADER = 64
COMMITTED, WRAP = 2, 3


def lite3_message(tags: list[str], data: dict) -> bytes:
    from plasmite_codecs.lite3 import from_json

    sorted_json = msgspec.json.Encoder(order="sorted").encode
    return from_json(b'{"meta":{"tags":%s},"data":%s}' % (msgspec.json.encode(tags), sorted_json(data)))


def _frame_header(state: int, seq: int, t: int, plen: int) -> bytes:
    head = struct.pack("<4sIIIQQIII", b"FRM1", state, 0, FRAME_HEADER, seq, t, plen, plen ^ 0xFFFFFFFF, 0)
    return head + b"\0" * (FRAME_HEADER - len(head))


def write_upstream_pool(path: Path, messages: list[tuple[int, list[str], dict]], *, file_size: int = 64 * 1024,
                        index_capacity: int = 64, version: int = 3) -> dict:
    """Append ``(time_ns, tags, data)`` messages as upstream does, from seq 1;
    returns the header fields written (and the seqs still retained)."""
    ring_offset = HEADER_SIZE + SLOT * index_capacity
    ring_size = file_size - ring_offset
    buf = bytearray(file_size)
    live: deque[tuple[int, int, int]] = deque()  # (ring offset, length, seq), oldest first
    head = 0
    seq = 0
    for t, tags, data in messages:
        seq += 1
        payload = lite3_message(tags, data)
        total = (FRAME_HEADER + len(payload) + 8 + 7) & ~7
        assert total <= ring_size
        if ring_size - head < total:  # wrap: the frames after head are the oldest and go
            if ring_size - head >= FRAME_HEADER:
                buf[ring_offset + head : ring_offset + head + FRAME_HEADER] = _frame_header(WRAP, 0, 0, 0)
            while live and live[0][0] >= head:
                live.popleft()
            head = 0
        while live and live[0][0] < head + total and live[0][0] + live[0][1] > head:
            live.popleft()  # overwritten by this frame
        at = ring_offset + head
        frame = _frame_header(COMMITTED, seq, t, len(payload)) + payload + b"PLSMCMIT"
        buf[at : at + len(frame)] = frame
        if index_capacity:
            slot = HEADER_SIZE + (seq % index_capacity) * SLOT
            buf[slot : slot + SLOT] = struct.pack("<QQ", seq, head)
        live.append((head, total, seq))
        head += total
        if head == ring_size:
            head = 0
    tail = live[0][0] if live else head
    tail_next = live[1][0] if len(live) > 1 else head
    oldest = live[0][2] if live else 0
    struct.pack_into("<4sIB", buf, 0, b"PLSM", version, 1)
    struct.pack_into("<QQI", buf, 16, file_size, HEADER_SIZE, index_capacity)
    struct.pack_into("<QQQQQQQQ", buf, 40, ring_offset, ring_size, 0, head, tail, tail_next, oldest, seq)
    Path(path).write_bytes(bytes(buf))
    return {"oldest_seq": oldest, "newest_seq": seq, "head_off": head, "tail_off": tail,
            "retained": [s for _, _, s in live]}

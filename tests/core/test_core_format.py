"""Format and placement planning: exhaustive properties with hypothesis."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plasmite_core import format as F


@given(size=st.integers(F.MIN_POOL_SIZE, 1 << 34), cap=st.one_of(st.none(), st.integers(0, 100_000)))
def test_geometry_fits_the_file(size, cap):
    try:
        geo = F.plan_geometry(size, cap)
    except ValueError:
        assert cap is not None  # only an oversized explicit index can be refused
        return
    assert geo.index_offset == F.HEADER_SIZE
    assert geo.ring_offset >= geo.index_offset + geo.index_capacity * F.INDEX_ENTRY_SIZE
    assert geo.ring_offset % F.ALIGN == 0 and geo.ring_size % F.ALIGN == 0
    assert geo.ring_offset + geo.ring_size <= geo.file_size <= size
    if cap is None:
        # Default index covers every frame the ring can possibly hold.
        assert geo.index_capacity * F.MIN_FRAME >= geo.ring_size - F.MIN_FRAME


def test_geometry_refuses_tiny_and_huge():
    with pytest.raises(ValueError):
        F.plan_geometry(F.MIN_POOL_SIZE - 1)
    with pytest.raises(ValueError):
        F.plan_geometry(F.MAX_POOL_SIZE + 8)


def test_one_mib_pool_keeps_over_8000_small_messages():
    geo = F.plan_geometry(1 << 20)
    payload = b'{"from":"alice","msg":"hello world, this is sixty bytes!!"}'
    assert 55 <= len(payload) <= 65
    assert geo.ring_size // F.frame_len(len(payload), 0) >= 8000


@given(seq=st.integers(1, 2**63), t=st.integers(0, 2**63), tags=st.binary(max_size=300), payload=st.binary(max_size=3000))
def test_frame_roundtrip(seq, t, tags, payload):
    raw = F.build_frame(seq, t, tags, payload)
    flen, crc, s, tt, pl, tl, kind, _ = F.FRAME_HEAD.unpack_from(raw, 0)
    assert (s, tt, pl, tl, kind) == (seq, t, len(payload), len(tags), F.KIND_MESSAGE)
    assert flen == F.frame_len(len(payload), len(tags)) and flen % 8 == 0 and flen >= len(raw)
    assert crc & 1 and crc != F.PAD_MARK
    assert (zlib.crc32(raw[8:]) | 1) == crc
    assert raw[32 : 32 + tl] == tags and raw[32 + tl :] == payload


def test_static_header_roundtrip_and_damage():
    geo = F.plan_geometry(1 << 20)
    raw = F.pack_static(geo, "json", 123)
    h = F.parse_static(raw, geo.file_size)
    assert h.geometry == geo and h.codec == "json" and h.created_ns == 123
    with pytest.raises(F.HeaderError):
        F.parse_static(raw, geo.file_size - 8)  # truncated file
    bad = bytearray(raw)
    bad[40] ^= 1
    with pytest.raises(F.HeaderError):
        F.parse_static(bytes(bad))
    newer = F.pack_static(geo, "json", 1, version=F.FORMAT_VERSION + 1)
    with pytest.raises(F.HeaderError) as exc:
        F.parse_static(newer)
    assert exc.value.newer


def test_state_slots_pick_newest_valid():
    a = F.pack_state(F.State(7, 100, 10, 5, 2, 99))
    b = F.pack_state(F.State(8, 200, 20, 6, 3, 100))
    pair = a + b"\0" * 8 + b + b"\0" * 8
    assert F.choose_state(pair).gen == 8
    torn = bytearray(pair)
    torn[64 + 9] ^= 0xFF  # damage the newer slot: fall back to the older
    assert F.choose_state(bytes(torn)).gen == 7
    torn[3] ^= 0xFF
    assert F.choose_state(bytes(torn)) is None


@settings(max_examples=300, deadline=None)
@given(
    ring_units=st.integers(8, 200),
    batches=st.lists(st.lists(st.integers(5, 60), min_size=1, max_size=6), min_size=1, max_size=40),
)
def test_placement_never_overlaps_and_bounds_the_span(ring_units, batches):
    R = ring_units * 8
    frames: dict[int, int] = {}  # live frames and pads: logical pos -> length
    head = 0
    for batch in batches:
        lengths = [min(n * 8, R // 2) for n in batch]
        if sum(lengths) + len(lengths) * 8 > R // 2:
            lengths = lengths[:1]
        plan = F.plan_placement(head, R, lengths)
        # frames never straddle the ring end; pads fill exactly to it
        for pos, n in zip(plan.positions, lengths):
            assert pos % R + n <= R
        for pos, room in plan.pads:
            assert pos % R + room == R
        # positions are increasing and contiguous apart from pads
        cur = plan.positions[0] if plan.need > head else head
        pads = dict(plan.pads)
        for pos, n in zip(plan.positions, lengths):
            if cur in pads:
                cur += pads[cur]
            assert pos == cur
            cur += n
        assert plan.head == cur
        assert plan.head - plan.need <= R
        # eviction drops whole old frames from the tail, never a new one
        assert plan.need <= plan.positions[0]
        tail = min(frames) if frames else head
        while frames and tail < plan.need:
            tail += frames.pop(tail)
        if plan.need > head:
            assert not frames
            tail = plan.need
        for pos, room in plan.pads:
            frames[pos] = room
        for pos, n in zip(plan.positions, lengths):
            frames[pos] = n
        head = plan.head
        # live frames are exactly [tail, head) with no overlap
        spans = sorted(frames.items())
        assert spans[0][0] == tail
        for (p, n), (q, _) in zip(spans, spans[1:]):
            assert p + n == q
        assert spans[-1][0] + spans[-1][1] == head
        assert head - tail <= R


def test_placement_refuses_frame_larger_than_ring():
    with pytest.raises(ValueError):
        F.plan_placement(0, 64, [72])


def test_records_namedtuple_builds_what_typing_namedtuple_builds():
    import pickle
    import typing

    from plasmite_core import records

    made = []
    for base in (typing.NamedTuple, records.NamedTuple):
        class Rec(base):  # type: ignore[misc, valid-type]
            """A record."""

            a: int
            b: str = "x"

            @property
            def twice(self) -> int:
                return 2 * self.a

        made.append(Rec)
    ref, rec = made
    assert rec._fields == ref._fields and rec._field_defaults == ref._field_defaults == {"b": "x"}
    assert rec.__doc__ == ref.__doc__ and rec.__qualname__ == ref.__qualname__ and rec.__module__ == __name__
    r = rec(3)
    assert r == (3, "x") and r.twice == 6 and repr(r) == repr(ref(3)) and r._replace(b="y") == (3, "y")
    assert tuple.__mro__ == rec.__mro__[1:] and not hasattr(r, "__dict__")
    with pytest.raises(TypeError):
        class Bad(records.NamedTuple):  # a field without a default after one with a default
            a: int = 1
            b: int
    assert pickle.loads(pickle.dumps(F.INITIAL_STATE)) == F.INITIAL_STATE and F.INITIAL_STATE.count == 0

"""Placement and eviction: any message that fits the ring is stored, whatever
the ring holds (issue 10, item 3).

A wrapping frame is placed after a pad at the start of the next lap. When the
pad plus the frame are longer than the ring, evicting every old frame is not
enough; the writer used to walk on past the head into stale bytes and report
a healthy pool as Corrupt. The property test drives real pools through both
append paths and compares them with a pure model of the ring written here,
independent of ``plan_placement``.
"""

from __future__ import annotations

import json

import pytest

from plasmite import Client
from plasmite_core import format as F
from plasmite_core.doctor import check_pool

from cli_support import pls

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

POOL_SIZE = 64 * 1024


def _flen(plen: int) -> int:
    return (39 + plen) & ~7


class ModelRing:
    """Live frames as (logical pos, length, seq); pads are not kept."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.frames: list[tuple[int, int, int]] = []
        self.head = 0
        self.seq = 0

    def append(self, n: int) -> None:
        R = self.size
        assert n <= R
        pos = self.head
        if R - pos % R < n:
            pos += R - pos % R  # pad to the ring end
        end = pos + n
        while self.frames and end - self.frames[0][0] > R:
            self.frames.pop(0)
        # With every old frame gone, the span is the new frame alone: the
        # pad before it is outside the ring's live bytes.
        self.seq += 1
        self.frames.append((pos, n, self.seq))
        self.head = end

    def retained(self) -> list[int]:
        return [s for _, _, s in self.frames]


def _payload(plen: int, seq_hint: int) -> dict:
    """A JSON object whose encoding is exactly ``plen`` bytes."""
    body = f"{seq_hint}:".ljust(plen - 8, "x")  # {"p":"..."}
    assert len(body) == plen - 8
    return {"p": body}


def _sizes(ring: int):
    top = ring - 32  # the largest payload (no tags) whose frame fits the ring
    return st.lists(
        st.one_of(
            st.integers(24, 200),
            st.integers(200, ring // 2),
            st.integers(top - 600, top),
        ),
        min_size=1,
        max_size=24,
    )


def _check(pool, model: ModelRing, payloads: dict[int, str]) -> None:
    want = model.retained()
    oldest, newest = pool.bounds()
    assert (oldest, newest) == (want[0], want[-1])
    got = [(m.seq, m.data) for m in pool.tail(since_seq=0, timeout_ms=0)]
    assert got == [(s, payloads[s]) for s in want]
    assert pool.get(want[0]).data == payloads[want[0]]
    assert pool.get(want[-1]).data == payloads[want[-1]]


_RING = F.plan_geometry(POOL_SIZE).ring_size


@settings(max_examples=120, deadline=None)
@given(sizes=_sizes(_RING))
def test_single_appends_match_the_model(tmp_path_factory, sizes):
    d = tmp_path_factory.mktemp("ring")
    with Client(d) as c, c.create_pool("p", POOL_SIZE) as pool:
        model = ModelRing(pool.info().ring_size)
        payloads = {}
        for plen in sizes:
            v = _payload(plen, model.seq + 1)
            m = pool.append(v)
            model.append(_flen(plen))
            assert m.seq == model.seq
            payloads[m.seq] = v
            _check(pool, model, payloads)
    assert check_pool(d / "p.plasmite").ok


@settings(max_examples=120, deadline=None)
@given(sizes=_sizes(_RING), cuts=st.lists(st.integers(1, 6), min_size=1, max_size=24))
def test_batches_match_the_model(tmp_path_factory, sizes, cuts):
    d = tmp_path_factory.mktemp("ring")
    with Client(d) as c, c.create_pool("p", POOL_SIZE) as pool:
        model = ModelRing(pool.info().ring_size)
        payloads = {}
        i = 0
        k = 0
        while i < len(sizes):
            group = sizes[i : i + cuts[k % len(cuts)]]
            vals = []
            for plen in group:
                vals.append(_payload(plen, model.seq + 1))
                model.append(_flen(plen))
            ms = pool.append_many(vals)
            assert [m.seq for m in ms] == list(range(model.seq - len(group) + 1, model.seq + 1))
            payloads.update({m.seq: v for m, v in zip(ms, vals)})
            _check(pool, model, payloads)
            i += len(group)
            k += 1
    assert check_pool(d / "p.plasmite").ok


@pytest.mark.parametrize("small,big", [(300, 55_648), (1, 55_800)])
@pytest.mark.parametrize("path", ["append", "append_many", "feed"])
def test_a_wrapping_frame_nearly_the_ring_size_is_stored(pool_dir, small, big, path):
    """The issue's reproductions: a 64 KiB pool, some small messages, then one
    that fits the ring but must wrap. It was refused as Corrupt (append),
    "batch larger than the ring" (append_many, pls feed)."""
    payload = {"p": "y" * (big - 8)}  # encoded: exactly ``big`` bytes
    with Client(pool_dir) as c, c.create_pool("p", POOL_SIZE) as pool:
        for i in range(small):
            pool.append({"i": i})
        if path == "append":
            seq = pool.append(payload).seq
        elif path == "append_many":
            seq = pool.append_many([payload])[0].seq
        else:
            line = (json.dumps(payload) + "\n").encode()
            r = pls("feed", "p", pool_dir=pool_dir, input=line, timeout=120)
            assert r.returncode == 0, r.stderr
            seq = small + 1
        assert seq == small + 1
        assert pool.get(seq).data == payload
        assert pool.bounds() == (seq, seq)
        # and the pool goes on as usual
        assert pool.append({"after": 1}).seq == seq + 1
    assert check_pool(pool_dir / "p.plasmite").ok


def test_planner_drops_the_pad_when_every_old_frame_goes():
    R = 1000
    plan = F.plan_placement(960, R, [992])
    assert plan.positions == [1000] and plan.head == 1992
    assert plan.need == 1000 and plan.pads == []
    # a frame that wraps but leaves room for old frames keeps its pad
    plan = F.plan_placement(960, R, [200])
    assert plan.pads == [(960, 40)] and plan.need == 200
    with pytest.raises(ValueError):
        F.plan_placement(0, R, [1008])
    with pytest.raises(ValueError):  # a batch may not evict its own frames
        F.plan_placement(960, R, [200, 808])

"""The compiled stream cursor (plasmite_speedups._stream.Cursor) against its
pure reference (plasmite_core.stream._CursorPy): the same messages, envelopes,
gaps, ends and errors through ``next``, ``next_json`` and iteration; and every
extension the speedups distribution declares was built with the others."""

from __future__ import annotations

import importlib
import os

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plasmite_core import stream as core_stream
from plasmite_core.client import Client
from plasmite_core.stream import Stream
from plasmite_core.stream_base import StreamIteration

EXTENSIONS = ("_frames", "_message", "_pool", "_stream")


def test_the_extensions_are_built_together():
    """A C extension that fails to compile is skipped silently by the build
    (it is optional): one missing while others import is a defect."""
    built = {}
    for name in EXTENSIONS:
        try:
            importlib.import_module(f"plasmite_speedups.{name}")
            built[name] = True
        except ImportError:
            built[name] = False
    if not any(built.values()):
        pytest.skip("plasmite-speedups built without its C extensions")
    assert all(built.values()), built


_cursor = pytest.importorskip("plasmite_speedups._stream", reason="plasmite-speedups built without its C extension")
if core_stream._stream_ext is None:
    pytest.skip("the compiled cursor is not in use (PLASMITE_PURE)", allow_module_level=True)

# The reference in this process: the pure cursor's next, and StreamIteration's
# next_json and iteration over it, ahead of the compiled ones in the MRO.
PureStream = type("PureStream", (core_stream._CursorPy, Stream),
                  {k: vars(StreamIteration)[k] for k in ("next_json", "__iter__", "__next__")})


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # the exact error is part of the contract
        return (type(exc).__name__, str(exc))


def _drive(s, plan: list[str]) -> list:
    """Each step of ``plan`` on stream ``s``: what it returned or raised."""
    out = []
    for step in plan:
        if step == "next":
            out.append(_outcome(lambda: (lambda m: None if m is None else (m.seq, m.raw))(s.next(timeout_ms=0))))
        elif step == "json":
            out.append(_outcome(lambda: s.next_json(0)))
        elif step == "iter":
            out.append(_outcome(lambda: next(iter(s), "end")))  # a live stream: the wait is its timeout
        elif step == "position":
            out.append(_outcome(lambda: s.position))
        out.append(("state", s._done, s._delivered))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 1500), since=st.none() | st.integers(0, 200) | st.integers(700, 1600),
       mx=st.none() | st.integers(0, 30),
       gap=st.booleans(), tags=st.sampled_from([None, ["even"]]),
       plan=st.lists(st.sampled_from(["next", "json", "iter", "position"]), max_size=60))
def test_compiled_cursor_delivers_what_the_reference_does(tmp_path_factory, n, since, mx, gap, tags, plan):
    d = tmp_path_factory.mktemp("cur")
    with Client(d) as c, c.create_pool("p", 64 * 1024) as p:  # small: older messages are overwritten
        for i in range(0, n, 100):
            for k in range(i, min(n, i + 100)):
                p.append({"k": k, "pad": "x" * 40}, tags=["even"] if k % 2 == 0 else [])
        kw = dict(since_seq=since, max_messages=mx, timeout_ms=0, error_on_gap=gap, tags=tags)
        got, want = Stream(p, **kw), PureStream(p, **kw)
        assert PureStream.next is core_stream._CursorPy.next and type(got).next is not PureStream.next
        assert _drive(got, plan) == _drive(want, plan)


def test_next_takes_timeout_ms_by_position_or_keyword_only(tmp_path):
    with Client(tmp_path) as c, c.create_pool("p", 64 * 1024) as p:
        p.extend([{"i": i} for i in range(3)])
        s = p.open_stream(since_seq=1)
        assert s.next(0).seq == 1
        assert s.next(timeout_ms=0).seq == 2
        assert msgspec.json.decode(s.next_json(timeout_ms=0))["seq"] == 3
        assert s.next(0) is None and s.next_json(0) is None
        with pytest.raises(TypeError):
            s.next(1, 2)
        with pytest.raises(TypeError):
            s.next(0, timeout_ms=0)
        with pytest.raises(TypeError, match="unexpected keyword"):
            s.next(timeout=0)
        with pytest.raises(TypeError, match="unexpected keyword"):
            s.next_json(wait=1)


def test_iteration_yields_envelopes_until_max(tmp_path):
    with Client(tmp_path) as c, c.create_pool("p", 64 * 1024) as p:
        p.extend([{"i": i} for i in range(700)])  # more than one read-ahead batch
        with p.open_stream(since_seq=1, max_messages=600, timeout_ms=0) as s:
            seqs = [msgspec.json.decode(raw)["seq"] for raw in s]
        assert seqs == list(range(1, 601))
        assert s._done and s._delivered == 600


def test_state_set_from_python_is_what_the_cursor_reads(tmp_path):
    """The slow path and poll_* keep the delivery state in Python
    (``_done``, ``_delivered``, ``_max``, ``_buf``): the cursor's slots
    are those attributes."""
    with Client(tmp_path) as c, c.create_pool("p", 64 * 1024) as p:
        p.extend([{"i": i} for i in range(10)])
        s = p.open_stream(since_seq=1, max_messages=5)
        assert [v["i"] for v in s.poll_data(3)] == [0, 1, 2]
        assert s._delivered == 3
        assert s.next().seq == 4 and s._delivered == 4
        s._max = 10
        assert [s.next(0).seq for _ in range(6)] == [5, 6, 7, 8, 9, 10]
        assert s.next(0) is None and s._done is True
        with pytest.raises(TypeError):
            s._done = 1  # a bool slot
        assert "_done" not in getattr(s, "__dict__", {})
        assert os.environ.get("PLASMITE_PURE", "") in ("", "0")


@pytest.mark.parametrize("cls", [Stream, PureStream], ids=["compiled", "pure"])
def test_a_gap_marker_behind_buffered_messages_is_raised_in_turn(tmp_path, cls):
    """Read-ahead puts a retention-gap marker at the head of the buffer; one
    behind buffered messages (a subclass's read-ahead may leave it there) is
    still met in order: the messages first, then the error, then the end."""
    from plasmite_core.errors import RetentionGapError

    with Client(tmp_path) as c, c.create_pool("p", 64 * 1024) as p:
        p.extend([{"i": i} for i in range(2)])
        s = cls(p, since_seq=1, timeout_ms=0)
        s._fill()
        s._buf.append((None, 9))
        assert [s.next(0).seq, s.next(0).seq] == [1, 2]
        with pytest.raises(RetentionGapError) as ei:
            s.next(0)
        assert ei.value.seq == 9
        assert s.next(0) is None and s._done

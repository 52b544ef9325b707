"""The conformance tests every transport passes (see ``plasmite_core.testing``).

The tests speak only the contracts of ``plasmite_core.protocols``, never an
implementation. Waits are generous (a loaded 2-core box runs them), and each
test creates its own uniquely named pools and deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest

from ..envelope import Message, parse_message
from ..errors import (
    AlreadyExistsError,
    IoError,
    NotFoundError,
    PermissionDeniedError,
    PlasmiteError,
    RetentionGapError,
    UsageError,
)
from ..protocols import (
    Capability,
    PoolHandle,
    PoolInfoLike,
    StreamHandle,
    TransportClient,
)

WAIT_MS = 10_000  # a wait that should end early; only a failing transport reaches it


@dataclass
class TransportUnderTest:
    """How the kit reaches a transport.

    ``connect()`` returns a new client of one shared backend (the kit opens a
    second one to test visibility across clients). ``small_pool(client,
    name)`` creates a pool that retains at most a few hundred ~40-byte messages
    (default: ``create_pool(name, small_pool_bytes)``; both None skips the
    retention tests). ``unreachable()`` returns a client of a backend that
    cannot be reached, ``unauthorized()`` one with a refused credential.
    ``provoke`` maps the kinds no call can be made to raise portably (``"Busy"``,
    ``"Corrupt"``, ``"Internal"``) to ``fn(client, pool_name)``, which damages or
    blocks the backend and then makes the call that must fail with that kind.
    """

    connect: Callable[[], TransportClient]
    small_pool_bytes: int | None = 64 * 1024
    small_pool: Callable[[TransportClient, str], PoolHandle] | None = None
    unreachable: Callable[[], TransportClient] | None = None
    unauthorized: Callable[[], TransportClient] | None = None
    provoke: dict[str, Callable[[TransportClient, str], object]] = field(default_factory=dict)

    def create_small_pool(self, client: TransportClient, name: str) -> PoolHandle:
        if self.small_pool is not None:
            return self.small_pool(client, name)
        if self.small_pool_bytes is None:
            pytest.skip("the transport gives no way to create a small pool")
        return client.create_pool(name, self.small_pool_bytes)


def _name() -> str:
    return "kit-" + uuid.uuid4().hex[:12]


def _needs(pool: PoolHandle, cap: str) -> None:
    if cap not in pool.capabilities:
        pytest.skip(f"the transport does not declare {cap!r}")


def _fill_until_overwritten(pool: PoolHandle, limit: int = 200_000) -> tuple[int, int]:
    """Append until the oldest message was overwritten; returns the bounds."""
    filler = {"pad": "x" * 40}
    appended = 0
    while appended < limit:
        pool.append_many([filler] * 200)
        appended += 200
        oldest, newest = pool.bounds()
        if oldest is not None and oldest > 1:
            assert newest is not None
            return oldest, newest
    pytest.fail(f"the small pool still holds seq 1 after {limit} appends: no retention")


class TransportConformance:
    """Subclass as ``Test...`` and provide the ``transport`` fixture."""

    # ------------------------------------------------------------ fixtures
    @pytest.fixture
    def transport(self) -> TransportUnderTest:
        raise NotImplementedError("provide a `transport` fixture returning TransportUnderTest")

    @pytest.fixture
    def client(self, transport: TransportUnderTest) -> Iterator[TransportClient]:
        c = transport.connect()
        yield c
        c.close()

    @pytest.fixture
    def pool(self, client: TransportClient, transport: TransportUnderTest) -> Iterator[PoolHandle]:
        name = _name()
        p = client.create_pool(name)
        yield p
        p.close()
        admin = transport.connect()
        try:
            admin.delete_pool(name)
        except NotFoundError:
            pass
        finally:
            admin.close()

    # ------------------------------------------------------------- lifecycle
    def test_create_open_info_list_delete(self, client: TransportClient) -> None:
        name = _name()
        created = client.create_pool(name)
        try:
            assert isinstance(created, PoolHandle)
            assert created.name == name
            assert isinstance(created.capabilities, frozenset)
            opened = client.open_pool(name)
            assert opened.name == name
            opened.close()
            info = client.pool_info(name)
            assert isinstance(info, PoolInfoLike)
            assert (info.name, info.message_count, info.oldest_seq, info.newest_seq) == (name, 0, None, None)
            assert info.to_dict()["name"] == name
            assert name in [i.name for i in client.list_pools()]
        finally:
            created.close()
            client.delete_pool(name)
        with pytest.raises(NotFoundError):
            client.open_pool(name)
        with pytest.raises(NotFoundError):
            client.pool_info(name)
        assert name not in [i.name for i in client.list_pools()]

    def test_create_existing_is_already_exists(self, client: TransportClient, pool: PoolHandle) -> None:
        with pytest.raises(AlreadyExistsError):
            client.create_pool(pool.name)

    def test_pool_opens_or_creates(self, client: TransportClient) -> None:
        name = _name()
        first = client.pool(name)
        try:
            first.append({"n": 1})
            again = client.pool(name)
            assert again.get(1).data == {"n": 1}
            again.close()
        finally:
            first.close()
            client.delete_pool(name)

    def test_missing_pool_is_not_found(self, client: TransportClient) -> None:
        with pytest.raises(NotFoundError):
            client.open_pool(_name())
        with pytest.raises(NotFoundError):
            client.delete_pool(_name())

    def test_unsupported_create_options_are_usage_errors_or_honoured(self, client: TransportClient) -> None:
        name = _name()
        try:
            p = client.create_pool(name, codec="no-such-codec")
        except UsageError:
            pass
        else:
            p.close()
            client.delete_pool(name)
            pytest.fail("create_pool accepted an unknown codec")
        with pytest.raises(NotFoundError):
            client.open_pool(name)  # nothing was created

    # ---------------------------------------------------------------- writes
    def test_append_and_get(self, pool: PoolHandle) -> None:
        m = pool.append({"msg": "hi", "n": [1, 2]}, ["a", "b"])
        assert isinstance(m, Message)
        assert m.seq == 1 and m.time_ns > 0
        assert m.data == {"msg": "hi", "n": [1, 2]} and m.tags == ["a", "b"]
        got = pool.get(1)
        assert (got.seq, got.time_ns, got.data, got.tags) == (1, m.time_ns, m.data, ["a", "b"])
        assert parse_message(pool.get_json(1)) == got
        assert pool.bounds() == (1, 1)
        info = pool.info()
        assert (info.oldest_seq, info.newest_seq, info.message_count) == (1, 1, 1)

    def test_append_json_returns_the_envelope(self, pool: PoolHandle) -> None:
        raw = pool.append_json(b'{"k": [1, 2]}', ["t"])
        m = parse_message(raw)
        assert (m.seq, m.data, m.tags) == (1, {"k": [1, 2]}, ["t"])
        assert pool.append_json(bytearray(b'{"n": 2}')).startswith(b'{"seq":2')

    def test_append_many_gives_consecutive_seqs(self, pool: PoolHandle) -> None:
        pool.append({"first": True})
        msgs = pool.append_many([{"i": i} for i in range(50)], ["batch"])
        assert [m.seq for m in msgs] == list(range(2, 52))
        assert all(m.tags == ["batch"] for m in msgs)
        assert pool.get(51).data == {"i": 49}
        assert pool.append_many([]) == []

    def test_flush_durability_is_accepted(self, pool: PoolHandle) -> None:
        assert pool.append({"x": 1}, None, 1).seq == 1
        assert pool.get(1).data == {"x": 1}

    def test_encoded_append_when_declared(self, pool: PoolHandle) -> None:
        _needs(pool, Capability.ENCODED_APPEND)
        if pool.codec != "json":
            pytest.skip("encoded append is exercised on json pools")
        done = pool.append_encoded([(b"", b'{"a":1}'), (b'["t"]', b'{"b":2}')])  # type: ignore[attr-defined]
        assert [seq for seq, _t in done] == [1, 2]
        assert pool.get(2).tags == ["t"] and pool.get(2).data == {"b": 2}

    def test_messages_are_visible_to_other_clients(self, transport: TransportUnderTest, pool: PoolHandle) -> None:
        other = transport.connect()
        try:
            theirs = other.open_pool(pool.name)
            theirs.append({"from": "other"})
            assert pool.get(1).data == {"from": "other"}
            theirs.close()
        finally:
            other.close()

    # ------------------------------------------------------------ bad input
    def test_bad_input_is_usage_error(self, pool: PoolHandle) -> None:
        with pytest.raises(UsageError):
            pool.append({"x": 1}, "one-string-not-a-list")
        with pytest.raises(UsageError):
            pool.append_json(b"{not json")
        with pytest.raises(UsageError):
            pool.append({"bad": object()})
        for not_an_object in ([1], "text", 3, None):
            with pytest.raises(UsageError):
                pool.append(not_an_object)
        with pytest.raises(UsageError):
            pool.append_json(b"[1, 2]")
        with pytest.raises(UsageError):
            pool.append_many([{"ok": 1}, [2]])
        with pytest.raises(TypeError):
            pool.append_json("{}")  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            pool.get(-1)
        assert pool.bounds() == (None, None)  # nothing was stored

    def test_missing_seq_is_not_found_with_seq(self, pool: PoolHandle) -> None:
        pool.append({})
        with pytest.raises(NotFoundError) as info:
            pool.get(99)
        assert info.value.seq == 99
        with pytest.raises(NotFoundError):
            pool.get_json(99)

    def test_errors_are_plasmite_errors_with_kinds(self, client: TransportClient) -> None:
        with pytest.raises(PlasmiteError) as info:
            client.open_pool(_name())
        assert info.value.kind.label == "NotFound" and info.value.kind.exit_code == 3

    def test_unreachable_backend_is_io(self, transport: TransportUnderTest) -> None:
        if transport.unreachable is None:
            pytest.skip("the transport gives no unreachable backend")
        with pytest.raises(IoError):
            c = transport.unreachable()
            try:
                c.open_pool("anything")
            finally:
                c.close()

    def test_refused_credential_is_permission(self, transport: TransportUnderTest) -> None:
        if transport.unauthorized is None:
            pytest.skip("the transport has no credentials")
        with pytest.raises(PermissionDeniedError):
            c = transport.unauthorized()
            try:
                c.list_pools()
            finally:
                c.close()

    @pytest.mark.parametrize("kind", ["Busy", "Corrupt", "Internal"])
    def test_provoked_error_kinds(self, transport: TransportUnderTest, client: TransportClient, kind: str) -> None:
        provoke = transport.provoke.get(kind)
        if provoke is None:
            pytest.skip(f"the transport gives no way to provoke {kind}")
        name = _name()
        client.create_pool(name).close()
        try:
            with pytest.raises(PlasmiteError) as info:
                provoke(client, name)
            assert info.value.kind.label == kind
        finally:
            try:
                client.delete_pool(name)
            except PlasmiteError:
                pass

    # ----------------------------------------------------------------- tails
    def test_tail_from_seq(self, pool: PoolHandle) -> None:
        pool.append_many([{"i": i} for i in range(10)])
        got = list(pool.tail(since_seq=4, max_messages=3, timeout_ms=WAIT_MS))
        assert [m.seq for m in got] == [4, 5, 6]
        assert [m.data["i"] for m in got] == [3, 4, 5]

    def test_tail_last_n(self, pool: PoolHandle) -> None:
        pool.append_many([{"i": i} for i in range(10)])
        with pool.open_stream(last=3, timeout_ms=WAIT_MS) as s:
            assert isinstance(s, StreamHandle)
            assert [s.next(WAIT_MS).seq for _ in range(3)] == [8, 9, 10]  # type: ignore[union-attr]
        with pool.open_stream(last=0, timeout_ms=WAIT_MS) as s:
            pool.append({"live": True})
            m = s.next(WAIT_MS)
            assert m is not None and m.seq == 11

    def test_tail_from_time(self, pool: PoolHandle) -> None:
        _needs(pool, Capability.SINCE_TIME)
        pool.append_many([{"i": i} for i in range(3)])
        cut = pool.get(3).time_ns + 1
        time.sleep(0.01)
        pool.append_many([{"i": i} for i in range(3, 6)])
        got = list(pool.tail(since_time_ns=cut, max_messages=3, timeout_ms=WAIT_MS))
        assert [m.seq for m in got] == [4, 5, 6]

    def test_tail_by_tags(self, pool: PoolHandle) -> None:
        for i in range(12):
            pool.append({"i": i}, ["even"] if i % 2 == 0 else ["odd", "x"])
        got = list(pool.tail(since_seq=1, max_messages=3, timeout_ms=WAIT_MS, tags=["odd", "x"]))
        assert [m.data["i"] for m in got] == [1, 3, 5]
        assert all(m.tags == ["odd", "x"] for m in got)

    def test_where_when_declared(self, pool: PoolHandle) -> None:
        _needs(pool, Capability.WHERE)
        pool.append_many([{"i": i} for i in range(6)])
        got = list(pool.tail(since_seq=1, max_messages=2, timeout_ms=WAIT_MS, where=lambda m: m.data["i"] > 3))
        assert [m.data["i"] for m in got] == [4, 5]

    def test_stream_reads_json_and_polls(self, pool: PoolHandle) -> None:
        pool.append_many([{"i": i} for i in range(5)])
        with pool.open_stream(since_seq=1, timeout_ms=WAIT_MS) as s:
            raw = s.next_json(WAIT_MS)
            assert raw is not None and parse_message(raw).seq == 1
            assert s.position == 2  # a resume checkpoint, not how far the stream read ahead
            m = s.next(WAIT_MS)
            assert m is not None and m.seq == 2
            assert s.position == 3
            rest: list[int] = []
            deadline = time.monotonic() + WAIT_MS / 1000
            while len(rest) < 3 and time.monotonic() < deadline:
                rest += [x.seq for x in s.poll(2)]
                rest += [parse_message(b).seq for b in s.poll_json(1)]
                if len(rest) < 3:
                    time.sleep(0.01)
            assert rest == [3, 4, 5]
            assert s.position == 6

    def test_live_tail_sees_other_writers(self, transport: TransportUnderTest, pool: PoolHandle) -> None:
        other = transport.connect()

        def write() -> None:
            time.sleep(0.2)
            p = other.open_pool(pool.name)
            p.append({"late": True})
            p.close()

        t = threading.Thread(target=write)
        with pool.open_stream(last=0) as s:
            t.start()
            m = s.next(WAIT_MS)
        t.join()
        other.close()
        assert m is not None and m.data == {"late": True}

    def test_max_messages_ends_the_stream(self, pool: PoolHandle) -> None:
        pool.append_many([{}] * 5)
        with pool.open_stream(since_seq=1, max_messages=2, timeout_ms=WAIT_MS) as s:
            assert s.next(WAIT_MS) is not None and s.next(WAIT_MS) is not None
            assert s.next(WAIT_MS) is None

    def test_replay(self, pool: PoolHandle) -> None:
        pool.append_many([{"i": i} for i in range(4)])
        got = list(pool.replay(0, since_seq=2, max_messages=3, timeout_ms=WAIT_MS))
        assert [m.seq for m in got] == [2, 3, 4]
        with pytest.raises(UsageError):
            list(pool.replay(-1, since_seq=1, max_messages=1))

    # -------------------------------------------------------------- timeouts
    def test_stream_timeout_ends_with_timed_out(self, pool: PoolHandle) -> None:
        started = time.monotonic()
        with pool.open_stream(last=0, timeout_ms=300) as s:
            assert s.next() is None
            assert s.timed_out is True
        assert 0.25 <= time.monotonic() - started < 30

    def test_call_timeout_keeps_the_stream_open(self, pool: PoolHandle) -> None:
        with pool.open_stream(last=0) as s:
            started = time.monotonic()
            assert s.next(200) is None
            assert 0.15 <= time.monotonic() - started < 30
            assert s.timed_out is False
            pool.append({"after": True})
            m = s.next(WAIT_MS)
            assert m is not None and m.data == {"after": True}

    def test_tail_timeout_ends_iteration(self, pool: PoolHandle) -> None:
        pool.append({})
        assert [m.seq for m in pool.tail(since_seq=1, timeout_ms=300)] == [1]

    # ------------------------------------------------------------ retention
    def test_gap_is_reported_and_skipped(self, transport: TransportUnderTest, client: TransportClient) -> None:
        name = _name()
        pool = transport.create_small_pool(client, name)
        try:
            oldest, _newest = _fill_until_overwritten(pool)
            gaps: list[tuple[int, int]] = []
            with pool.open_stream(since_seq=1, timeout_ms=WAIT_MS,
                                  on_gap=lambda a, b: gaps.append((a, b))) as s:
                m = s.next(WAIT_MS)
            assert m is not None and m.seq >= oldest
            assert gaps and gaps[0][0] == 1 and gaps[0][1] == m.seq
        finally:
            pool.close()
            client.delete_pool(name)

    def test_gap_raises_under_error_policy(self, transport: TransportUnderTest, client: TransportClient) -> None:
        name = _name()
        pool = transport.create_small_pool(client, name)
        try:
            _fill_until_overwritten(pool)
            stream = None
            with pytest.raises(RetentionGapError) as info:
                stream = pool.open_stream(since_seq=1, timeout_ms=WAIT_MS, error_on_gap=True)
                stream.next(WAIT_MS)
            assert info.value.kind.label == "RetentionGap" and info.value.seq == 1
            if stream is not None:
                assert stream.next(1000) is None  # the stream ended
                stream.close()
            with pytest.raises(NotFoundError):
                pool.get(1)
        finally:
            pool.close()
            client.delete_pool(name)

    # ----------------------------------------------------------------- close
    def test_closed_stream_reads_nothing(self, pool: PoolHandle) -> None:
        pool.append_many([{}] * 3)
        s = pool.open_stream(since_seq=1, timeout_ms=WAIT_MS)
        assert s.next(WAIT_MS) is not None
        s.close()
        assert s.next(100) is None
        assert s.poll() == [] and s.poll_json() == []
        s.close()  # idempotent

    def test_closed_pool_refuses_calls(self, client: TransportClient, pool: PoolHandle) -> None:
        p = client.open_pool(pool.name)
        with p:
            p.append({})
        with pytest.raises(UsageError):
            p.append({})
        with pytest.raises(UsageError):
            p.get(1)
        p.close()  # idempotent
        assert pool.get(1).seq == 1  # other handles are unaffected

    def test_closed_client_refuses_calls(self, transport: TransportUnderTest) -> None:
        c = transport.connect()
        with c:
            c.list_pools()
        with pytest.raises(UsageError):
            c.open_pool(_name())
        c.close()

    # ----------------------------------------------------------------- async
    def test_async_tail(self, pool: PoolHandle) -> None:
        pool.append_many([{"i": i} for i in range(3)])

        async def run() -> list[int]:
            return [m.seq async for m in pool.atail(since_seq=2, max_messages=2, timeout_ms=WAIT_MS)]

        assert asyncio.run(run()) == [2, 3]

    def test_async_stream_iteration_and_live_messages(self, transport: TransportUnderTest,
                                                      pool: PoolHandle) -> None:
        pool.append({"i": 0})

        async def run() -> list[Any]:
            other = transport.connect()
            writer = other.open_pool(pool.name)
            loop = asyncio.get_running_loop()
            got: list[Any] = []
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            with pool.open_stream(since_seq=1, max_messages=3, timeout_ms=WAIT_MS) as s:
                loop.call_later(0.2, writer.append, {"i": 1})
                loop.call_later(0.4, writer.append, {"i": 2})
                async for m in s:
                    got.append(m.data["i"])
            ticker.cancel()
            writer.close()
            other.close()
            assert ticks > 5, "the async stream blocked the event loop"
            return got

        assert asyncio.run(run()) == [0, 1, 2]

"""Forged frames: a valid CRC over bytes that are not valid for the codec
(issue 10, item 8).

Every read of such a frame is a Corrupt error naming the seq and the offset:
the API (``get().data``, ``.tags``, envelopes, tails), ``pls fetch`` and
``pls follow`` (exit 7), HTTP get and tail (an error answer; a terminal error
line in a tail). A payload crafted to break out of the envelope assembled by
concatenation never reaches a reader. ``pls doctor --deep`` finds them.
"""

from __future__ import annotations

import http.client
import json
import zlib

import pytest

from plasmite import Client
from plasmite_core import format as F
from plasmite_core.doctor import check_pool
from plasmite_core.errors import CorruptError

from cli_support import error_of, jsonl, pls


def forge(path, seq, *, payload: bytes | None = None, tags: bytes | None = None, new_seq: int | None = None) -> int:
    """Rewrite message ``seq`` in place with a valid CRC; returns its file offset.
    The new payload and tags must keep the frame's length."""
    with Client(path.parent) as c, c.open_pool(str(path)) as pool:
        pf = pool._file()
        pos = pf.locate(seq, pf.read_state())
        off = pf.ring_offset + pos % pf.ring_size
    with open(path, "r+b") as f:
        f.seek(off)
        head = f.read(F.FRAME_HEADER_SIZE)
        flen, _, fseq, t, pl, tl, kind, flags = F.FRAME_HEAD.unpack(head)
        old = f.read(tl + pl)
        new_tags = old[:tl] if tags is None else tags
        new_payload = old[tl:] if payload is None else payload
        assert F.frame_len(len(new_payload), len(new_tags)) == flen, "forged frame must keep its length"
        fseq = fseq if new_seq is None else new_seq
        body = F.FRAME_REST.pack(fseq, t, len(new_payload), len(new_tags), kind, flags) + new_tags + new_payload
        f.seek(off)
        f.write(F.FRAME_PREFIX.pack(flen, zlib.crc32(body) | 1) + body)
    return off


# Payloads of 8 bytes, like the stored {"a":12}: each breaks the envelope in
# its own way (a structure change that is still valid JSON, invalid JSON,
# bytes that are not UTF-8).
FORGED = {
    "seq_override": b'1,"s":9',  # 7 bytes + 1 space: `"data":1,"s":9 }`
    "breakout": b'1},"x":{',
    "truncated": b'{"a":[1,',
    "not_utf8": b'"\xff\xfe\xfd\xfc\xfb"',
}


def _pool(pool_dir, name="f"):
    with Client(pool_dir) as c, c.create_pool(name, 256 * 1024) as pool:
        for i in range(1, 13):
            pool.append({"a": 12}, ["t"] if i % 2 else None)  # payload `{"a":12}`: 8 bytes
    return pool_dir / f"{name}.plasmite"


def _assert_corrupt(err, path, seq, off):
    assert isinstance(err, CorruptError), repr(err)
    assert err.seq == seq and err.offset == off and err.path == str(path), err.to_dict()


@pytest.mark.parametrize("kind", sorted(FORGED))
def test_forged_payload_is_corrupt_in_the_api(pool_dir, kind):
    path = _pool(pool_dir)
    payload = FORGED[kind].ljust(8)
    off = forge(path, 5, payload=payload)
    with Client(pool_dir) as c, c.open_pool("f") as pool:
        m = pool.get(5)
        for read in (lambda: m.data, lambda: m.raw, lambda: pool.get_json(5)):
            with pytest.raises(CorruptError) as ei:
                read()
            _assert_corrupt(ei.value, path, 5, off)
        assert pool.get(4).data == {"a": 12} and pool.get(6).data == {"a": 12}
        # tails: decoded, raw, and the batched raw path deliver 1..4 then fail
        got = []
        with pytest.raises(CorruptError) as ei:
            for m in pool.tail(since_seq=1, timeout_ms=0):
                got.append(m.data)
        _assert_corrupt(ei.value, path, 5, off)
        assert got == [{"a": 12}] * 4
        stream = pool.open_stream(since_seq=1, timeout_ms=0)
        with pytest.raises(CorruptError):
            list(stream)  # iterates raw envelopes
        stream = pool.open_stream(since_seq=1, timeout_ms=0)
        envs = stream.poll_json()
        assert [json.loads(e)["seq"] for e in envs] == [1, 2, 3, 4]
        with pytest.raises(CorruptError) as ei:
            stream.poll_json()
        _assert_corrupt(ei.value, path, 5, off)
        # the bulk decoded read (one parse that checks and decodes), also under max_messages
        for kwargs in ({}, {"max_messages": 9}):
            stream = pool.open_stream(since_seq=1, timeout_ms=0, **kwargs)
            assert stream.poll_data() == [{"a": 12}] * 4
            with pytest.raises(CorruptError) as ei:
                stream.poll_data()
            _assert_corrupt(ei.value, path, 5, off)
        stream = pool.open_stream(since_seq=6, timeout_ms=0, max_messages=3)
        assert stream.poll_data() == [{"a": 12}] * 3 and stream.poll_data() == []


def test_forged_tags_are_corrupt_in_the_api(pool_dir):
    path = _pool(pool_dir)
    off = forge(path, 3, tags=b'["t"],1')  # seq 3 has tags ["t"] (5 bytes): keep the frame length
    with Client(pool_dir) as c, c.open_pool("f") as pool:
        m = pool.get(3)
        assert m.data == {"a": 12}
        for read in (lambda: m.tags, lambda: m.meta, lambda: m.raw):
            with pytest.raises(CorruptError) as ei:
                read()
            _assert_corrupt(ei.value, path, 3, off)
        stream = pool.open_stream(since_seq=1, timeout_ms=0)
        assert len(stream.poll_json()) == 2
        with pytest.raises(CorruptError):
            stream.poll_json()
        stream = pool.open_stream(since_seq=1, timeout_ms=0)
        assert stream.poll_data() == [{"a": 12}] * 2
        with pytest.raises(CorruptError) as ei:
            stream.poll_data()
        _assert_corrupt(ei.value, path, 3, off)


def test_forged_payload_in_the_cli(pool_dir):
    path = _pool(pool_dir)
    off = forge(path, 5, payload=FORGED["seq_override"].ljust(8))
    r = pls("fetch", "f", "5", pool_dir=pool_dir)
    assert r.returncode == 7 and r.stdout == ""
    err = error_of(r)
    assert err["kind"] == "Corrupt" and err["seq"] == 5 and err["offset"] == off
    r = pls("fetch", "f", "6", pool_dir=pool_dir)
    assert r.returncode == 0 and json.loads(r.stdout)["seq"] == 6
    r = pls("follow", "f", "--tail", "100", "--jsonl", "--timeout", "2s", pool_dir=pool_dir)
    assert r.returncode == 7
    assert [m["seq"] for m in jsonl(r.stdout)] == [1, 2, 3, 4]
    assert error_of(r)["kind"] == "Corrupt"
    # doctor: the CRC holds, so only the deep check sees it
    assert pls("doctor", "f", pool_dir=pool_dir).returncode == 0
    r = pls("doctor", "f", "--deep", "--json", pool_dir=pool_dir)
    assert r.returncode == 7
    (rep,) = json.loads(r.stdout)["reports"]
    assert [i["code"] for i in rep["issues"]] == ["payload"] and rep["issues"][0]["offset"] == off
    assert rep["issues"][0]["seq"] == 5  # the frame's CRC holds, so its seq names the message
    r = pls("doctor", "f", "--deep", "--repair", "--json", pool_dir=pool_dir)
    assert r.returncode == 0, r.stdout
    assert check_pool(path, deep=True).ok
    with Client(pool_dir) as c, c.open_pool("f") as pool:
        assert [m.seq for m in pool.tail(since_seq=1, timeout_ms=0)] == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]


def _http(server, path):
    host, port = server.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_forged_payload_over_http(pool_dir):
    serve = pytest.importorskip("plasmite_serve.testing")
    path = _pool(pool_dir)
    off = forge(path, 5, payload=FORGED["breakout"])
    with serve.ServerProcess(pool_dir) as server:
        status, body = _http(server, "/v0/pools/f/messages/5")
        assert status == 500
        err = json.loads(body)["error"]
        assert err["kind"] == "Corrupt" and err["seq"] == 5 and err["offset"] == off
        status, body = _http(server, "/v0/pools/f/messages/6")
        assert status == 200 and json.loads(body)["message"]["seq"] == 6
        status, body = _http(server, "/v0/pools/f/tail?since_seq=1&timeout_ms=500")
        assert status == 200
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]  # every line valid JSON
        assert [m["seq"] for m in lines[:-1]] == [1, 2, 3, 4]
        assert lines[-1]["error"]["kind"] == "Corrupt" and lines[-1]["error"]["seq"] == 5


@pytest.mark.parametrize("how", ["append", "extend", "append_many"])
def test_forged_state_near_2_64_refuses_appends_as_corrupt(pool_dir, how):
    """A state slot with a valid CRC whose seq counter sits at 2**64 - 1: the
    next append cannot be published, and says so as Corrupt (it was a raw
    struct.error from the batch path), leaving what was stored readable."""
    with Client(pool_dir) as c:
        with c.create_pool("edge", 64 * 1024) as pool:
            pool.append({"i": 0})
            pf = pool._file()
            st = pf.read_state()
            pf._publish(st.gen + 1, st.head, st.tail, (1 << 64) - 1, st.oldest, st.newest_time)
        pool = c.open_pool("edge")  # a writer that did not forge it (no cached state)
        with pytest.raises(CorruptError) as e:
            if how == "append":
                pool.append({"i": 1})
            else:
                getattr(pool, how)([{"i": i} for i in range(3)])
        assert "2**64" in str(e.value) and e.value.hint
        assert pool.get(st.newest).data == {"i": 0}
        pool.close()


@pytest.mark.parametrize("how", ["append", "extend"])
def test_forged_tail_frame_seq_near_2_64_is_corrupt_when_evicted(pool_dir, how):
    """The oldest frame claims seq 2**64 - 1 (valid CRC): the writer that must
    evict it refuses as Corrupt (found by the fuzzer as a raw struct.error)."""
    path = _pool(pool_dir, "evict")
    forge(path, 1, new_seq=(1 << 64) - 1)
    with Client(pool_dir) as c, c.open_pool("evict") as pool:
        with pytest.raises(CorruptError) as e:
            for _ in range(400):  # enough to wrap the 256 KiB ring onto the forged frame
                if how == "append":
                    pool.append({"pad": "x" * 2000})
                else:
                    pool.extend([{"pad": "x" * 2000}] * 8)
        assert "ring tail is damaged" in str(e.value) and e.value.hint

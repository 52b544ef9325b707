"""doctor: a clean pool passes; damage is named with its offset and repaired."""

from __future__ import annotations

import struct

from plasmite_core import format as F
from plasmite_core.doctor import check_pool, repair_pool


def _fill(client, name, n=50, size=256 * 1024):
    pool = client.create_pool(name, size)
    for i in range(n):
        pool.append({"i": i, "text": "hello"}, ["t"])
    info = pool.info()
    pool.close()
    return info


def test_clean_pool_is_ok(client, pool_dir):
    _fill(client, "clean")
    r = check_pool(pool_dir / "clean.plasmite")
    assert r.ok and r.messages_checked == 50 and r.to_dict()["bounds"] == {"oldest": 1, "newest": 50}


def test_flipped_payload_byte_is_found_and_repaired(client, pool_dir):
    info = _fill(client, "flip")
    path = pool_dir / "flip.plasmite"
    data = bytearray(path.read_bytes())
    # Damage the 20th frame's payload: walk frames from the ring start.
    off = info.ring_offset
    for _ in range(19):
        off += struct.unpack_from("<I", data, off)[0]
    data[off + 40] ^= 0x5A
    path.write_bytes(bytes(data))
    r = check_pool(path)
    assert not r.ok and r.issues[0].code == "checksum" and r.issues[0].offset == off
    # readers get Corrupt (never wrong data) for the damaged frame
    from plasmite import CorruptError
    import pytest

    with client.open_pool("flip") as pool:
        assert pool.get(19).data["i"] == 18
        with pytest.raises(CorruptError) as e:
            pool.get(20)
        assert e.value.offset == off and e.value.path
    fixed = repair_pool(path)
    assert fixed.repaired and check_pool(path).ok
    assert fixed.lost == [[20, 20]]
    with client.open_pool("flip") as pool:
        assert pool.bounds() == (1, 50)
        # every frame that verifies is kept: only seq 20 is lost
        assert [m.seq for m in pool.tail(timeout_ms=0)] == [s for s in range(1, 51) if s != 20]
        assert pool.info().message_count == 49
        # seqs are never reused after a repair
        assert pool.append({"after": 1}).seq == 51
    assert check_pool(path).ok


def test_damaged_state_slot_is_reported_but_pool_still_opens(client, pool_dir):
    _fill(client, "slot")
    path = pool_dir / "slot.plasmite"
    data = bytearray(path.read_bytes())
    gen_a = struct.unpack_from("<Q", data, F.STATE_A_OFFSET)[0]
    gen_b = struct.unpack_from("<Q", data, F.STATE_B_OFFSET)[0]
    older = F.STATE_A_OFFSET if gen_a < gen_b else F.STATE_B_OFFSET
    data[older + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    r = check_pool(path)
    assert not r.ok and r.issues[0].code == "state_slot"
    with client.open_pool("slot") as pool:
        assert pool.bounds() == (1, 50)


def test_bad_header_is_reported(client, pool_dir):
    _fill(client, "hdr")
    path = pool_dir / "hdr.plasmite"
    data = bytearray(path.read_bytes())
    data[0:8] = b"XXXXXXXX"
    path.write_bytes(bytes(data))
    r = check_pool(path)
    assert not r.ok and r.issues[0].code == "header" and r.issues[0].offset is not None

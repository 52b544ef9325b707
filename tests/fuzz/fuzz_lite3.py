"""Coverage-guided fuzzing of the Lite3 codec with atheris (not part of tox).

    pip install atheris
    python tests/fuzz/fuzz_lite3.py -runs=200000          # or -max_total_time=60
    python tests/fuzz/fuzz_lite3.py CORPUS_DIR -runs=...   # libFuzzer options pass through

Each input is used three ways: as a raw Lite3 buffer, as damage applied to a
known-good document, and as JSON text. The only acceptable failures are
PlasmiteError subclasses; JSON that encodes must also decode to the same
value. Anything else (IndexError, struct.error, RecursionError, a mismatch)
is a crash that libFuzzer reports with a reproducer file.
"""

from __future__ import annotations

import json
import os
import struct
import sys

import atheris

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, "..", ".."))
for sub in ("plasmite_codecs/src", "plasmite_core/src"):
    path = os.path.join(_ROOT, sub)
    if os.path.isdir(path) and path not in sys.path:
        sys.path.insert(0, path)

with atheris.instrument_imports():
    from plasmite_codecs import lite3
    from plasmite_core.errors import PlasmiteError, UsageError

_SEEDS = [
    lite3.from_json(b'{"a":1}'),
    lite3.from_json(b'{"from":"alice","msg":"hello","n":[1,2.5,null,true,false,{}]}'),
    lite3.encode_message(["a", "b"], {"x": {"y": [1, 2, 3]}, "s": "\u00e9\x00"}),
    lite3.from_json(json.dumps({f"k{i}": i for i in range(40)}).encode()),
    lite3.from_json(json.dumps([[i, str(i)] for i in range(30)]).encode()),
    lite3.from_json(b'{"a":"' + b"s" * 120 + b'","a":{"x":1}}'),
    lite3.encode({"b": b"\x00\x01\x02", "deep": [[[[{"k": "v"}]]]]}),
]
_PATHS = [(), ("a",), ("meta", "tags"), ("data",), (0,), (0, 1), ("k7",), ("x", "y", 2), (-1,)]


def _read_all(buf: bytes) -> None:
    for call in (
        lambda: lite3.to_json(buf),
        lambda: lite3.decode(buf),
        lambda: lite3.get_tags(buf),
        lambda: lite3.parse_message(buf),
    ):
        try:
            call()
        except PlasmiteError:
            pass
    for path in _PATHS:
        try:
            lite3.lookup(buf, path)
            lite3.lookup_json(buf, path)
        except PlasmiteError:
            pass


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:  # raw buffer, often with a plausible root type byte
        prefix = fdp.ConsumeIntInRange(0, 2)
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
        _read_all(([b"", b"\x06", b"\x07"][prefix]) + body)
    elif mode == 1:  # damage a good document
        buf = bytearray(_SEEDS[fdp.ConsumeIntInRange(0, len(_SEEDS) - 1)])
        for _ in range(fdp.ConsumeIntInRange(1, 6)):
            if not buf:
                break
            kind = fdp.ConsumeIntInRange(0, 2)
            i = fdp.ConsumeIntInRange(0, len(buf) - 1)
            if kind == 0:
                buf[i] = fdp.ConsumeIntInRange(0, 255)
            elif kind == 1 and len(buf) >= 4:
                i = min(i, len(buf) - 4)
                struct.pack_into("<I", buf, i, fdp.ConsumeIntInRange(0, len(buf) + 200))
            else:
                del buf[i:]
        _read_all(bytes(buf))
    else:  # JSON text in: either refused cleanly or a faithful round trip
        text = fdp.ConsumeBytes(fdp.remaining_bytes())
        try:
            buf = lite3.from_json(text)
        except UsageError:
            return
        value = lite3.decode(buf)
        out = lite3.to_json(buf)
        if json.loads(out) != value:
            raise AssertionError(f"to_json and decode disagree for {text!r}")
        again = lite3.from_json(out)
        if lite3.decode(again) != value:
            raise AssertionError(f"re-encoding changed the value for {text!r}")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

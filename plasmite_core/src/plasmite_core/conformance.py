"""Runner for upstream's language-neutral conformance manifests (v0).

``python -m plasmite_core.conformance MANIFEST.json [...]`` executes each
manifest's steps in order against the local Python API (and the CLI for
``spawn_poke``, located by ``PLASMITE_BIN`` or ``pls`` on PATH) and exits
non-zero at the first step whose expectation fails, naming its index and id.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .client import Client
from .errors import PlasmiteError
from .refs import resolve_pool_ref


class StepFailure(AssertionError):
    pass


class Runner:
    def __init__(self, manifest: dict[str, Any], base_dir: Path, plasmite_bin: list[str] | None = None) -> None:
        if manifest.get("conformance_version") != 0:
            raise StepFailure(f"unsupported conformance_version {manifest.get('conformance_version')!r}")
        self.manifest = manifest
        self.workdir = base_dir / (manifest.get("workdir") or "work")
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        self.client = Client(self.workdir)
        self.plasmite_bin = plasmite_bin or _default_bin()

    def run(self) -> int:
        steps = self.manifest.get("steps") or []
        for i, step in enumerate(steps):
            op = step.get("op")
            fn = getattr(self, f"op_{op}", None)
            if fn is None:
                raise self.fail(i, step, f"unknown op {op!r}")
            expect = step.get("expect") or {}
            want_err = expect.get("error")
            try:
                fn(i, step)
            except PlasmiteError as exc:
                if want_err is None:
                    raise self.fail(i, step, f"unexpected error {exc.kind.label}: {exc}") from exc
                self.check_error(i, step, exc, want_err)
                continue
            if want_err is not None:
                raise self.fail(i, step, f"expected error {want_err.get('kind')}, got success")
        return len(steps)

    # ----------------------------------------------------------- helpers
    def fail(self, i: int, step: dict, msg: str) -> StepFailure:
        sid = step.get("id")
        return StepFailure(f"{self.manifest.get('name')}: step {i}{f' ({sid})' if sid else ''}: {msg}")

    def check_error(self, i: int, step: dict, exc: PlasmiteError, want: dict) -> None:
        if exc.kind.label != want.get("kind"):
            raise self.fail(i, step, f"expected error kind {want.get('kind')}, got {exc.kind.label}: {exc}")
        sub = want.get("message_contains")
        if sub is not None and sub not in exc.message:
            raise self.fail(i, step, f"error message {exc.message!r} lacks {sub!r}")
        for key, attr in (("has_path", "path"), ("has_seq", "seq"), ("has_offset", "offset")):
            if key in want and (getattr(exc, attr) is not None) != want[key]:
                raise self.fail(i, step, f"{key} expected {want[key]}, error was {exc!r}")

    @staticmethod
    def pool_name(step: dict) -> str:
        return step["pool"]

    def check_messages(self, i: int, step: dict, got: list, expect: dict) -> None:
        actual = [{"data": m.data, "tags": list(m.tags)} for m in got]

        def norm(e):
            return {"data": e.get("data"), "tags": list(e.get("tags", []))}

        if "messages" in expect:
            want = [norm(e) for e in expect["messages"]]
            if actual != want:
                raise self.fail(i, step, f"messages {actual} != expected {want}")
        elif "messages_unordered" in expect:
            want = [norm(e) for e in expect["messages_unordered"]]
            key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
            if sorted(map(key, actual)) != sorted(map(key, want)):
                raise self.fail(i, step, f"messages {actual} != expected (any order) {want}")

    # --------------------------------------------------------------- ops
    def op_create_pool(self, i: int, step: dict) -> None:
        size = (step.get("input") or {}).get("size_bytes", 1024 * 1024)
        self.client.create_pool(self.pool_name(step), size).close()

    def op_append(self, i: int, step: dict) -> None:
        inp = step.get("input") or {}
        with self.client.open_pool(self.pool_name(step)) as pool:
            m = pool.append(inp.get("data"), inp.get("tags") or [])
        want = (step.get("expect") or {}).get("seq")
        if want is not None and m.seq != want:
            raise self.fail(i, step, f"seq {m.seq} != expected {want}")

    def op_get(self, i: int, step: dict) -> None:
        inp = step.get("input") or {}
        with self.client.open_pool(self.pool_name(step)) as pool:
            m = pool.get(inp["seq"])
        expect = step.get("expect") or {}
        if "data" in expect and m.data != expect["data"]:
            raise self.fail(i, step, f"data {m.data!r} != expected {expect['data']!r}")
        if "tags" in expect and list(m.tags) != list(expect["tags"]):
            raise self.fail(i, step, f"tags {m.tags!r} != expected {expect['tags']!r}")

    op_fetch = op_get

    def op_tail(self, i: int, step: dict) -> None:
        inp = step.get("input") or {}
        expect = step.get("expect") or {}
        with self.client.open_pool(self.pool_name(step)) as pool:
            got = list(pool.tail(since_seq=inp.get("since_seq"), max_messages=inp.get("max"), timeout_ms=2000))
        self.check_messages(i, step, got, expect)

    def op_list_pools(self, i: int, step: dict) -> None:
        names = [p.name for p in self.client.list_pools()]
        want = (step.get("expect") or {}).get("names")
        if want is not None and sorted(names) != sorted(want):
            raise self.fail(i, step, f"pools {names} != expected {want}")

    def op_pool_info(self, i: int, step: dict) -> None:
        info = self.client.pool_info(self.pool_name(step))
        expect = step.get("expect") or {}
        for key in ("file_size", "ring_size"):
            if key in expect and getattr(info, key) != expect[key]:
                raise self.fail(i, step, f"{key} {getattr(info, key)} != expected {expect[key]}")
        if "bounds" in expect:
            b = expect["bounds"]
            got = {"oldest": info.oldest_seq, "newest": info.newest_seq}
            for k in ("oldest", "newest"):
                if k in b and got[k] != b[k]:
                    raise self.fail(i, step, f"bounds {got} != expected {b}")

    def op_delete_pool(self, i: int, step: dict) -> None:
        self.client.delete_pool(self.pool_name(step))

    def op_corrupt_pool_header(self, i: int, step: dict) -> None:
        path = resolve_pool_ref(self.pool_name(step), self.workdir)
        path.write_bytes(b"NOPE")

    def op_chmod_path(self, i: int, step: dict) -> None:
        inp = step.get("input") or {}
        os.chmod(inp["path"], int(inp["mode"], 8))

    def op_spawn_poke(self, i: int, step: dict) -> None:
        msgs = (step.get("input") or {}).get("messages") or []
        procs = []
        for msg in msgs:
            argv = [*self.plasmite_bin, "--dir", str(self.workdir), "feed", self.pool_name(step), json.dumps(msg["data"])]
            for t in msg.get("tags") or []:
                argv += ["--tag", t]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for p in procs:
            _, err = p.communicate(timeout=60)
            if p.returncode != 0:
                raise self.fail(i, step, f"feed exited {p.returncode}: {err.decode(errors='replace')}")

    def op_retention_gap(self, i: int, step: dict) -> None:
        from .errors import RetentionGapError

        base = self.pool_name(step)
        size = (step.get("input") or {}).get("size_bytes", 65536)

        def fill_past(pool, seq: int) -> None:
            # Append until `seq` has been overwritten.
            filler = {"fill": "x" * 200}
            for _ in range(100000):
                pool.append(filler, ["fill"])
                if pool.bounds()[0] > seq:
                    return
            raise self.fail(i, step, "could not wrap the pool")

        with self.client.create_pool(f"{base}-stale", size) as pool:
            first = pool.append({"kind": "first"}, ["keep"])
            fill_past(pool, first.seq)
            nxt = next(pool.tail(since_seq=first.seq, max_messages=1, timeout_ms=500), None)
            if nxt is None or nxt.seq <= first.seq:
                raise self.fail(i, step, "default policy did not continue after the gap")
            try:
                next(pool.tail(since_seq=first.seq, max_messages=1, timeout_ms=500, tags=["keep"], error_on_gap=True), None)
            except RetentionGapError as exc:
                if exc.seq != first.seq:
                    raise self.fail(i, step, f"gap error seq {exc.seq} != first missing {first.seq}") from exc
            else:
                raise self.fail(i, step, "tag filter concealed the retention gap")
            stream = pool.open_stream(since_seq=first.seq, timeout_ms=500, error_on_gap=True)
            try:
                stream.next()
            except RetentionGapError:
                pass
            else:
                raise self.fail(i, step, "fail-closed policy delivered a post-gap message")
            if stream.next() is not None:
                raise self.fail(i, step, "stream continued after RetentionGap")
        with self.client.create_pool(f"{base}-established", size) as pool:
            a = pool.append({"kind": "a"})
            stream = pool.open_stream(since_seq=a.seq, error_on_gap=True, timeout_ms=2000)
            got = stream.next()
            if got is None or got.seq != a.seq:
                raise self.fail(i, step, "established stream did not deliver its first message")
            fill_past(pool, a.seq + 1)
            try:
                stream.next()
            except RetentionGapError as exc:
                if exc.seq != a.seq + 1:
                    raise self.fail(i, step, f"later gap reported seq {exc.seq}, expected {a.seq + 1}") from exc
            else:
                raise self.fail(i, step, "established stream did not detect the later overwrite")


def _default_bin() -> list[str]:
    env = os.environ.get("PLASMITE_BIN")
    if env:
        return [env]
    found = shutil.which("plasmite") or shutil.which("pls")
    if found:
        return [found]
    return [sys.executable, "-m", "plasmite_cli"]


def run_manifest(path: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> int:
    """Run one manifest; returns the number of steps executed."""
    path = Path(path)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    base = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="plasmite-conformance-"))
    return Runner(manifest, base).run()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m plasmite_core.conformance MANIFEST.json [...]", file=sys.stderr)
        return 2
    for a in args:
        try:
            n = run_manifest(a)
        except StepFailure as exc:
            print(f"FAIL {a}: {exc}", file=sys.stderr)
            return 1
        print(f"ok {a}: {n} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

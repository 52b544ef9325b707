"""--max-pool-bytes: remote creates cannot allocate unbounded disk."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytest.importorskip("plasmite_serve")

from plasmite_serve.testing import ServerProcess  # noqa: E402


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_pool_size_limit_is_enforced_and_published(tmp_path):
    with ServerProcess(tmp_path / "pools", "--max-pool-bytes", "2097152") as server:
        status, body = _post(server.url("/v0/pools"), {"pool": "big", "size_bytes": 4 << 20})
        assert status == 400 and body["error"]["kind"] == "Usage" and "--max-pool-bytes" in body["error"]["hint"]
        assert not (tmp_path / "pools" / "big.plasmite").exists()
        status, body = _post(server.url("/v0/pools"), {"pool": "ok", "size_bytes": 2 << 20})
        assert status == 200 and body["pool"]["file_size"] == 2 << 20
        with urllib.request.urlopen(server.url("/openapi.json"), timeout=10) as resp:
            doc = json.loads(resp.read())
        schema = doc["paths"]["/v0/pools"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["size_bytes"]["maximum"] == 2 << 20

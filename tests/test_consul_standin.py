"""The lab's Consul stand-in against a real Consul client library (py-consul), and pushorch's own client.

The stand-in runs here on loopback with ACLs (default deny, one management token) and HTTPS with a
CA made for the test. Each check is a behaviour Consul's HTTP API documentation gives and pushorch
relies on: status codes, ACL refusals, check-and-set, sessions and locks, blocking-query indexes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import consul
import pytest

from pushorch.connection import ConnectionSettings
from pushorch.consul import client as consul_client
from pushorch.consul.settings import agent_for
from pushorch.lab import tlsgen
from pushorch.lab.image import files_dir
from pushorch.secret import Secret
from pushorch.transport.local import LocalTransport

TOKEN = "5f1c9e0a-lab-management-token"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("standin")
    ca, cert, key = tlsgen.ensure_certificates(base / "tls", [])
    http_port, https_port = _port(), _port()
    config = {"acl_token": TOKEN, "http_port": http_port, "https_port": https_port}
    config |= {"cert_file": str(cert), "key_file": str(key), "ca_file": str(ca)}
    (base / "agent.json").write_text(json.dumps(config))
    env = {
        "CONSUL_AGENT_CONFIG": str(base / "agent.json"),
        "CONSUL_CONFIG_DIR": str(base / "consul.d"),
        "CONSUL_PEERS_FILE": str(base / "no-peers"),
        "PATH": "/usr/bin:/bin",
    }
    process = subprocess.Popen([sys.executable, str(Path(files_dir()) / "consul_standin.py")], env=env)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
            socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield {"ca": str(ca), "http": http_port, "https": https_port, "dir": base / "consul.d"}
    process.kill()
    process.wait()


def _client(agent: dict[str, object], token: str | None = TOKEN) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=agent["https"], scheme="https", verify=agent["ca"], token=token)


def test_acl_default_deny(agent: dict[str, object]) -> None:
    anonymous, wrong = _client(agent, None), _client(agent, "not-the-token")
    with pytest.raises(consul.ACLPermissionDenied):
        anonymous.kv.put("a", "1")
    with pytest.raises(consul.ACLPermissionDenied, match="ACL not found"):
        wrong.kv.get("a")
    with pytest.raises(consul.ACLPermissionDenied):
        anonymous.agent.service.maintenance("web-1", True)
    # Anonymous lists are filtered to nothing (not refused), as Consul's ACL filtering does.
    assert anonymous.agent.services() == {}
    assert _client(agent).kv.put("a", "1") is True


def test_tls_is_verified_against_the_ca(agent: dict[str, object]) -> None:
    unverified = consul.Consul(host="127.0.0.1", port=agent["https"], scheme="https", token=TOKEN)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        unverified.kv.get("a")


def test_kv_cas_flags_recurse_keys_delete(agent: dict[str, object]) -> None:
    c = _client(agent)
    assert c.kv.put("app/config/port", "8080", cas=0, flags=42) is True
    assert c.kv.put("app/config/port", "9090", cas=0) is False  # cas=0: only when missing
    index, entry = c.kv.get("app/config/port")
    assert entry["Value"] == b"8080" and entry["Flags"] == 42 and entry["ModifyIndex"] <= int(index)
    assert c.kv.put("app/config/port", "9090", cas=entry["ModifyIndex"] + 1000) is False
    assert c.kv.put("app/config/port", "9090", cas=entry["ModifyIndex"]) is True
    c.kv.put("app/config/host", "db")
    _, entries = c.kv.get("app/", recurse=True)
    assert [e["Key"] for e in entries] == ["app/config/host", "app/config/port"]
    _, keys = c.kv.get("app/", keys=True, separator="/")
    assert keys == ["app/config/"]
    assert c.kv.get("app/missing") == (c.kv.get("app/missing")[0], None)
    _, latest = c.kv.get("app/config/port")
    assert c.kv.delete("app/config/port", cas=latest["ModifyIndex"] - 1) is False
    assert c.kv.delete("app/config/port", cas=latest["ModifyIndex"]) is True
    assert c.kv.get("app/config/port")[1] is None


def test_blocking_query_returns_on_change(agent: dict[str, object]) -> None:
    c = _client(agent)
    c.kv.put("watch/me", "1")
    index, _ = c.kv.get("watch/me")
    threading.Timer(0.5, lambda: _client(agent).kv.put("watch/me", "2")).start()
    # Asked before the change is made: only a query that blocked until it can answer with it.
    new_index, entry = c.kv.get("watch/me", index=index, wait="5s")
    assert int(new_index) > int(index) and entry["Value"] == b"2"
    # Nothing changes: the wait ends with the same index and value (Consul's answer to a timed-out wait).
    same_index, same = c.kv.get("watch/me", index=new_index, wait="1s")
    assert same_index == new_index and same["Value"] == b"2"


def test_sessions_locks_release_and_lock_delay(agent: dict[str, object]) -> None:
    c = _client(agent)
    first = c.session.create(name="pushorch-lock", ttl=10, behavior="release", lock_delay=1)
    second = c.session.create(name="other", ttl=10, lock_delay=1)
    assert c.kv.put("locks/fleet", "owner-1", acquire=first) is True
    assert c.kv.put("locks/fleet", "owner-2", acquire=second) is False
    _, entry = c.kv.get("locks/fleet")
    assert entry["Session"] == first and entry["LockIndex"] == 1
    assert c.kv.put("locks/fleet", "x", release=second) is False  # only the holder releases
    assert c.session.renew(first)["ID"] == first
    c.session.destroy(first)  # behavior=release: the key stays, its lock goes, lock-delay starts
    _, entry = c.kv.get("locks/fleet")
    assert "Session" not in entry and entry["Value"] == b"owner-1"
    assert c.kv.put("locks/fleet", "owner-2", acquire=second) is False  # within the lock-delay
    time.sleep(1.2)
    assert c.kv.put("locks/fleet", "owner-2", acquire=second) is True
    with pytest.raises(consul.NotFound):
        c.session.renew(first)  # a destroyed session: 404
    assert c.kv.put("locks/fleet", "owner-2", release=second) is True


def test_session_ttl_invalidates_and_frees_the_lock(agent: dict[str, object]) -> None:
    c = _client(agent)
    sid = c.session.create(name="dies", ttl=10, lock_delay=0)
    assert c.kv.put("locks/ttl", "held", acquire=sid) is True
    time.sleep(10.5)  # no renewal: Consul invalidates the session (at the TTL or up to twice it)
    assert c.session.info(sid)[1] is None
    assert "Session" not in c.kv.get("locks/ttl")[1]


def test_maintenance_and_health(agent: dict[str, object]) -> None:
    c = _client(agent)
    c.agent.service.register("web", service_id="web-lab-1", port=_port())
    c.agent.service.maintenance("web-lab-1", True, reason="pushorch: web v1 -> v2")
    checks = c.agent.checks()
    assert checks["_service_maintenance:web-lab-1"]["Notes"] == "pushorch: web v1 -> v2"
    assert checks["_service_maintenance:web-lab-1"]["Status"] == "critical"
    _, passing = c.health.service("web", passing=True)
    assert passing == []
    c.agent.service.maintenance("web-lab-1", False)
    assert "_service_maintenance:web-lab-1" not in c.agent.checks()
    c.agent.service.deregister("web-lab-1")


def _transport(agent: dict[str, object], **variables: object) -> LocalTransport:
    settings = ConnectionSettings(name="here", address="127.0.0.1", transport="local")
    return LocalTransport(replace(settings, consul=agent_for(variables)))


def test_pushorch_client_over_tls_with_the_token(agent: dict[str, object]) -> None:
    addr = f"https://127.0.0.1:{agent['https']}"
    good = _transport(agent, consul_http_addr=addr, consul_cacert=agent["ca"], consul_http_token=Secret(TOKEN))

    async def scenario() -> None:
        assert await consul_client.kv_put(good, "pushorch/test", b"v1", cas=0, flags=7) is True
        entry = await consul_client.kv_get(good, "pushorch/test")
        assert entry is not None and entry.value == b"v1" and entry.flags == 7
        assert await consul_client.kv_put(good, "pushorch/test", b"v2", cas=entry.modify_index) is True
        session = await consul_client.session_create(good, "pushorch-test", 10)
        assert await consul_client.kv_acquire(good, "pushorch/lock", b"me", session) is True
        assert await consul_client.session_renew(good, session) is True
        await consul_client.session_destroy(good, session)
        assert await consul_client.session_renew(good, session) is False
        await consul_client.reload(good, binary=False, become=None)
        with pytest.raises(consul_client.ConsulError, match="HTTP 400: Invalid Session TTL"):
            await consul_client.session_create(good, "too-short", 5)  # Consul's bounds: 10s to 24h

    asyncio.run(scenario())


def test_pushorch_client_refused_token_is_a_clear_error(agent: dict[str, object]) -> None:
    addr = f"https://127.0.0.1:{agent['https']}"
    wrong = _transport(agent, consul_http_addr=addr, consul_cacert=agent["ca"], consul_http_token="wrong-token-123")
    with pytest.raises(
        consul_client.ConsulRefused, match=r"Consul refused the token on here \(HTTP 403: ACL not found\)"
    ):
        asyncio.run(consul_client.reload(wrong, binary=False, become=None))
    plain = _transport(agent, consul_http_addr=f"127.0.0.1:{agent['https']}", consul_http_token=Secret(TOKEN))
    with pytest.raises(consul_client.ConsulError, match="did not answer"):
        asyncio.run(consul_client.reload(plain, binary=False, become=None))  # http to an https port


def test_the_cli_shim_validates_a_whole_agent_configuration_as_consul_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """command/validate/validate.go builds the files given as one agent configuration
    (config.NewBuilder + BuildAndValidate): a directory of service definitions alone has no data_dir."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    shim = [sys.executable, str(ROOT / "pushorch" / "lab" / "files" / "consul"), "validate"]
    services = tmp_path / "consul.d"
    services.mkdir()
    (services / "pushorch-web.json").write_text('{"service": {"name": "web", "port": 80}}')
    refused = subprocess.run([*shim, str(services)], capture_output=True, text=True)
    assert refused.returncode == 1 and "Config validation failed: data_dir cannot be empty" in refused.stderr
    (tmp_path / "agent.json").write_text('{"data_dir": "/opt/consul"}')
    accepted = subprocess.run([*shim, str(tmp_path / "agent.json"), str(services)], capture_output=True, text=True)
    assert accepted.returncode == 0 and "Configuration is valid!" in accepted.stdout


def test_a_reload_the_agent_cannot_build_changes_nothing(agent: dict[str, object]) -> None:
    """agent/agent.go ReloadConfig builds the new configuration before applying any of it, and
    agent_endpoint.go AgentReload returns its error (HTTP 500): the services loaded before stay."""
    c = _client(agent)
    directory = agent["dir"]
    assert isinstance(directory, Path)
    (directory / "good.json").write_text('{"service": {"name": "kept", "port": 81}}')
    c.agent.reload()
    assert "kept" in c.agent.services()
    (directory / "bad.json").write_text("{")
    (directory / "good.json").write_text('{"service": {"name": "replacement", "port": 82}}')
    with pytest.raises(consul.ConsulException, match="500"):
        c.agent.reload()
    assert "kept" in c.agent.services() and "replacement" not in c.agent.services()
    (directory / "bad.json").unlink()
    (directory / "good.json").unlink()
    c.agent.reload()

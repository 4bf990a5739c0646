"""The lab on real components: containers with sshd and their own dockerd, a registry, the Consul stand-in.

These tests bring up a lab of their own (beside any other lab on the machine) and tear it down at the end.
Without a Docker daemon they fail: .ci/run starts dockerd.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushorch.ansible.load_inventory import load_inventory
from pushorch.connection import settings_for
from pushorch.fanout import run_everywhere
from pushorch.lab.cluster import Lab
from pushorch.transport import open_transport
from tests.conftest import start_lab

pytestmark = pytest.mark.lab


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path]]:
    # A lab of this module's own, taken down by its last test (test_lab_apply.py then starts a fresh one).
    the_lab, inventory = start_lab(tmp_path_factory)
    yield the_lab, inventory
    the_lab.down(lambda _: None)


def _settings(inventory: Path, pattern: str = "all"):  # type: ignore[no-untyped-def]
    from pushorch.ansible.patterns import select

    inv = load_inventory([str(inventory)])
    return [settings_for(h, inv.host_vars(h)) for h in select(inv, pattern)]


def _exec(inventory: Path, pattern: str, argv: list[str]) -> dict[str, tuple[str, int, str]]:
    outcomes = asyncio.run(run_everywhere(_settings(inventory, pattern), argv))
    return {
        o.host: (o.status, o.result.exit_status if o.result else -1, o.result.stdout if o.result else o.error or "")
        for o in outcomes
    }


def test_every_host_is_reachable_with_verified_host_keys(lab: tuple[Lab, Path]) -> None:
    _, inventory = lab
    hosts = _settings(inventory)
    assert sorted(h.name for h in hosts) == ["bare-1", "lab-1", "lab-2", "lab-3"]
    assert all(h.host_key_checking == "strict" and h.known_hosts for h in hosts)
    result = _exec(inventory, "all", ["hostname"])
    assert {h: (s, out.strip()) for h, (s, _, out) in result.items()} == {
        h: ("ok", h) for h in ("bare-1", "lab-1", "lab-2", "lab-3")
    }


def test_docker_hosts_run_docker_and_bare_host_has_none(lab: tuple[Lab, Path]) -> None:
    _, inventory = lab
    result = _exec(inventory, "all", ["sh", "-c", "command -v docker && docker info --format '{{.ServerVersion}}'"])
    assert result["bare-1"][1] != 0  # no docker binary at all
    for host in ("lab-1", "lab-2", "lab-3"):
        status, code, out = result[host]
        assert (status, code) == ("ok", 0) and out.splitlines()[-1].strip()


def test_every_docker_host_pulls_from_the_lab_registry(lab: tuple[Lab, Path]) -> None:
    _, inventory = lab
    registry = load_inventory([str(inventory)]).host_vars("lab-1")["lab_registry"]
    image = f"{registry}/pushorch/demo-app:v1"
    result = _exec(
        inventory,
        "docker",
        ["sh", "-c", f"docker pull -q {image} >/dev/null && docker image inspect {image} --format '{{{{.Id}}}}'"],
    )
    ids = {out.strip() for status, _, out in result.values() if status == "ok"}
    assert len(result) == 3 and len(ids) == 1 and next(iter(ids)).startswith("sha256:")


def test_consul_standin_answers_through_the_ssh_connection(lab: tuple[Lab, Path]) -> None:
    _, inventory = lab
    settings = next(s for s in _settings(inventory) if s.name == "lab-2")

    async def http(transport, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
        stream = await transport.open_tcp("127.0.0.1", 8500)
        await stream.write(f"{method} {path} HTTP/1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        data = b""
        while chunk := await stream.read(65536):
            data += chunk
        await stream.close()
        head, _, payload = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), payload

    async def go() -> None:
        transport = open_transport(settings)
        await transport.connect()
        try:
            code, payload = await http(transport, "GET", "/v1/agent/self")
            assert code == 200 and json.loads(payload)["Config"]["NodeName"] == "lab-2"
            service = {"Name": "probe", "ID": "probe-1", "Port": 9, "Tags": ["t"]}
            code, _ = await http(transport, "PUT", "/v1/agent/service/register", json.dumps(service).encode())
            assert code == 200
            code, payload = await http(transport, "GET", "/v1/agent/services")
            assert json.loads(payload)["probe-1"]["Service"] == "probe"
            # The CLI shim reloads the config dir, as `consul reload` does.
            await transport.put(b'{"service": {"name": "from-file", "port": 81}}', "/etc/consul.d/from-file.json")
            assert (await transport.run(["consul", "reload"])).ok
            code, payload = await http(transport, "GET", "/v1/agent/services")
            assert {"probe-1", "from-file"} <= set(json.loads(payload))
        finally:
            await transport.close()

    asyncio.run(go())


def test_up_again_changes_nothing(lab: tuple[Lab, Path]) -> None:
    the_lab, inventory = lab
    fields = "{{.ID}} {{.Created}} {{.State.StartedAt}}"
    mine = f"label=pushorch.lab.dir={the_lab.dir}"
    names = _docker("ps", "-q", "--filter", mine).split()
    before = {n: _docker("inspect", "--format", fields, n) for n in names}
    known_hosts = (inventory.parent / "known_hosts").read_text()
    the_lab.up(3, 1, lambda _: None)
    after = {n: _docker("inspect", "--format", fields, n) for n in _docker("ps", "-q", "--filter", mine).split()}
    assert after == before  # same containers, not restarted
    assert (inventory.parent / "known_hosts").read_text() == known_hosts


def test_two_labs_run_side_by_side(lab: tuple[Lab, Path], tmp_path: Path) -> None:
    the_lab, inventory = lab
    other = Lab(tmp_path / "other")
    other_inventory = other.up(1, 0, lambda _: None)
    try:
        assert other.prefix != the_lab.prefix and other.network != the_lab.network
        ours = load_inventory([str(inventory)]).host_vars("lab-1")["ansible_host"]
        theirs = load_inventory([str(other_inventory)]).host_vars("lab-1")["ansible_host"]
        assert ours.rsplit(".", 1)[0] != theirs.rsplit(".", 1)[0]  # a /24 each
        assert _exec(other_inventory, "all", ["hostname"]) == {"lab-1": ("ok", 0, "lab-1\n")}
    finally:
        other.down(lambda _: None)
    assert {r["host"]: r["health"] for r in the_lab.status()}["lab-1"] == "ok"  # untouched by the other's down
    assert _exec(inventory, "lab-1", ["hostname"]) == {"lab-1": ("ok", 0, "lab-1\n")}


def test_status_lists_every_host_healthy(lab: tuple[Lab, Path]) -> None:
    the_lab, _ = lab
    rows = {r["host"]: r for r in the_lab.status()}
    assert {h: rows[h]["health"] for h in ("lab-1", "lab-2", "lab-3")} == {h: "ok" for h in ("lab-1", "lab-2", "lab-3")}
    assert rows["bare-1"]["health"] == "ok (bare: no docker)"


def test_zz_down_leaves_nothing_behind(lab: tuple[Lab, Path]) -> None:
    the_lab, inventory = lab
    the_lab.down(lambda _: None)
    mine = f"label=pushorch.lab.dir={the_lab.dir}"
    assert _docker("ps", "-aq", "--filter", mine).split() == []
    assert _docker("network", "ls", "-q", "--filter", mine).split() == []
    assert [v for v in _docker("volume", "ls", "-q").split() if v.startswith(the_lab.prefix)] == []
    assert not inventory.exists() and not (inventory.parent / "id_ed25519").exists()

"""observe -> plan -> apply on the lab: assertions on what the hosts run, not on what was printed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from pathlib import Path

import pytest

from pushorch.ansible.load_inventory import load_inventory
from pushorch.connection import settings_for
from pushorch.fanout import run_everywhere
from pushorch.lab.cluster import Lab
from pushorch.transport import open_transport
from tests.conftest import FIXTURES, ROOT

pytestmark = pytest.mark.lab
PLAYBOOKS = FIXTURES / "playbooks"
DOCKER_HOSTS = ("lab-1", "lab-2", "lab-3")


def _hosts(inventory: Path, pattern: str = "docker") -> list:  # type: ignore[type-arg]
    from pushorch.ansible.patterns import select

    inv = load_inventory([str(inventory)])
    return [settings_for(h, inv.host_vars(h)) for h in select(inv, pattern)]


def _sh(inventory: Path, script: str, pattern: str = "docker") -> dict[str, str]:
    outcomes = asyncio.run(run_everywhere(_hosts(inventory, pattern), ["sh", "-c", script]))
    assert all(o.result is not None for o in outcomes), [o.error for o in outcomes]
    return {o.host: o.result.stdout for o in outcomes if o.result}


def _containers(inventory: Path) -> dict[str, dict[str, str]]:
    """host -> {container name: id} of the containers pushorch manages."""
    out = _sh(inventory, "docker ps -a --filter label=pushorch.service --format '{{.Names}} {{.ID}} {{.State}}'")
    return {h: {line.split()[0]: " ".join(line.split()[1:]) for line in text.splitlines()} for h, text in out.items()}


def _http_through_ssh(inventory: Path, host: str, port: int, path: str) -> tuple[int, bytes]:
    settings = next(s for s in _hosts(inventory, "all") if s.name == host)

    async def go() -> tuple[int, bytes]:
        transport = open_transport(settings)
        await transport.connect()
        try:
            stream = await transport.open_tcp("127.0.0.1", port)
            await stream.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            data = b""
            while chunk := await stream.read(65536):
                data += chunk
            await stream.close()
        finally:
            await transport.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    return asyncio.run(go())


def _apply(run_cli, inventory: Path, *args: str):  # type: ignore[no-untyped-def]
    result = run_cli("apply", "-i", str(inventory), "--json", *args)
    lines = [json.loads(line) for line in result.out.splitlines() if line.strip()]
    changes = [r for r in lines if "status" in r]
    summary = next((r for r in lines if "summary" in r), {})
    return result.status, changes, summary


def test_examples_converge_on_three_hosts(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    examples = [str(ROOT / "playbooks" / "seed-nginx.yml"), str(ROOT / "playbooks" / "demo-app.yml")]
    status, changes, _ = _apply(run_cli, inventory, *examples)
    assert status == 0, changes
    for host in DOCKER_HOSTS:
        assert _http_through_ssh(inventory, host, 80, "/health") == (200, b"ok\n")
        assert _http_through_ssh(inventory, host, 8080, "/version") == (200, b"v1\n")
        code, body = _http_through_ssh(inventory, host, 8500, "/v1/agent/services")
        services = json.loads(body)
        assert code == 200 and {s["Service"] for s in services.values()} == {"nginx-service", "demo-app"}
        nginx = services[f"nginx-{host}"]
        assert (nginx["Tags"], nginx["Port"], nginx["Meta"]["pushorch_version"]) == (["web"], 80, "1.14.2")
    files = _sh(inventory, "stat -c '%a %n' /etc/consul.d/pushorch-*.json")
    assert all(
        out.split() == ["640", "/etc/consul.d/pushorch-demo-app.json", "640", "/etc/consul.d/pushorch-nginx.json"]
        for out in files.values()
    )
    # and the second apply changes nothing: same containers, same files, plan exits 0
    before = _containers(inventory)
    mtimes = _sh(inventory, "stat -c '%Y %n' /etc/demo-app/app.conf /etc/consul.d/*.json")
    status, changes, summary = _apply(run_cli, inventory, *examples)
    assert status == 0 and changes == [] and {r["changed"] for r in summary["summary"]} == {0}
    assert _containers(inventory) == before
    assert _sh(inventory, "stat -c '%Y %n' /etc/demo-app/app.conf /etc/consul.d/*.json") == mtimes
    assert run_cli("plan", "-i", str(inventory), "--detailed-exitcode", *examples).status == 0


def test_each_change_is_named_and_replaces_only_its_containers(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    playbook = str(PLAYBOOKS / "converge.yml")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    cases = [
        (["-e", "app_version=v2"], "replace app", "image changed", "app"),
        (["-e", "app_version=v2", "-e", "greeting=bonjour"], "replace app", "env changed (GREETING)", "app"),
        (
            ["-e", "app_version=v2", "-e", "greeting=bonjour", "-e", "app_port=8091"],
            "replace app",
            "ports changed",
            "app",
        ),
        (
            ["-e", "app_version=v2", "-e", "greeting=bonjour", "-e", "app_port=8091", "-e", "message=second"],
            "write /etc/converge-test/app.conf",
            "content changed",
            None,
        ),
    ]
    for extra, line, reason, replaced in cases:
        plan = run_cli("plan", "-i", str(inventory), "--detailed-exitcode", *extra, playbook)
        assert plan.status == 8, plan.err
        changed_lines = [x for x in plan.out.splitlines() if x.startswith("  ")]
        assert all(reason in x for x in changed_lines if line in x) and any(line in x for x in changed_lines)
        before = _containers(inventory)
        assert _apply(run_cli, inventory, *extra, playbook)[0] == 0
        after = _containers(inventory)
        for host in DOCKER_HOSTS:
            kept = {n for n in before[host] if n in after[host] and before[host][n] == after[host][n]}
            gone = set(before[host]) - kept
            assert {n.rsplit("-", 1)[0] for n in gone} == ({replaced} if replaced else set())
        assert run_cli("plan", "-i", str(inventory), "--detailed-exitcode", *extra, playbook).status == 0
    assert _sh(inventory, "cat /etc/converge-test/app.conf") == {h: "message = second\n" for h in DOCKER_HOSTS}
    assert {h: _http_through_ssh(inventory, h, 8091, "/version")[1] for h in DOCKER_HOSTS} == {
        h: b"v2\n" for h in DOCKER_HOSTS
    }


def test_drift_is_shown_and_restored(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    playbook = str(PLAYBOOKS / "converge.yml")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    _sh(inventory, "docker rm -f $(docker ps -q --filter label=pushorch.service=web)", "lab-2")
    _sh(inventory, "docker stop $(docker ps -q --filter label=pushorch.service=web)", "lab-3")
    plan = run_cli("plan", "-i", str(inventory), playbook)
    assert "    lab-2: + start web 1.14.2 as" in plan.out and "(not running)" in plan.out
    assert "lab-3:\n  ~ restart web" in plan.out and "exited (drift)" in plan.out
    assert "lab-1:" not in plan.out
    assert _apply(run_cli, inventory, playbook)[0] == 0
    states = _containers(inventory)
    for host in DOCKER_HOSTS:
        running = [n.rsplit("-", 1)[0] for n, v in states[host].items() if v.split()[1] == "running"]
        assert sorted(n for n in running if n in ("web", "app")) == ["app", "web"]


def test_bare_host_gets_docker_then_runs_the_service(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    assert _sh(inventory, "command -v docker || echo none", "bare") == {"bare-1": "none\n"}
    status, changes, summary = _apply(run_cli, inventory, str(PLAYBOOKS / "bare.yml"))
    assert status == 0, changes
    done = [c["action"]["action"] for c in changes if c["status"] == "changed"]
    assert done == ["InstallDocker", "StartDocker", "PullImage", "ReplaceContainer"]
    assert summary["passes"] == 2  # engine first, containers once the probe can see Docker
    assert _http_through_ssh(inventory, "bare-1", 8080, "/health") == (200, b"ok\n")


def test_bad_input_exits_3_without_connecting(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    accepted: list[object] = []
    server = socket.create_server(("127.0.1.9", 0))
    port = server.getsockname()[1]

    def record() -> None:
        with contextlib.suppress(OSError):  # closed at the end of the test: nothing connected
            accepted.append(server.accept())

    threading.Thread(target=record, daemon=True).start()
    (tmp_path / "inv.ini").write_text(f"[web]\nw1 ansible_host=127.0.1.9 ansible_port={port}\n")
    (tmp_path / "p.yml").write_text("- hosts: web\n  services: [{name: a, image: x, replica: 2}]\n")
    try:
        for command in ("plan", "apply"):
            result = run_cli(command, "-i", str(tmp_path / "inv.ini"), str(tmp_path / "p.yml"))
            assert result.status == 3 and "unknown key (did you mean 'replicas'?)" in result.err
        assert accepted == []
    finally:
        server.close()


def test_host_without_sudo_fails_alone(lab_inventory, sshd, become_users, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    extra = tmp_path / "nosudo.yml"
    extra.write_text(
        "nosudo_group:\n  hosts:\n    nosudo:\n"
        f"      ansible_host: {sshd.addresses[3]}\n      ansible_port: {sshd.port}\n"
        "      ansible_user: pushorch-nosudo\n      ansible_become: true\n"
        f"      ansible_ssh_private_key_file: {sshd.client_key}\n      pushorch_known_hosts: {sshd.known_hosts}\n"
    )
    result = run_cli("apply", "-i", str(inventory), "-i", str(extra), str(PLAYBOOKS / "files.yml"))
    assert result.status == 5
    assert "nosudo | FAILED | probe => nosudo: become: sudo needs a password for pushorch-nosudo" in result.out
    assert _sh(inventory, "stat -c %F /tmp/pushorch-files-test", "all:!nosudo_group") == {
        h: "directory\n" for h in (*DOCKER_HOSTS, "bare-1")
    }


def test_secrets_and_a_shipped_image(lab_inventory: tuple[Lab, Path], run_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    lab, inventory = lab_inventory
    monkeypatch.setenv("PUSHORCH_TEST_TOKEN", "env-s3cret-value")
    port = json.loads(lab.state_file.read_text())["registry_port"]
    local = f"127.0.0.1:{port}/pushorch/demo-app:v2"  # on the controller's dockerd only: shipped, not pulled
    playbook = str(PLAYBOOKS / "secrets.yml")
    # the host cannot resolve that name; only shipping gets the image there
    _sh(inventory, "docker image rm -f " + local + " >/dev/null 2>&1; true", "lab-1")
    outputs = []
    commands = (
        ["plan", "--json"],
        ["apply", "--json", "--diff"],
        ["apply", "--diff"],
        ["status", "--json"],
        ["status"],
    )
    for command in commands:
        result = run_cli("-vvv", command[0], "-i", str(inventory), "-e", f"local_image={local}", *command[1:], playbook)
        assert result.status == 0, result.out + result.err
        outputs.append(result.out + result.err)
    for secret in ("s3cr3t-t0ken-value", "env-s3cret-value", "f1le-s3cret-value"):
        assert all(secret not in text for text in outputs), secret
    assert "(content holds secrets: diff masked)" in outputs[1]
    facts = _sh(
        inventory,
        "stat -c '%a' /etc/secret-test.conf /etc/pushorch/env/shipped-*.env; cat /etc/secret-test.conf;"
        " docker exec $(docker ps -q --filter label=pushorch.service=shipped) sh -c 'echo $TOKEN $PLAIN';"
        " docker exec $(docker ps -q --filter label=pushorch.service=shipped) sh -c 'echo $ENV_TOKEN $FILE_TOKEN';"
        " ps -eo args | grep -c '[s]3cr3t-t0ken' || true",
        "lab-1",
    )["lab-1"].split()
    assert facts == [
        "600",
        "600",
        "token=s3cr3t-t0ken-value",
        "s3cr3t-t0ken-value",
        "visible",
        "env-s3cret-value",
        "f1le-s3cret-value",
        "0",  # no process on the host has the secret on its command line
    ]
    assert _http_through_ssh(inventory, "lab-1", 8095, "/version") == (200, b"v2\n")


def test_diff_shows_the_file_change(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    playbook = str(PLAYBOOKS / "converge.yml")
    base = ["-e", "app_version=v2", "-e", "greeting=bonjour", "-e", "app_port=8091"]
    assert _apply(run_cli, inventory, *base, "-e", "message=second", playbook)[0] == 0
    result = run_cli(
        "apply", "-i", str(inventory), "--check", "--diff", *base, "-e", "message=third", "-l", "lab-2", playbook
    )
    assert result.status == 0
    assert "-message = second\n+message = third\n" in result.out
    assert _sh(inventory, "cat /etc/converge-test/app.conf", "lab-2") == {
        "lab-2": "message = second\n"
    }  # --check changed nothing


def test_consul_reload_through_the_agent_api_without_a_binary(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    _sh(inventory, "rm -f /usr/local/bin/consul", "lab-3")
    playbook = str(PLAYBOOKS / "converge.yml")
    base = ["-e", "app_version=v2", "-e", "greeting=bonjour", "-e", "app_port=8091", "-e", "message=second"]
    status, changes, _ = _apply(run_cli, inventory, *base, "-e", "app_version=v1", "-l", "lab-3", playbook)
    assert status == 0
    replaced = [
        c["action"] for c in changes if c["status"] == "changed" and c["action"]["action"] == "ReplaceContainer"
    ]
    assert ("lab-3", "app") in [(r["host"], r["service"]) for r in replaced]
    assert {r["consul_reload"] for r in replaced} == {"api"}
    _, body = _http_through_ssh(inventory, "lab-3", 8500, "/v1/agent/services")
    assert json.loads(body)["app-lab-3"]["Meta"]["pushorch_version"] == "v1"


def test_status_reports_version_state_health_consul_and_drift(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    examples = [str(ROOT / "playbooks" / "seed-nginx.yml"), str(ROOT / "playbooks" / "demo-app.yml")]
    assert _apply(run_cli, inventory, *examples)[0] == 0
    _sh(inventory, "docker stop $(docker ps -q --filter label=pushorch.service=demo-app)", "lab-2")
    result = run_cli("status", "-i", str(inventory), "--json", *examples)
    assert result.status == 0, result.err
    rows = {(r["service"], r["host"]): r for r in json.loads(result.out)["services"]}
    assert rows[("demo-app", "lab-2")] == {
        "service": "demo-app", "host": "lab-2", "version": "v1", "state": "exited", "health": "-",
        "consul": "registered", "drift": "restart: exited (drift)",
    }  # fmt: skip
    others = [r for key, r in rows.items() if key != ("demo-app", "lab-2")]
    assert len(others) == 5
    assert {(r["state"], r["health"], r["consul"], r["drift"]) for r in others} == {
        ("running", "healthy", "registered", "in sync")
    }
    assert _apply(run_cli, inventory, *examples)[0] == 0


def test_apply_check_json_prints_only_json_lines(lab_inventory: tuple[Lab, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 27 item 10 (read in the code): `apply --check --json` printed the text plan after its JSON
    lines, so a script's JSON parser failed on the first plan line."""
    _, inventory = lab_inventory
    playbook = str(PLAYBOOKS / "converge.yml")
    base = ["-e", "app_version=v2", "-e", "greeting=bonjour", "-e", "app_port=8091", "-e", "message=fourth"]
    result = run_cli("apply", "-i", str(inventory), "--check", "--json", *base, "-l", "lab-2", playbook)
    assert result.status == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines()]  # every line is JSON
    plan = next(line["plan"] for line in lines if "plan" in line)
    steps = plan["actions"] + [s for r in plan["rollouts"] for b in r["batches"] for s in b]
    assert steps and {s["host"] for s in steps} == {"lab-2"}, plan
    assert _sh(inventory, "cat /etc/converge-test/app.conf", "lab-2")["lab-2"] != "message = fourth\n"

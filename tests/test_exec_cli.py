"""`pushorch exec` end to end against real sshd hosts: output, JSON lines, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.sshd import Sshd, free_port


def _inventory(sshd: Sshd, tmp_path: Path, dead: bool = False) -> str:
    extra = ""
    if dead:
        extra = f"  children:\n    gone:\n      hosts:\n        dead: {{ansible_host: 127.0.1.1, ansible_port: {free_port()}}}\n"
    return str(sshd.inventory(tmp_path / "inv.yml", extra=extra))


def test_exec_all_ok(sshd: Sshd, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("exec", "-i", _inventory(sshd, tmp_path), "all", "--", "sh", "-c", "echo $SSH_CONNECTION")
    assert result.status == 0, result.err
    blocks = {line.split(" | ")[0] for line in result.out.splitlines() if " | OK | rc=0 >>" in line}
    assert blocks == {"h001", "h002", "h003", "h004"}
    # each block's output names the address the host answered on
    for index, address in enumerate(sshd.addresses, start=1):
        assert f"h{index:03d} | OK | rc=0 >>\n127.0.0.1 " in result.out and f" {address} {sshd.port}\n" in result.out
    assert result.err.strip().endswith("recap: 4 hosts  ok=4  failed=0  unreachable=0")


def test_exec_failed_command_exits_5_and_json_lines(sshd: Sshd, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    inventory = _inventory(sshd, tmp_path)
    result = run_cli("exec", "-i", inventory, "--json", "-l", "h00[1:2]", "all", "echo out; echo err >&2; exit 3")
    assert result.status == 5
    records = [json.loads(line) for line in result.out.splitlines()]
    assert sorted(r["host"] for r in records) == ["h001", "h002"]
    assert {(r["status"], r["rc"], r["stdout"], r["stderr"]) for r in records} == {("failed", 3, "out\n", "err\n")}


def test_exec_unreachable_host_exits_4_and_does_not_stop_others(sshd: Sshd, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    inventory = _inventory(sshd, tmp_path, dead=True)
    result = run_cli("exec", "-i", inventory, "--json", "--transport", "paramiko", "all", "--", "true")
    assert result.status == 4
    statuses = {r["host"]: r["status"] for r in map(json.loads, result.out.splitlines())}
    assert statuses == {"h001": "ok", "h002": "ok", "h003": "ok", "h004": "ok", "dead": "unreachable"}


def test_exec_bad_inventory_exits_3_without_connecting(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "inv.ini").write_text("[web]\nw1 ansible_host=127.0.1.1 ansible_port=notaport\n")
    result = run_cli("exec", "-i", str(tmp_path / "inv.ini"), "all", "--", "true")
    assert result.status == 3
    assert "inv.ini: ansible_port: 'notaport' is not a whole number (host w1)" in result.err


def test_exec_limit_from_file_and_bad_regex(sshd: Sshd, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    inventory = _inventory(sshd, tmp_path)
    (tmp_path / "limit.txt").write_text("h002\nh004\n")
    result = run_cli("exec", "-i", inventory, "--json", "-l", f"@{tmp_path / 'limit.txt'}", "all", "--", "true")
    assert result.status == 0 and sorted(json.loads(line)["host"] for line in result.out.splitlines()) == [
        "h002",
        "h004",
    ]
    result = run_cli("exec", "-i", inventory, "~h[", "--", "true")
    assert result.status == 3 and result.err.startswith("pattern: '~h[': ")


def test_exec_warns_on_every_run_without_host_key_checking(sshd: Sshd, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    inventory = _inventory(sshd, tmp_path)
    for _ in range(2):
        result = run_cli("exec", "-i", inventory, "--host-key-checking", "off", "-l", "h001", "all", "--", "true")
        assert result.status == 0
        assert "warning: host keys are NOT verified for h001 (host_key_checking: off)" in result.err


def test_doctor_tells_sudo_rights_apart(sshd: Sshd, become_users: dict[str, bool], tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 26: become checked as the run would use it — passwordless sudo, sudo that asks for a
    password (given, or not), no sudo rights."""
    from tests.conftest import SUDO_USER_PASSWORD

    def host(name: str, user: str, address: str, more: str = "") -> str:
        return (
            f"    {name}:\n      ansible_host: {address}\n      ansible_port: {sshd.port}\n      ansible_user: {user}\n"
            f"      ansible_become: true\n      ansible_ssh_private_key_file: {sshd.client_key}\n"
            f"      pushorch_known_hosts: {sshd.known_hosts}\n{more}"
        )

    inventory = tmp_path / "become.yml"
    inventory.write_text(
        "all:\n  hosts:\n"
        + host("sudo", "pushorch-sudo", sshd.addresses[0])
        + host("nosudo", "pushorch-nosudo", sshd.addresses[1])
        + host("asks", "pushorch-pwsudo", sshd.addresses[2])
        + host("given", "pushorch-pwsudo", sshd.addresses[3], f"      ansible_become_password: {SUDO_USER_PASSWORD}\n")
    )
    result = run_cli("doctor", "-i", str(inventory), "--json")
    assert result.out.startswith("{"), result.err
    become = {h["host"]: h["checks"]["become"] for h in json.loads(result.out)["hosts"]}
    assert become["sudo"] == {"status": "ok", "detail": "sudo without a password"}
    assert become["given"] == {"status": "ok", "detail": "sudo asks for a password (given)"}
    assert become["asks"]["status"] == become["nosudo"]["status"] == "fail"
    assert "give ansible_become_password" in become["asks"]["detail"]
    assert result.status == 5

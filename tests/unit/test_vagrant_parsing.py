"""Pure parts of the Vagrant inventory source: machine-readable status and ssh-config."""

from __future__ import annotations

from pathlib import Path

from pushorch.vagrant import host_vars, parse_ssh_config, running_machines


def test_running_machines() -> None:
    status = (
        "1700000000,lab-1,provider-name,docker\n1700000000,lab-1,state,running\n"
        "1700000000,lab-2,state,stopped\n1700000000,lab-3,state,running\n"
    )
    assert running_machines(status) == ["lab-1", "lab-3"]


def test_ssh_config_first_value_wins_and_includes_are_read(tmp_path: Path) -> None:
    (tmp_path / "inc").write_text(f"UserKnownHostsFile {tmp_path}/kh\nStrictHostKeyChecking yes\n")
    text = (
        f"Host lab-1\n  Include {tmp_path}/inc\n  HostName 127.0.0.1\n  User root\n  Port 2221\n"
        "  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  IdentityFile /k\n"
        "Host lab-2\n  HostName 127.0.0.1\n  Port 2222\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n"
    )
    blocks = parse_ssh_config(text)
    assert host_vars(blocks["lab-1"]) == {
        "ansible_host": "127.0.0.1",
        "ansible_port": 2221,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": "/k",
        "host_key_checking": "strict",
        "pushorch_known_hosts": f"{tmp_path}/kh",
    }
    assert host_vars(blocks["lab-2"])["host_key_checking"] == "off"

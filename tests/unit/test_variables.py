"""Every variable pushorch reads accepts what Ansible users write there, from every source (-e, INI, YAML,
JSON), converted once; garbage is exit 3 naming the variable and where it was set, before any connection."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from pushorch.connection import settings_for
from pushorch.load.playbooks import load_spec
from pushorch.variables import KINDS, typed

# name -> (value as typed on the command line or in an INI file, what pushorch makes of it, garbage or None)
TABLE: dict[str, tuple[str, Any, Any]] = {
    "ansible_host": ("10.0.0.5", "10.0.0.5", None),
    "ansible_ssh_host": ("10.0.0.6", "10.0.0.6", None),
    "ansible_port": ("2222", 2222, "ssh"),
    "ansible_ssh_port": ("2223", 2223, "70000"),
    "ansible_user": ("deploy", "deploy", None),
    "ansible_ssh_user": ("deploy2", "deploy2", None),
    "ansible_password": ("pw-1234", "pw-1234", None),
    "ansible_ssh_pass": ("pw-5678", "pw-5678", None),
    "ansible_ssh_private_key_file": ("/k/id", "/k/id", None),
    "ansible_ssh_common_args": ("-o ServerAliveInterval=9", "-o ServerAliveInterval=9", None),
    "ansible_ssh_extra_args": ("-o ConnectTimeout=4", "-o ConnectTimeout=4", None),
    "ansible_connection": ("ssh", "ssh", None),
    "ansible_timeout": ("30", 30.0, "soon"),
    "ansible_become": ("yes", True, "maybe"),
    "ansible_become_method": ("sudo", "sudo", None),
    "ansible_become_user": ("app", "app", None),
    "ansible_become_password": ("bpw-1234", "bpw-1234", None),
    "ansible_become_pass": ("bpw-5678", "bpw-5678", None),
    "ansible_sudo_pass": ("bpw-9999", "bpw-9999", None),
    "host_key_checking": ("False", "off", "sometimes"),
    "pushorch_host_key_checking": ("accept-new", "accept-new", "lax"),
    "pushorch_transport": ("paramiko", "paramiko", "telnet"),
    "pushorch_known_hosts": ("/k/known", "/k/known", None),
    "pushorch_ssh_config": ("/k/config", "/k/config", None),
    "pushorch_proxy_jump": ("bastion", "bastion", None),
    "pushorch_command_timeout": ("30", 30.0, "soon"),
    "pushorch_keepalive": ("5s", 5.0, "often"),
    "pushorch_lock_host": ("a", "a", None),
    "pushorch_lock_backend": ("consul", "consul", "etcd"),
    "pushorch_lock_ttl": ("2m", 120, "forever"),
    "pushorch_lock_name": ("deploys", "deploys", None),
    "consul_http_addr": ("https://127.0.0.1:8501", "https://127.0.0.1:8501", None),
    "consul_http_token": ("tok-1234", "tok-1234", None),
    "consul_http_token_file": ("/etc/consul.token", "/etc/consul.token", None),
    "consul_cacert": ("/k/ca.pem", "/k/ca.pem", None),
    "consul_client_cert": ("/k/c.pem", "/k/c.pem", None),
    "consul_client_key": ("/k/k.pem", "/k/k.pem", None),
    "consul_tls_server_name": ("consul.local", "consul.local", None),
    "consul_http_ssl_verify": ("no", False, "perhaps"),
}

# The same values as a YAML or JSON user writes them (typed where the format has a type).
TYPED = {"ansible_port": 2222, "ansible_ssh_port": 2223, "ansible_timeout": 30, "ansible_become": True,
         "host_key_checking": False, "pushorch_command_timeout": 30, "pushorch_lock_ttl": 120,
         "consul_http_ssl_verify": False}  # fmt: skip

PLAYBOOK = "- hosts: all\n  tasks:\n    - command: 'true'\n"


def test_the_table_covers_every_variable_pushorch_reads() -> None:
    assert set(TABLE) == set(KINDS)


def _revealed(value: Any) -> Any:
    return value.reveal() if hasattr(value, "reveal") else value


def _write(tmp_path: Path, source: str, values: dict[str, Any]) -> tuple[str, list[str]]:
    """An inventory of host `a` carrying `values` in the given source; returns (-i path, -e args)."""
    if source == "-e":
        (tmp_path / "inv.ini").write_text("a\n")
        return str(tmp_path / "inv.ini"), [f"{k}={shlex.quote(str(v))}" for k, v in values.items()]
    if source == "ini":
        # INI: host-line values and a [all:vars] section, both as ansible-core reads them.
        pairs = list(values.items())
        half = len(pairs) // 2
        host = " ".join(f"{k}={json.dumps(v) if ' ' in str(v) else v}" for k, v in pairs[:half])
        group = "".join(f"{k}={v}\n" for k, v in pairs[half:])
        (tmp_path / "inv.ini").write_text(f"a {host}\n\n[all:vars]\n{group}")
        return str(tmp_path / "inv.ini"), []
    document = {"all": {"hosts": {"a": values}}}
    name = "inv.json" if source == "json" else "inv.yml"
    text = (
        json.dumps(document)
        if source == "json"
        else "".join(["all:\n  hosts:\n    a:\n"] + [f"      {k}: {json.dumps(v)}\n" for k, v in values.items()])
    )
    (tmp_path / name).write_text(text)
    return str(tmp_path / name), []


@pytest.mark.parametrize("source", ["-e", "ini", "yaml", "json"])
def test_every_variable_is_read_from_every_source(tmp_path: Path, source: str) -> None:
    values = {k: (TYPED.get(k, v[0]) if source in ("yaml", "json") else v[0]) for k, v in TABLE.items()}
    values.pop("pushorch_lock_backend")  # set alone below: the consul backend wants its own setup
    inventory, extra = _write(tmp_path, source, values)
    (tmp_path / "p.yml").write_text(PLAYBOOK)
    _, spec = load_spec([inventory], [str(tmp_path / "p.yml")], extra)
    converted = typed(spec.hosts["a"].vars)
    for name, (_, expected, _) in TABLE.items():
        if name != "pushorch_lock_backend":
            assert _revealed(converted[name]) == expected, name
    # The settings the transports get are built from those values (files named need not exist for
    # the settings; the Consul TLS files are checked on the controller and left out here).
    variables = {k: v for k, v in spec.hosts["a"].vars.items() if not k.startswith("consul_c")}
    settings = settings_for("a", variables)
    assert (settings.port, settings.command_timeout, settings.keepalive) == (2222, 30.0, 5.0)
    assert (settings.become, settings.connect_timeout, settings.host_key_checking) == (True, 30.0, "accept-new")
    assert settings.consul.verify is False and settings.transport == "paramiko"


@pytest.mark.parametrize("source", ["-e", "ini", "yaml", "json"])
def test_garbage_in_any_variable_is_exit_3_naming_it_and_its_source(tmp_path: Path, source: str, run_cli) -> None:  # type: ignore[no-untyped-def]
    garbage = {k: v[2] for k, v in TABLE.items() if v[2] is not None}
    inventory, extra = _write(tmp_path, source, garbage)
    (tmp_path / "p.yml").write_text(PLAYBOOK)
    extra_args = [arg for value in extra for arg in ("-e", value)]
    for command in ("check", "plan", "apply"):
        run = run_cli(command, "-i", inventory, *extra_args, str(tmp_path / "p.yml"))
        assert run.status == 3, (command, run.err)
        where = "-e" if source == "-e" else inventory
        lines = [line for line in run.err.splitlines() if not line.startswith("error:")]
        named = {line.split(": ")[1] for line in lines}
        assert named == set(garbage), (command, run.err)
        assert all(line.startswith(where) and line.endswith("(host a)") for line in lines), run.err
        assert "Traceback" not in run.err


def test_a_string_timeout_from_the_command_line_bounds_commands_as_a_number() -> None:
    from pushorch.transport.base import time_limit

    settings = settings_for("a", {"pushorch_command_timeout": "20"})
    assert time_limit(settings, 300.0) == 20.0 and time_limit(settings, 5.0) == 5.0

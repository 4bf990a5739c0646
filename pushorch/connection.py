"""How to reach a host: SSH settings from its inventory variables and the command line (pure).

Ansible's connection variables are honoured (`ansible_host`, `ansible_port`, `ansible_user`,
`ansible_ssh_private_key_file`, `ansible_password`, `ansible_ssh_common_args` for the options that map,
`ansible_connection`, `ansible_become`), plus pushorch's own `pushorch_*` variables.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pushorch.consul.settings import ConsulAgent, agent_for
from pushorch.secret import Secret, plain
from pushorch.variables import SECRET_VARIABLES, typed

HostKeyPolicy = Literal["strict", "accept-new", "off"]
TRANSPORTS = ("asyncssh", "paramiko", "local")


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Everything a transport needs to open one host's connection."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    key_files: tuple[str, ...] = ()
    password: Secret | None = None
    proxy_jump: str | None = None
    known_hosts: str | None = None
    host_key_checking: HostKeyPolicy = "strict"
    ssh_config: str | None = None
    transport: str = "asyncssh"
    connect_timeout: float = 10.0
    command_timeout: float | None = None
    keepalive: float = 15.0
    become: bool = False
    become_user: str = "root"
    become_password: Secret | None = None  # sudo -S on stdin; None: sudo -n (never prompts)
    extra: Mapping[str, str] = field(default_factory=dict)
    consul: ConsulAgent = field(default_factory=ConsulAgent)


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line settings; None means 'use the inventory or the default'."""

    transport: str | None = None
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    host_key_checking: HostKeyPolicy | None = None
    ssh_config: str | None = None
    connect_timeout: float | None = None
    command_timeout: float | None = None
    become: bool | None = None
    become_password: Secret | None = None  # -K/--ask-become-pass
    defaults: Mapping[str, Any] = field(default_factory=dict)  # ansible.cfg's, below every inventory var


_FLAG_KEYS = {"-i": "key_file", "-p": "port", "-l": "user", "-F": "ssh_config", "-J": "proxy_jump"}


def _common_args(text: str) -> dict[str, Any]:
    """The ssh options of ansible_ssh_common_args that have a meaning here."""
    found: dict[str, Any] = {}
    tokens = shlex.split(text)
    options: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "-o" or token in _FLAG_KEYS:
            value = tokens[index + 1] if index + 1 < len(tokens) else ""
            if token == "-o":
                options.append(value)
            else:
                found[_FLAG_KEYS[token]] = value
            index += 2
            continue
        if token.startswith("-o") and len(token) > 2:
            options.append(token[2:])
        index += 1
    for option in options:
        key, _, value = option.replace("=", " ", 1).partition(" ")
        key, value = key.strip().lower(), value.strip()
        if key == "proxyjump":
            found["proxy_jump"] = value
        elif key == "userknownhostsfile":
            found["known_hosts"] = value.split()[0]
        elif key == "stricthostkeychecking":
            found["host_key_checking"] = {"no": "off", "accept-new": "accept-new", "off": "off"}.get(value, "strict")
        elif key == "connecttimeout":
            found["connect_timeout"] = float(value)
        elif key == "serveraliveinterval":
            found["keepalive"] = float(value)
        elif key in ("user", "port", "identityfile"):
            found[{"user": "user", "port": "port", "identityfile": "key_file"}[key]] = value
    return found


def settings_for(name: str, variables: Mapping[str, Any], overrides: Overrides | None = None) -> ConnectionSettings:
    """Connection settings for one host; raises ValueError naming the bad variable (VariableError when
    a variable's value is not of its kind)."""
    o = overrides or Overrides()
    # Every setting but the secret ones is used as given, even when it came from a vault file.
    merged = {k: v if k in SECRET_VARIABLES else plain(v) for k, v in {**o.defaults, **variables}.items()}
    v = typed(merged)
    common = _common_args(str(v.get("ansible_ssh_common_args") or ""))
    common.update(_common_args(str(v.get("ansible_ssh_extra_args") or "")))

    def pick(*candidates: Any) -> Any:
        return next((c for c in candidates if c is not None and c != ""), None)

    port = pick(v.get("ansible_port"), v.get("ansible_ssh_port"), common.get("port"))
    key = pick(o.key_file, v.get("ansible_ssh_private_key_file"), common.get("key_file"))
    password = pick(v.get("ansible_password"), v.get("ansible_ssh_pass"))
    policy = pick(
        o.host_key_checking,
        v.get("pushorch_host_key_checking"),
        v.get("host_key_checking"),
        common.get("host_key_checking"),
        "strict",
    )
    connection = pick(v.get("ansible_connection"), "ssh")
    transport = pick(
        o.transport if connection != "local" else None,
        "local" if connection == "local" else None,
        v.get("pushorch_transport"),
        "asyncssh",
    )
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    try:
        port_number = int(port) if port is not None else None
    except (TypeError, ValueError):
        raise ValueError(f"ansible_ssh_common_args: port must be a number, got {port!r}") from None
    known_hosts = pick(o.known_hosts, v.get("pushorch_known_hosts"), common.get("known_hosts"))
    method = str(pick(v.get("ansible_become_method"), "sudo"))
    if method != "sudo":
        raise ValueError(f"ansible_become_method {method!r} is not supported (pushorch becomes with sudo)")
    become_password = pick(
        o.become_password,
        v.get("ansible_become_password"),
        v.get("ansible_become_pass"),
        v.get("ansible_sudo_pass"),
    )
    return ConnectionSettings(
        name=name,
        address=str(pick(v.get("ansible_host"), v.get("ansible_ssh_host"), name)),
        port=port_number,
        user=pick(o.user, v.get("ansible_user"), v.get("ansible_ssh_user"), common.get("user")),
        key_files=(os.path.expanduser(str(key)),) if key else (),
        password=password if isinstance(password, Secret) or password is None else Secret(str(password)),
        proxy_jump=pick(v.get("pushorch_proxy_jump"), common.get("proxy_jump")),
        known_hosts=os.path.expanduser(str(known_hosts)) if known_hosts else None,
        host_key_checking=policy,
        ssh_config=pick(o.ssh_config, v.get("pushorch_ssh_config"), common.get("ssh_config")),
        transport=str(transport),
        connect_timeout=float(pick(o.connect_timeout, v.get("ansible_timeout"), common.get("connect_timeout"), 10)),
        command_timeout=pick(o.command_timeout, v.get("pushorch_command_timeout")),
        # A lost host is noticed after 3 unanswered keepalives (OpenSSH's ServerAliveCountMax default).
        keepalive=float(pick(v.get("pushorch_keepalive"), common.get("keepalive"), 15)),
        become=bool(pick(o.become, v.get("ansible_become"), False)),
        become_user=str(pick(v.get("ansible_become_user"), "root")),
        become_password=become_password
        if isinstance(become_password, Secret) or become_password is None
        else Secret(str(become_password)),
        consul=agent_for(v),
    )


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """One ProxyJump hop: 'user@host:port' -> (user, host, port); user and port optional."""
    user, _, rest = spec.rpartition("@")
    host, _, port = rest.partition(":") if rest.count(":") == 1 else (rest, "", "")
    return user or None, host, int(port) if port else None

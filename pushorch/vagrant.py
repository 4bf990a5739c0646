"""Vagrant machines as an inventory source, from `vagrant status` and `vagrant ssh-config`.

Like pyinfra's @vagrant connector: every running machine becomes a host in the group `vagrant`,
with the SSH settings Vagrant reports. Host key checking follows what ssh-config says (first value
wins, Includes followed), so a Vagrantfile that ships its machines' known_hosts gets verified keys.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from pushorch.errors import InventoryError, Problem


def is_vagrant_source(source: str) -> bool:
    return source.startswith("vagrant:") or (
        os.path.isdir(source) and os.path.isfile(os.path.join(source, "Vagrantfile"))
    )


def _vagrant(directory: str, *args: str) -> str:
    try:
        done = subprocess.run(["vagrant", *args], cwd=directory, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise InventoryError(Problem(directory, 0, 0, "", "vagrant is not installed")) from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InventoryError(Problem(directory, 0, 0, "", f"vagrant {args[0]} failed: {' | '.join(tail)}"))
    return done.stdout


def running_machines(status_output: str) -> list[str]:
    """Names of running machines from `vagrant status --machine-readable`."""
    names = []
    for line in status_output.splitlines():
        fields = line.split(",")
        if len(fields) >= 4 and fields[2] == "state" and fields[3] == "running":
            names.append(fields[1])
    return names


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """Host blocks -> {host: {keyword (lowercase): first value}}, Include files read in place."""
    hosts: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None

    def take(key: str, value: str) -> None:
        if current is not None:
            current.setdefault(key, value)  # first value wins, as in OpenSSH

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        key, value = key.lower(), value.strip().strip('"')
        if key == "host":
            current = hosts.setdefault(value, {})
        elif key == "include":
            for path in shlex.split(value):
                try:
                    included = Path(os.path.expanduser(path)).read_text()
                except OSError:
                    continue
                for inner in included.splitlines():
                    ikey, _, ivalue = inner.strip().partition(" ")
                    if ikey and not ikey.startswith("#"):
                        take(ikey.lower(), ivalue.strip().strip('"'))
        else:
            take(key, value)
    return hosts


def host_vars(options: dict[str, str]) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "ansible_host": options.get("hostname", ""),
        "ansible_port": int(options.get("port", "22")),
        "ansible_user": options.get("user"),
    }
    if "identityfile" in options:
        variables["ansible_ssh_private_key_file"] = options["identityfile"]
    policy = options.get("stricthostkeychecking", "yes").lower()
    variables["host_key_checking"] = {"no": "off", "accept-new": "accept-new"}.get(policy, "strict")
    known = options.get("userknownhostsfile")
    if known and known != "/dev/null":
        variables["pushorch_known_hosts"] = known
    return {k: v for k, v in variables.items() if v is not None}


def vagrant_inventory(source: str) -> str:
    """Write the Vagrant machines' inventory to DIR/.vagrant/pushorch-inventory.yml; returns its path."""
    directory = source.removeprefix("vagrant:") or "."
    names = running_machines(_vagrant(directory, "status", "--machine-readable"))
    if not names:
        raise InventoryError(Problem(directory, 0, 0, "", "no running Vagrant machines (vagrant up first)"))
    blocks = parse_ssh_config(_vagrant(directory, "ssh-config", *names))
    inventory = {"vagrant": {"hosts": {name: host_vars(blocks.get(name, {})) for name in names}}}
    path = Path(directory) / ".vagrant" / "pushorch-inventory.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by pushorch from `vagrant ssh-config`\n" + json.dumps(inventory, indent=2) + "\n")
    return str(path)

"""The lab's registries: an open one (plain HTTP, .2, also on a loopback port for the controller to
push to) and one that asks for a password (.3, serving the same storage read-only)."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pushorch.lab.shell import LabError, container_state, docker, flags, free_loopback_port

if TYPE_CHECKING:
    from pushorch.lab.cluster import Lab

REGISTRY_CONFIG = """version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
"""
# The same images behind a password (for testing registry credentials): it serves the open
# registry's storage read-only, so nothing is pushed twice.
AUTH_REGISTRY_CONFIG = """version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  maintenance:
    readonly:
      enabled: true
http:
  addr: :5000
auth:
  htpasswd:
    realm: pushorch-lab
    path: /etc/pushorch-registry.htpasswd
"""
REGISTRY_USER = "pushorch"


def registry_address(subnet: str, offset: int = 2) -> str:
    """The lab registry's address (.2); the one that asks for a password is .3."""
    return str(ipaddress.ip_address(int(ipaddress.ip_network(subnet).network_address) + offset))


def ensure_registry(lab: Lab, full_image: str, subnet: str, port: int, say: Callable[[str], None]) -> int:
    state = container_state(lab.registry)
    if state and port and (state["running"], state["image"], state["dir"]) == ("true", full_image, str(lab.dir)):
        return port
    if state:
        docker("registry: remove", "rm", "-f", lab.registry)
    port = port or free_loopback_port()
    config = lab.dir / "registry.yml"
    config.write_text(REGISTRY_CONFIG)
    say(f"registry: {registry_address(subnet)}:5000 (and 127.0.0.1:{port} for the controller)")
    volumes = [f"{lab.prefix}registry-data:/var/lib/docker-registry", f"{config}:/etc/pushorch-registry.yml:ro"]
    args = [
        "run",
        "-d",
        "--name",
        lab.registry,
        *lab.labels(),
        "--network",
        lab.network,
        "--ip",
        registry_address(subnet),
    ]
    args += ["-p", f"127.0.0.1:{port}:5000", *flags("-v", volumes), "--entrypoint", "/usr/bin/docker-registry"]
    docker("registry: start", *args, full_image, "serve", "/etc/pushorch-registry.yml")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
                if b"200 OK" in conn.recv(100):
                    return port
        except OSError:
            pass
        time.sleep(0.2)
    raise LabError(f"registry: no answer on 127.0.0.1:{port} after 20s")


def ensure_auth_registry(lab: Lab, full_image: str, subnet: str, say: Callable[[str], None]) -> None:
    """The registry that asks for a password (user `pushorch`, password in DIR/registry-password)."""
    import bcrypt  # paramiko's own dependency

    name = lab.prefix + "registry-auth"
    password_file = lab.dir / "registry-password"
    if not password_file.exists():
        password_file.touch(mode=0o600)
        password_file.write_text(secrets.token_urlsafe(18))
    state = container_state(name)
    if state and (state["running"], state["image"], state["dir"]) == ("true", full_image, str(lab.dir)):
        return
    if state:
        docker("auth registry: remove", "rm", "-f", name)
    hashed = bcrypt.hashpw(password_file.read_text().encode(), bcrypt.gensalt(rounds=10, prefix=b"2a"))
    (lab.dir / "registry.htpasswd").write_text(f"{REGISTRY_USER}:{hashed.decode()}\n")
    (lab.dir / "registry-auth.yml").write_text(AUTH_REGISTRY_CONFIG)
    say(f"registry with a password: {registry_address(subnet, 3)}:5000")
    volumes = [
        f"{lab.prefix}registry-data:/var/lib/docker-registry:ro",
        f"{lab.dir / 'registry-auth.yml'}:/etc/pushorch-registry.yml:ro",
        f"{lab.dir / 'registry.htpasswd'}:/etc/pushorch-registry.htpasswd:ro",
    ]
    args = ["run", "-d", "--name", name, *lab.labels(), "--network", lab.network]
    args += [
        "--ip",
        registry_address(subnet, 3),
        *flags("-v", volumes),
        "--entrypoint",
        "/usr/bin/docker-registry",
    ]
    docker("auth registry: start", *args, full_image, "serve", "/etc/pushorch-registry.yml")

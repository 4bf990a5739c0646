"""Start OpenSSH sshd on 127.0.1.N addresses as N distinct hosts, with keys and known_hosts of our own.

Used by the transport tests and the benchmark. One sshd takes at most 16 ListenAddress lines, so
N hosts need ceil(N/16) sshd processes; all share one host key, one port and one authorized_keys.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PER_SSHD = 16


def require_sshd() -> None:
    """Fail (never skip) when OpenSSH's sshd is missing: scripts/setup installs it."""
    if not os.path.exists(SSHD) or not shutil.which("ssh-keygen"):
        raise RuntimeError(f"{SSHD} or ssh-keygen not found: run scripts/setup (installs openssh-server)")


def free_port(address: str = "127.0.1.1") -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> str:
    """A new key pair at path (+ .pub); returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def address(index: int) -> str:
    """Host index 1.. -> 127.0.1.1 ... 127.0.1.254, then 127.0.2.x, ... (distinct loopback hosts)."""
    return f"127.0.{1 + (index - 1) // 254}.{1 + (index - 1) % 254}"


@dataclass
class Sshd:
    """Running sshd processes serving `count` hosts on one port."""

    workdir: Path
    count: int
    port: int = 0
    host_key: Path = field(init=False)
    client_key: Path = field(init=False)
    known_hosts: Path = field(init=False)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra_config: str = ""
    log_level: str = "ERROR"
    keys_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host_key = self.workdir / "host_ed25519"
        self.client_key = self.workdir / "client_ed25519"
        self.known_hosts = self.workdir / "known_hosts"

    @property
    def addresses(self) -> list[str]:
        return [address(i) for i in range(1, self.count + 1)]

    def host_public_key(self) -> str:
        return Path(f"{self.host_key}.pub").read_text().split()[:2][1]

    def start(self) -> Sshd:
        require_sshd()
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        if not self.host_key.exists():
            keygen(self.host_key)
        if not self.client_key.exists():
            keygen(self.client_key)
        # sshd reads authorized_keys as the logging-in user, so it must not sit under a 0700 test
        # directory: a world-readable directory of its own lets non-root test users log in too.
        self.keys_dir = Path(tempfile.mkdtemp(prefix="pushorch-sshd-"))
        self.keys_dir.chmod(0o755)
        (self.keys_dir / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        self.port = self.port or free_port()
        kind, body = Path(f"{self.host_key}.pub").read_text().split()[:2]
        self.known_hosts.write_text("".join(f"[{a}]:{self.port} {kind} {body}\n" for a in self.addresses))
        for first in range(0, self.count, PER_SSHD):
            chunk = self.addresses[first : first + PER_SSHD]
            config = self.workdir / f"sshd_config.{first // PER_SSHD}"
            config.write_text(self._config(chunk, first // PER_SSHD))
            with open(self.workdir / "sshd.log", "ab") as log:
                self.processes.append(subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log))
        self._wait_ready()
        return self

    def _config(self, addresses: list[str], index: int) -> str:
        listen = "".join(f"ListenAddress {a}\n" for a in addresses)
        # sshd keeps the first value of a keyword, so extra settings go first.
        return (
            f"{self.extra_config}"
            f"Port {self.port}\n{listen}"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.workdir}/sshd.{index}.pid\n"
            f"AuthorizedKeysFile {self.keys_dir}/authorized_keys\n"
            "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
            "MaxStartups 1000:30:2000\nMaxSessions 1000\n"
            # root's ~/.bashrc runs `pyenv init` on these machines; SHLVL=1 makes bash skip it,
            # so a host behaves like a stock one (see DESIGN §7).
            "SetEnv SHLVL=1\n"
            f"AllowTcpForwarding yes\nLogLevel {self.log_level}\nSubsystem sftp internal-sftp\n"
        )

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.addresses)
        while pending and time.monotonic() < deadline:
            for addr in list(pending):
                with contextlib.suppress(OSError), socket.create_connection((addr, self.port), timeout=0.5):
                    pending.discard(addr)
            if pending:
                time.sleep(0.05)
        if pending:
            log = (self.workdir / "sshd.log").read_text(errors="replace")
            self.stop()
            raise RuntimeError(f"sshd did not listen on {sorted(pending)[:3]}...: {log[-500:]}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.processes.clear()
        shutil.rmtree(self.keys_dir, ignore_errors=True)

    def inventory(self, path: Path, user: str = "root", names: str = "h{:03d}", extra: str = "") -> Path:
        """A YAML inventory of these hosts, usable by pushorch and by ansible alike."""
        lines = ["all:", "  hosts:"]
        for i, addr in enumerate(self.addresses, start=1):
            lines.append(f"    {names.format(i)}: {{ansible_host: {addr}}}")
        lines += [
            "  vars:",
            f"    ansible_port: {self.port}",
            f"    ansible_user: {user}",
            f"    ansible_ssh_private_key_file: {self.client_key}",
            f"    ansible_ssh_common_args: '-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes'",
            "    ansible_python_interpreter: /usr/bin/python3",
        ]
        path.write_text("\n".join(lines) + "\n" + extra)
        return path


@contextlib.contextmanager
def running(workdir: Path, count: int, **kwargs: object) -> Iterator[Sshd]:
    server = Sshd(workdir, count, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""Host key policy shared by the SSH transports: strict, accept-new (trust on first use), off."""

from __future__ import annotations

import fcntl
import os
import threading

import asyncssh

from pushorch.connection import ConnectionSettings

_cache: dict[str, tuple[int, int, asyncssh.SSHKnownHosts]] = {}
# paramiko connects in threads: without the lock, hundreds of them found the cache empty at once and
# each parsed the whole file (1,000 hosts: 120 s instead of 14 s in some runs).
_reading = threading.Lock()


def known_hosts_path(settings: ConnectionSettings) -> str:
    return settings.known_hosts or os.path.expanduser("~/.ssh/known_hosts")


def _entry_host(address: str, port: int | None) -> str:
    return address if port in (None, 22) else f"[{address}]:{port}"


def _read(path: str) -> asyncssh.SSHKnownHosts:
    """known_hosts parsed once per run (re-read only when the file changed)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return asyncssh.import_known_hosts("")
    with _reading:
        cached = _cache.get(path)
        if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        parsed = asyncssh.read_known_hosts(path)
        _cache[path] = (stat.st_mtime_ns, stat.st_size, parsed)
        return parsed


def is_known(settings: ConnectionSettings, address: str, port: int | None) -> bool:
    host_keys, ca_keys, *_ = _read(known_hosts_path(settings)).match(address, address, port)
    return bool(host_keys or ca_keys)


def trusted_for(settings: ConnectionSettings, address: str, port: int | None) -> asyncssh.SSHKnownHosts | None:
    """What asyncssh should verify against; None accepts any key (off, or accept-new for a new host)."""
    policy = settings.host_key_checking
    if policy == "off":
        return None
    if policy == "accept-new" and not is_known(settings, address, port):
        return None  # first contact: accept, then remember() writes the key
    return _read(known_hosts_path(settings))


def trusted_keys(settings: ConnectionSettings, address: str, port: int | None) -> list[tuple[str, bytes]]:
    """(key type, public key blob) of every plain host key known_hosts trusts for this host, for
    transports that verify keys themselves (paramiko); revoked keys and CAs are not among them."""
    host_keys, _, revoked, *_ = _read(known_hosts_path(settings)).match(address, address, port)
    trusted = ((key.get_algorithm(), key.public_data) for key in host_keys if key not in revoked)
    return list(dict.fromkeys(trusted))  # a key listed by name and by address comes back twice


def remember(settings: ConnectionSettings, address: str, port: int | None, public_key: str) -> None:
    """Append a first-seen host key to known_hosts (accept-new); a no-op when the host is known."""
    path = known_hosts_path(settings)
    if is_known(settings, address, port):
        return
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    keytype, body = public_key.split()[:2]
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # several hosts (or runs) may learn keys at once
        handle.write(f"{_entry_host(address, port)} {keytype} {body}\n")
    _cache.pop(path, None)


def refusal_message(settings: ConnectionSettings, reason: str) -> str:
    path, port = known_hosts_path(settings), settings.port or 22
    return (
        f"host key of {settings.address}:{port} not verified ({reason}) against {path}; "
        f"if the host is new and you trust it, add its key (ssh-keyscan -p {port} {settings.address} >> {path}, "
        "after checking the fingerprint) or set host_key_checking: accept-new; "
        "a changed key is refused under every policy but off"
    )

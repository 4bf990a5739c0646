"""Where vault passwords come from on the controller: a file, an executable's stdout, the terminal."""

from __future__ import annotations

import os
import subprocess

from pushorch.ansible.vault import VaultError, VaultSecret
from pushorch.secret import Secret

PASSWORD_COMMAND_TIMEOUT = 30.0


def secret_from(source: str, label: str = "default", prompt: bool = False) -> VaultSecret:
    """A password from a file (all of it, surrounding whitespace stripped), an executable (its stdout
    less surrounding CR/LF; `--vault-id` passes the label as `--vault-id LABEL` when it is a client
    script), or the terminal (`prompt`): exactly what ansible-core's FileVaultSecret and
    ScriptVaultSecret read, so a password with inner newlines or spaces opens the same vaults."""
    if prompt or source == "prompt":
        import getpass

        text = getpass.getpass(f"Vault password ({label}): " if label != "default" else "Vault password: ")
        return VaultSecret(label, Secret(text))
    path = os.path.expanduser(source)
    if not os.path.isfile(path):
        raise VaultError(f"vault password file {source}: no such file")
    if os.access(path, os.X_OK):
        # Ansible's convention: a script named *-client[.ext] is a vault-id client and is told the label.
        client = os.path.splitext(os.path.basename(path))[0].endswith("-client")
        argv = [path, "--vault-id", label] if client else [path]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=PASSWORD_COMMAND_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VaultError(f"vault password script {source}: {type(exc).__name__}") from None
        if done.returncode != 0:
            raise VaultError(f"vault password script {source} exited {done.returncode}")
        raw = done.stdout.strip(b"\r\n")
    else:
        with open(path, "rb") as handle:
            raw = handle.read().strip().strip(b"\r\n")
    # Bytes that are not UTF-8 survive the round trip to the key derivation (surrogateescape).
    password = raw.decode("utf-8", "surrogateescape")
    if not password:
        raise VaultError(f"vault password file {source} is empty")
    return VaultSecret(label, Secret(password))

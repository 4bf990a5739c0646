"""ansible.cfg, found and read the way ansible-core does, for the settings pushorch has a use for.

The first of ANSIBLE_CONFIG (a file, or a directory holding ansible.cfg), ./ansible.cfg (not in a
world-writable directory, as Ansible refuses it), ~/.ansible.cfg and /etc/ansible/ansible.cfg is
read, and only that one. ANSIBLE_* environment variables override it. Relative paths are taken
from the file's directory. What pushorch reads and what it ignores is in docs/ansible.md.
"""

from __future__ import annotations

import configparser
import os
import stat
from dataclasses import dataclass, field
from typing import Any

# (section, key, environment variable) of every setting read.
SETTINGS = {
    "inventory": ("defaults", "inventory", "ANSIBLE_INVENTORY"),
    "remote_user": ("defaults", "remote_user", "ANSIBLE_REMOTE_USER"),
    "private_key_file": ("defaults", "private_key_file", "ANSIBLE_PRIVATE_KEY_FILE"),
    "forks": ("defaults", "forks", "ANSIBLE_FORKS"),
    "host_key_checking": ("defaults", "host_key_checking", "ANSIBLE_HOST_KEY_CHECKING"),
    "timeout": ("defaults", "timeout", "ANSIBLE_TIMEOUT"),
    "vault_password_file": ("defaults", "vault_password_file", "ANSIBLE_VAULT_PASSWORD_FILE"),
    "vault_identity_list": ("defaults", "vault_identity_list", "ANSIBLE_VAULT_IDENTITY_LIST"),
    "become": ("privilege_escalation", "become", "ANSIBLE_BECOME"),
    "become_user": ("privilege_escalation", "become_user", "ANSIBLE_BECOME_USER"),
    "become_method": ("privilege_escalation", "become_method", "ANSIBLE_BECOME_METHOD"),
    "become_ask_pass": ("privilege_escalation", "become_ask_pass", "ANSIBLE_BECOME_ASK_PASS"),
    "ssh_args": ("ssh_connection", "ssh_args", "ANSIBLE_SSH_ARGS"),
    "pipelining": ("ssh_connection", "pipelining", "ANSIBLE_PIPELINING"),
}
TRUE = ("1", "true", "yes", "on", "y", "t")


@dataclass(frozen=True, slots=True)
class AnsibleConfig:
    path: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    from_env: frozenset[str] = frozenset()  # settings an ANSIBLE_* variable gave: their paths are the caller's

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        return None if value is None else value.strip().lower() in TRUE

    @property
    def inventory(self) -> list[str]:
        """`inventory` is a comma-separated list of paths, relative to the config file."""
        raw = self.get("inventory") or ""
        return [self._path(p.strip(), "inventory") for p in raw.split(",") if p.strip()]

    @property
    def forks(self) -> int | None:
        value = self.get("forks")
        return int(value) if value and value.strip().isdigit() and int(value) > 0 else None

    @property
    def vault_password_files(self) -> list[str]:
        value = self.get("vault_password_file")
        return [self._path(value, "vault_password_file")] if value else []

    @property
    def vault_identities(self) -> list[str]:
        return [v.strip() for v in (self.get("vault_identity_list") or "").split(",") if v.strip()]

    def variable_defaults(self) -> dict[str, Any]:
        """The inventory variables these settings stand for, at the lowest precedence (as in Ansible,
        a host's own ansible_user beats remote_user)."""
        out: dict[str, Any] = {}
        if self.get("remote_user"):
            out["ansible_user"] = self.get("remote_user")
        if self.get("private_key_file"):
            out["ansible_ssh_private_key_file"] = self._path(str(self.get("private_key_file")), "private_key_file")
        if self.get("host_key_checking") is not None:
            out["host_key_checking"] = bool(self.flag("host_key_checking"))
        if self.get("timeout"):
            out["ansible_timeout"] = self.get("timeout")
        if self.get("become") is not None:
            out["ansible_become"] = bool(self.flag("become"))
        if self.get("become_user"):
            out["ansible_become_user"] = self.get("become_user")
        if self.get("become_method"):
            out["ansible_become_method"] = self.get("become_method")
        if self.get("ssh_args"):
            out["ansible_ssh_common_args"] = self.get("ssh_args")
        return out

    def _path(self, value: str, setting: str) -> str:
        """A path as the setting means it: relative to the config file, unless the environment gave it."""
        value = os.path.expanduser(value)
        if os.path.isabs(value) or self.path is None or setting in self.from_env:
            return value
        return os.path.join(os.path.dirname(self.path), value)


def find(env: dict[str, str] | None = None, cwd: str | None = None) -> str | None:
    env = dict(os.environ) if env is None else env
    given = env.get("ANSIBLE_CONFIG")
    if given:
        given = os.path.expanduser(given)
        candidate = os.path.join(given, "ansible.cfg") if os.path.isdir(given) else given
        if os.path.isfile(candidate):
            return candidate
    here = cwd or os.getcwd()
    local = os.path.join(here, "ansible.cfg")
    if os.path.isfile(local) and not os.stat(here).st_mode & stat.S_IWOTH:
        return local
    for candidate in (os.path.expanduser("~/.ansible.cfg"), "/etc/ansible/ansible.cfg"):
        if os.path.isfile(candidate):
            return candidate
    return None


def load(path: str | None, env: dict[str, str] | None = None) -> AnsibleConfig:
    """The settings from `path` (None: no file), then the environment over them. Raises ValueError
    for a file configparser cannot read."""
    env = dict(os.environ) if env is None else env
    values: dict[str, str] = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ValueError(f"{path}: {exc.message if hasattr(exc, 'message') else exc}") from None
        for name, (section, key, _) in SETTINGS.items():
            if parser.has_option(section, key):
                values[name] = parser.get(section, key).strip()
    from_env = {name: env[var] for name, (_, _, var) in SETTINGS.items() if env.get(var)}
    return AnsibleConfig(path, {**values, **from_env}, frozenset(from_env))


_current: list[AnsibleConfig] = []


def current() -> AnsibleConfig:
    """This process's config (read once)."""
    if not _current:
        _current.append(load(find()))
    return _current[0]


def forget() -> None:
    """Read the config again next time (tests change directory and environment)."""
    _current.clear()

"""The inventory variables pushorch reads, each with its kind, converted once (pure).

Every value may arrive as a string (`-e key=value`, an INI file), or typed (YAML, JSON, INI literals);
each kind accepts what Ansible accepts for it and names the variable when it cannot. Connection
settings, the Consul agent and the fleet lock read their variables only through `typed()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pushorch.secret import Secret, plain
from pushorch.spec import parse_duration

# Ansible's `boolean()` (module_utils.parsing.convert_bool): what each side accepts, case-insensitive.
TRUE_WORDS = frozenset(("y", "yes", "on", "1", "true", "t", "1.0"))
FALSE_WORDS = frozenset(("n", "no", "off", "0", "false", "f", "0.0"))

HOST_KEY_POLICIES = ("strict", "accept-new", "off")


class VariableError(ValueError):
    """Variables whose values cannot be used: (name, message) each."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError(f"{value!r} is not a boolean (true/false, yes/no, on/off, 1/0)")


def duration(value: Any) -> float:
    """Seconds: 30, 1.5, '30', '30s', '2m', '1h30m', '500ms'."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            value = text
    return parse_duration(value)


def whole_seconds(value: Any) -> int:
    seconds = duration(value)
    if seconds < 1:
        raise ValueError(f"{value!r} is less than a second")
    return int(seconds)


def port(value: Any) -> int:
    number = integer(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"{value!r} is not a port (1-65535)")
    return number


def integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a whole number")


def host_key_policy(value: Any) -> str:
    """strict / accept-new / off, or a boolean as Ansible's host_key_checking is (false: off)."""
    if isinstance(value, str) and value.strip().lower() in HOST_KEY_POLICIES:
        return value.strip().lower()
    try:
        return "strict" if boolean(value) else "off"
    except ValueError:
        raise ValueError(f"{value!r} is not one of {', '.join(HOST_KEY_POLICIES)} or a boolean") from None


def choice(*allowed: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = str(value).strip()
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return text

    return convert


def text(value: Any) -> Any:
    """Strings stay as they are (a Secret stays a Secret); numbers become their text."""
    if isinstance(value, (str, Secret)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{value!r} is not a string")


# Every variable pushorch reads and how. Names Ansible defines keep Ansible's meaning.
KINDS: dict[str, Callable[[Any], Any]] = {
    "ansible_host": text,
    "ansible_ssh_host": text,
    "ansible_port": port,
    "ansible_ssh_port": port,
    "ansible_user": text,
    "ansible_ssh_user": text,
    "ansible_password": text,
    "ansible_ssh_pass": text,
    "ansible_ssh_private_key_file": text,
    "ansible_ssh_common_args": text,
    "ansible_ssh_extra_args": text,
    "ansible_connection": text,
    "ansible_timeout": duration,
    "ansible_become": boolean,
    "ansible_become_method": text,
    "ansible_become_user": text,
    "ansible_become_password": text,
    "ansible_become_pass": text,
    "ansible_sudo_pass": text,
    "host_key_checking": host_key_policy,
    "pushorch_host_key_checking": host_key_policy,
    "pushorch_transport": choice("asyncssh", "paramiko", "local"),
    "pushorch_known_hosts": text,
    "pushorch_ssh_config": text,
    "pushorch_proxy_jump": text,
    "pushorch_command_timeout": duration,
    "pushorch_keepalive": duration,
    "pushorch_lock_host": text,
    "pushorch_lock_backend": choice("mkdir", "consul"),
    "pushorch_lock_ttl": whole_seconds,
    "pushorch_lock_name": text,
    "consul_http_addr": text,
    "consul_http_token": text,
    "consul_http_token_file": text,
    "consul_cacert": text,
    "consul_client_cert": text,
    "consul_client_key": text,
    "consul_tls_server_name": text,
    "consul_http_ssl_verify": boolean,
}


LOCK_VARIABLES = ("pushorch_lock_host", "pushorch_lock_backend", "pushorch_lock_ttl", "pushorch_lock_name")


def typed(variables: Mapping[str, Any], names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The known variables among `variables` (or only `names`), converted; empty and None mean unset.
    Secrets keep being Secrets (a vault-encrypted port is read as its plaintext). Raises VariableError
    listing every bad one."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name in names or tuple(KINDS):
        value = variables.get(name)
        if value is None or value == "":
            continue
        convert = KINDS[name]
        try:
            out[name] = convert(value if convert is text else plain(value))
        except ValueError as exc:
            problems.append((name, str(exc)))
    if problems:
        raise VariableError(problems)
    return out

"""The inventory variables pushorch reads, each with its kind, converted once (pure).

Every value may arrive as a string (`-e key=value`, an INI file), or typed (YAML, JSON, INI literals);
each kind accepts what Ansible accepts for it and names the variable when it cannot. Connection
settings, the Consul agent and the fleet lock read their variables only through `typed()`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from pushorch.durations import parse_duration
from pushorch.secret import REDACTED, Secret, plain, scrub

# Ansible's `boolean()` (module_utils.parsing.convert_bool): what each side accepts, case-insensitive.
TRUE_WORDS = frozenset(("y", "yes", "on", "1", "true", "t", "1.0"))
FALSE_WORDS = frozenset(("n", "no", "off", "0", "false", "f", "0.0"))

HOST_KEY_POLICIES = ("strict", "accept-new", "off")

# Variables whose values are secrets wherever they are set: kept as Secrets from the moment they are
# read, never shown, never recorded. Besides these, any variable named like a credential
# (`*_password`, `*_pass`, `*_token`, `*_secret`, `*_key` but key files) counts as one when it is
# given with -e: a command line is recorded on hosts and shown in process lists.
SECRET_VARIABLES = frozenset(
    (
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_sudo_pass",
        "consul_http_token",
    )
)
_CREDENTIAL_NAME = re.compile(r"(^|_)(password|passwd|pass|token|secret|api_key|private_key)$", re.IGNORECASE)


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


def is_secret(name: str) -> bool:
    """Whether a variable given on the command line holds a credential (see SECRET_VARIABLES)."""
    return name in SECRET_VARIABLES or bool(_CREDENTIAL_NAME.search(name))


def secret_extra_vars(extra: dict[str, Any]) -> dict[str, Any]:
    """Extra vars with every credential's string value made a Secret (redacted in all output)."""
    return {k: Secret(v) if isinstance(v, str) and is_secret(k) else v for k, v in extra.items()}


_EXTRA_OPTIONS = ("-e", "--extra-vars")


def redacted_argv(args: list[str]) -> list[str]:
    """A command line fit to be recorded (history, lock owners, process lists): the value of every
    credential given with -e replaced by the redaction marker, and every secret this process knows
    scrubbed from the rest."""
    out: list[str] = []
    expect_value = False
    for arg in args:
        if expect_value:
            out.append(_redacted_extra(arg))
            expect_value = False
            continue
        if arg == "--":
            out.extend(scrub(a) for a in args[len(out) :])
            return out
        expect_value = arg in _EXTRA_OPTIONS
        for option in _EXTRA_OPTIONS:
            glued = option + ("=" if option.startswith("--") else "")
            if arg.startswith(glued) and arg != option:
                arg = glued + _redacted_extra(arg[len(glued) :])
                break
        out.append(scrub(arg))
    return out


def _redacted_extra(value: str) -> str:
    """One -e value with its credentials' values redacted: `k=v ...`, a JSON/YAML mapping, or @file."""
    text = value.strip()
    if text.startswith("@"):
        return scrub(value)
    if text.startswith(("{", "[")):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return REDACTED  # unreadable: nothing of it is recorded
        return scrub(json.dumps(_redacted_data(data), separators=(",", ":")))
    try:
        tokens = shlex.split(text)
    except ValueError:
        return REDACTED
    pairs = [token.partition("=") for token in tokens]
    return scrub(shlex.join(f"{k}={REDACTED}" if eq and is_secret(k) else k + eq + v for k, eq, v in pairs))


def _redacted_data(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: REDACTED if is_secret(str(k)) else _redacted_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_redacted_data(v) for v in data]
    return data

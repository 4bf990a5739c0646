"""Where and how to reach a host's Consul agent (pure): address, scheme, ACL token, TLS files.

Read from the host's inventory variables, named after Consul's own environment variables
(`consul_http_addr` for CONSUL_HTTP_ADDR, and so on), so a Consul user knows them already. The
controller is the HTTP client (through the host's SSH connection), so the CA and client
certificate files are paths on the controller; the token file is a path on the host (where
Consul operators keep it), read once per run over SSH.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushorch.secret import Secret
from pushorch.variables import boolean

DEFAULT_ADDR = "http://127.0.0.1:8500"
VARIABLES = (
    "consul_http_addr",
    "consul_http_token",
    "consul_http_token_file",
    "consul_cacert",
    "consul_client_cert",
    "consul_client_key",
    "consul_tls_server_name",
    "consul_http_ssl_verify",
)


@dataclass(frozen=True, slots=True)
class ConsulAgent:
    """The agent's HTTP API as seen from the host: scheme://host:port, and the credentials it wants."""

    scheme: str = "http"
    host: str = "127.0.0.1"
    port: int = 8500
    token: Secret | None = None
    token_file: str | None = None  # on the host
    ca_file: str | None = None  # on the controller
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    verify: bool = True

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def address(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def agent_for(variables: Mapping[str, Any]) -> ConsulAgent:
    """The agent settings of one host; raises ValueError naming the bad variable."""

    def get(name: str) -> Any:
        value = variables.get(name)
        return None if value is None or value == "" else value

    scheme, host, port = parse_addr(get("consul_http_addr"))
    token = get("consul_http_token")
    files = {name: get(name) for name in ("consul_cacert", "consul_client_cert", "consul_client_key")}
    if (files["consul_client_cert"] is None) != (files["consul_client_key"] is None):
        raise ValueError("consul_client_cert and consul_client_key go together")
    verify = get("consul_http_ssl_verify")
    return ConsulAgent(
        scheme=scheme,
        host=host,
        port=port,
        token=token if isinstance(token, Secret) or token is None else Secret(str(token)),
        token_file=str(get("consul_http_token_file")) if get("consul_http_token_file") else None,
        ca_file=_path(files["consul_cacert"]),
        cert_file=_path(files["consul_client_cert"]),
        key_file=_path(files["consul_client_key"]),
        server_name=str(get("consul_tls_server_name")) if get("consul_tls_server_name") else None,
        verify=boolean(verify) if verify is not None else True,
    )


def parse_addr(value: Any) -> tuple[str, str, int]:
    """consul_http_addr -> (scheme, host, port); raises ValueError."""
    raw = str(value or DEFAULT_ADDR)
    # CONSUL_HTTP_ADDR may omit the scheme ("127.0.0.1:8500"); Consul then assumes http.
    parsed = urllib.parse.urlsplit(raw if "://" in raw else f"http://{raw}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"consul_http_addr must look like http://127.0.0.1:8500 or https://HOST:8501, got {raw!r}")
    try:
        port = parsed.port or (8501 if parsed.scheme == "https" else 8500)
    except ValueError:
        raise ValueError(f"consul_http_addr has a bad port: {raw!r}") from None
    return parsed.scheme, parsed.hostname, port


def agent_port(variables: Mapping[str, Any]) -> int:
    """The agent's port as the probe looks for it (the default when the address is bad: the load reports that)."""
    try:
        return parse_addr(variables.get("consul_http_addr"))[2]
    except ValueError:
        return 8500


def _path(value: Any) -> str | None:
    return os.path.expanduser(str(value)) if value is not None else None

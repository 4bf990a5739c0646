"""Transports: the only code that talks to hosts (asyncssh default, paramiko, local, fake)."""

from __future__ import annotations

from typing import Any

from pushorch.connection import ConnectionSettings
from pushorch.transport.base import Result, TcpStream, Transport

__all__ = ["Result", "TcpStream", "Transport", "open_transport"]


def open_transport(settings: ConnectionSettings, shared: dict[str, Any] | None = None) -> Transport:
    """A transport of the kind the settings name (not yet connected)."""
    if settings.transport == "local":
        from pushorch.transport.local import LocalTransport

        return LocalTransport(settings)
    if settings.transport == "paramiko":
        from pushorch.transport.paramiko import ParamikoTransport

        return ParamikoTransport(settings, shared)
    from pushorch.transport.asyncssh import AsyncsshTransport

    return AsyncsshTransport(settings, shared)

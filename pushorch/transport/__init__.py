"""Transports: the only code that talks to hosts (asyncssh default, paramiko, local, fake)."""

from __future__ import annotations

from pushorch.connection import ConnectionSettings
from pushorch.transport.base import Result, Shared, TcpStream, Transport

__all__ = ["Result", "Shared", "TcpStream", "Transport", "open_transport"]


def open_transport(settings: ConnectionSettings, shared: Shared | None = None) -> Transport:
    """A transport of the kind the settings name (not yet connected)."""
    if settings.transport == "local":
        from pushorch.transport.local import LocalTransport

        return LocalTransport(settings)
    if settings.transport == "paramiko":
        from pushorch.transport.paramiko import ParamikoTransport

        return ParamikoTransport(settings, shared)
    from pushorch.transport.asyncssh import AsyncsshTransport

    return AsyncsshTransport(settings, shared)

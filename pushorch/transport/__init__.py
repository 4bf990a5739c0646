"""Transports: the only code that talks to hosts (asyncssh default, paramiko, local, fake)."""

from __future__ import annotations

import warnings

from pushorch.connection import ConnectionSettings
from pushorch.transport.base import Result, Shared, TcpStream, Transport

__all__ = ["Result", "Shared", "TcpStream", "Transport", "open_transport"]

# cryptography 47+ deprecates DSA, and asyncssh and paramiko still name its classes when imported:
# every run printed five CryptographyDeprecationWarning lines about code that is not the user's.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"(asyncssh|paramiko)(\.|$)")


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

"""TLS over any TcpStream (a channel the SSH connection forwards): ssl's memory BIOs, no socket.

The controller is the TLS client, so certificates are verified on the controller against its CA
file, whatever the host's own trust store holds.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TypeVar

from pushorch.transport.base import TcpStream

T = TypeVar("T")


def client_context(ca_file: str | None, cert_file: str | None, key_file: str | None, verify: bool) -> ssl.SSLContext:
    """A client context: the given CA (or the system's), an optional client certificate."""
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    if not verify:  # consul_http_ssl_verify: false, as CONSUL_HTTP_SSL_VERIFY=false does
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class TlsStream:
    """A TcpStream that speaks TLS over another one."""

    def __init__(self, raw: TcpStream, context: ssl.SSLContext, server_name: str) -> None:
        self._raw = raw
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_name)

    async def handshake(self) -> None:
        await self._pump(self._tls.do_handshake)

    async def read(self, n: int = -1) -> bytes:
        try:
            return await self._pump(lambda: self._tls.read(n if n > 0 else 65536))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""  # the peer closed (with or without close_notify): end of stream

    async def write(self, data: bytes) -> None:
        await self._pump(lambda: self._tls.write(data))

    async def close(self) -> None:
        await self._raw.close()

    async def _pump(self, step: Callable[[], T]) -> T:
        """Run one TLS step, feeding it the raw stream's bytes until it has what it needs."""
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                await self._flush()
                chunk = await self._raw.read(65536)
                if chunk:
                    self._incoming.write(chunk)
                else:
                    self._incoming.write_eof()
                continue
            await self._flush()
            return result

    async def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            await self._raw.write(pending)

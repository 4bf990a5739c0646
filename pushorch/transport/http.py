"""pushorch's one HTTP client: HTTP/1.1 (h11 parses it) over a TcpStream the host's SSH connection
forwards, inside TLS when asked. Two uses: a host's Consul agent (`HttpPool`: kept-alive
connections, so a run opens one channel and does one TLS handshake per agent, reused by every call
and every poll of a gate) and an app's health endpoint (`probe`: a new connection each time, as a
client of the app would open one)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import weakref
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import Any

import h11

from pushorch.transport.base import TcpStream
from pushorch.transport.tls import TlsStream

MAX_BODY = 1 << 22  # a Consul catalog of thousands of services fits; anything bigger is not an answer
BODY_SHOWN = 120  # bytes of a failing health answer's body a gate shows


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self, default: Any) -> Any:
        with contextlib.suppress(ValueError):
            return json.loads(self.body) if self.body else default
        return default


class HttpError(OSError):
    """The peer's bytes were not an HTTP answer (or it closed before one): no answer, as a refused
    connection is."""


class HttpConnection:
    """One HTTP/1.1 connection: requests one after another while the server keeps it open."""

    def __init__(self, stream: TcpStream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.heard = False  # did any byte of the current request's answer arrive

    @property
    def reusable(self) -> bool:
        return self._h11.our_state is h11.IDLE and self._h11.their_state is h11.IDLE

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"", head_only: bool = False
    ) -> Reply:
        """Send one request and read its answer; `head_only`: the status and headers, no body (the
        connection is then not reused)."""
        self.heard = False
        try:
            send = self._h11.send
            data = send(
                h11.Request(method=method, target=target, headers=[*headers, ("Content-Length", str(len(body)))])
            )
            data += (send(h11.Data(data=body)) or b"") if body else b""
            data += send(h11.EndOfMessage()) or b""
            await self._stream.write(data)
            response = await self._next(h11.Response)
            assert isinstance(response, h11.Response)
            found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
            if head_only:
                return Reply(response.status_code, b"", found)
            chunks: list[bytes] = []
            size = 0
            while not isinstance(event := await self._next(h11.Data, h11.EndOfMessage), h11.EndOfMessage):
                assert isinstance(event, h11.Data)
                size += len(event.data)
                if size > MAX_BODY:
                    raise HttpError(f"an answer of more than {MAX_BODY} bytes")
                chunks.append(bytes(event.data))
            if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
                self._h11.start_next_cycle()
            return Reply(response.status_code, b"".join(chunks), found)
        except h11.ProtocolError as exc:
            raise HttpError(f"no HTTP answer ({exc})") from None

    async def body_start(self, limit: int) -> bytes:
        """Up to `limit` bytes of the body of the answer whose head `request(head_only=True)` read;
        whatever came before the peer closed or broke the protocol."""
        chunks: list[bytes] = []
        with contextlib.suppress(HttpError, h11.ProtocolError):
            while sum(map(len, chunks)) < limit:
                event = await self._next(h11.Data, h11.EndOfMessage)
                if not isinstance(event, h11.Data):
                    break
                chunks.append(bytes(event.data))
        return b"".join(chunks)[:limit]

    async def _next(self, *kinds: type) -> object:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                chunk = await self._stream.read(65536)
                self.heard = self.heard or bool(chunk)
                self._h11.receive_data(chunk)  # b"": the peer closed
                continue
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue and the like come before the answer
            if isinstance(event, kinds):
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise HttpError("the connection closed before an answer")
            raise HttpError(f"unexpected {type(event).__name__}")

    async def close(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._stream.close()


Opener = Callable[[], Awaitable[TcpStream]]


async def connect(open_tcp: Opener, tls: ssl.SSLContext | None, server_name: str) -> HttpConnection:
    stream = await open_tcp()
    if tls is not None:
        wrapped = TlsStream(stream, tls, server_name)
        try:
            await wrapped.handshake()
        except BaseException:
            await stream.close()
            raise
        return HttpConnection(wrapped)
    return HttpConnection(stream)


class HttpPool:
    """Kept-alive connections to one endpoint (a host's agent), reused one request at a time each:
    calls at once take another connection; an idle one the server closed is replaced once."""

    def __init__(self) -> None:
        self._idle: list[HttpConnection] = []
        self.opened = 0  # connections opened (channels, TLS handshakes): what a run costs the host

    async def request(
        self,
        open_tcp: Opener,
        tls: ssl.SSLContext | None,
        server_name: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
    ) -> Reply:
        while self._idle:
            connection = self._idle.pop()
            try:
                reply = await connection.request(method, target, headers, body)
            except (OSError, ssl.SSLError):
                await connection.close()
                if connection.heard:
                    raise
                # Kept alive, then closed by the agent while idle (its idle timeout, a restart): not
                # a byte of an answer came, so the request goes again on a new connection.
                continue
            except BaseException:  # cancelled or timed out mid-request: its state is unknown
                await connection.close()
                raise
            await self._keep(connection)
            return reply
        connection = await connect(open_tcp, tls, server_name)
        self.opened += 1
        try:
            reply = await connection.request(method, target, headers, body)
        except BaseException:
            await connection.close()
            raise
        await self._keep(connection)
        return reply

    async def _keep(self, connection: HttpConnection) -> None:
        if connection.reusable:
            self._idle.append(connection)
        else:
            await connection.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(c.close() for c in idle))


# One pool per (run's transport, endpoint): weak keys, so the pools go with the run's connections.
_pools: weakref.WeakKeyDictionary[Any, dict[tuple[str, int, bool], HttpPool]] = weakref.WeakKeyDictionary()


def pool(owner: object, host: str, port: int, tls: bool) -> HttpPool:
    """The pool of `owner`'s (a transport's) connections to host:port."""
    pools = _pools.setdefault(owner, {})
    return pools.setdefault((host, port, tls), HttpPool())


async def probe(
    stream: TcpStream, path: str, expect: Container[int] = (), host: str = "localhost"
) -> tuple[int, bytes]:
    """One GET on a new connection, closed after: the status code (HttpError when no HTTP answer) and,
    when it is not one of `expect`, the first bytes of the body (what a failed gate shows)."""
    connection = HttpConnection(stream)
    headers = [("Host", host), ("User-Agent", "pushorch"), ("Connection", "close")]
    status = (await connection.request("GET", path, headers, head_only=True)).status
    return status, b"" if status in expect else await connection.body_start(BODY_SHOWN)

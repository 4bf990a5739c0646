"""The local transport: commands as subprocesses of the controller (ansible_connection=local)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from pushorch.connection import ConnectionSettings
from pushorch.errors import CommandTimeout
from pushorch.transport.base import (
    OnLine,
    Result,
    StreamPair,
    TcpStream,
    Terminal,
    check_become,
    command_line,
    decode,
    password_line,
    put_argv,
    stdin_for,
    time_limit,
    timeout_message,
)


class LocalTransport:
    """Runs on the controller itself, through sh, with the same quoting and become as SSH."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    async def connect(self) -> None:
        return None

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        become: bool | None = None,
    ) -> Result:
        command = command_line(self.settings, argv, become)
        limit = time_limit(self.settings, timeout)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            feed = stdin_for(self.settings, stdin, become) or b""
            out, err = await asyncio.wait_for(process.communicate(feed), limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise CommandTimeout(self.settings.name, timeout_message(argv, limit)) from None
        code = process.returncode if process.returncode is not None else -1
        status = code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as a shell reports it
        result = Result(self.settings.name, command, status, decode(out), decode(err), time.monotonic() - started)
        return check_become(self.settings, result, become)

    async def put(self, data: bytes, path: str, mode: int = 0o644, *, become: bool | None = None) -> None:
        (await self.run(put_argv(path, mode), stdin=data, become=become)).check(f"write {path}")

    async def stream(self, argv: Sequence[str], on_line: OnLine, *, become: bool | None = None) -> int:
        command = command_line(self.settings, argv, become)
        pipe = asyncio.subprocess.PIPE
        process = await asyncio.create_subprocess_exec("sh", "-c", command, stdin=pipe, stdout=pipe, stderr=pipe)
        if (line := password_line(self.settings, become)) and process.stdin is not None:
            process.stdin.write(line)

        async def pump(reader: asyncio.StreamReader | None, name: str) -> None:
            while reader is not None and (line := await reader.readline()):
                on_line(name, decode(line).rstrip("\n"))

        try:
            await asyncio.gather(pump(process.stdout, "stdout"), pump(process.stderr, "stderr"))
            return await process.wait()
        finally:
            if process.stdin is not None:
                process.stdin.close()  # as an SSH channel closing ends the remote stdin
            if process.returncode is None:
                await process.wait()

    async def interactive(self, argv: Sequence[str], terminal: Terminal, *, become: bool | None = None) -> int:
        """Without a pseudo-terminal: the command's input and output go through pipes."""

        def out(_: str, line: str) -> None:
            terminal.write(line.encode() + b"\n")

        return await self.stream(argv, out, become=become)

    async def open_tcp(self, host: str, port: int) -> TcpStream:
        reader, writer = await asyncio.open_connection(host, port)
        return StreamPair(reader, writer)

    async def close(self) -> None:
        return None

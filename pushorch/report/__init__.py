"""Everything pushorch prints goes through here: problems, JSON documents, tables."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pushorch.errors import InputError, PushorchError
from pushorch.secret import redact, scrub

if TYPE_CHECKING:  # types only: the reporter prints what the runtime hands it, it imports no runtime
    from rich.progress import Progress, TaskID

    from pushorch.fanout import HostOutcome


def _out(text: str) -> None:
    """Every byte pushorch prints goes through here or _err: scrubbed of known secret values."""
    sys.stdout.write(scrub(text))


def _err(text: str) -> None:
    sys.stderr.write(scrub(text))


def print_json(document: object, indent: int | None = 4, sort_keys: bool = True) -> None:
    """A JSON document on stdout (secrets redacted; non-JSON scalars such as dates as strings; keys as
    strings, so {80: .., "ssh": ..} sorts; UTF-8 as it is, as ansible-inventory prints it)."""
    text = json.dumps(
        _string_keys(redact(document)), indent=indent, sort_keys=sort_keys, default=str, ensure_ascii=False
    )
    _out(text + "\n")


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def print_json_lines(documents: Sequence[object]) -> None:
    """One JSON document per line (secrets redacted)."""
    _out("".join(json.dumps(redact(d), sort_keys=True, default=str) + "\n" for d in documents))


def print_text(text: str) -> None:
    _out(text + ("" if text.endswith("\n") else "\n"))


def print_error(error: PushorchError) -> None:
    """One line per problem on stderr, `path:line:col: key/path: message`."""
    if isinstance(error, InputError):
        for problem in error.problems:
            _err(f"{problem}\n")
        count = len(error.problems)
        _err(f"error: {count} problem{'s' if count != 1 else ''} in the input; nothing was changed\n")
    else:
        _err(f"error: {error}\n")


def print_internal_error(trace: str) -> None:
    """A bug's traceback (scrubbed of secret values like everything else), and what to do."""
    _err(trace)
    _err("pushorch: internal error (a bug); please report it with the traceback above\n")


class ExecReporter:
    """Output of `exec`: each host's block as it finishes (or JSON lines), a progress bar on a terminal."""

    def __init__(self, total: int, as_json: bool = False, verbosity: int = 0) -> None:
        self.total, self.as_json, self.verbosity = total, as_json, verbosity
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ExecReporter:
        if not self.as_json and sys.stderr.isatty() and self.total > 1:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("exec"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("exec", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def host_done(self, outcome: HostOutcome) -> None:
        if self.as_json:
            result = outcome.result
            record = {
                "host": outcome.host,
                "status": outcome.status,
                "rc": result.exit_status if result else None,
                "stdout": result.stdout if result else "",
                "stderr": result.stderr if result else "",
                "duration": round(outcome.duration, 4),
                "error": outcome.error,
            }
            _out(json.dumps(redact(record), default=str) + "\n")
        else:
            _out(self._block(outcome))
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    @staticmethod
    def _block(outcome: HostOutcome) -> str:
        if outcome.status == "skipped":
            return f"{outcome.host} | SKIPPED | {outcome.error}\n"
        if outcome.result is None:
            label = "UNREACHABLE!" if outcome.status == "unreachable" else "FAILED"
            return f"{outcome.host} | {label} => {outcome.error}\n"
        result = outcome.result
        label = "OK" if result.ok else "FAILED"
        text = f"{outcome.host} | {label} | rc={result.exit_status} >>\n{result.stdout}"
        if result.stderr:
            text += ("" if text.endswith("\n") else "\n") + result.stderr
        return text if text.endswith("\n") else text + "\n"

    def recap(self, outcomes: list[HostOutcome]) -> None:
        counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("ok", "failed", "unreachable", "skipped")}
        if self.as_json:
            return
        skipped = f"  skipped={counts['skipped']}" if counts["skipped"] else ""
        _err(
            f"recap: {len(outcomes)} hosts  ok={counts['ok']}  failed={counts['failed']}  "
            f"unreachable={counts['unreachable']}{skipped}\n"
        )


class LogPrinter:
    """`logs`: each line as `host | text`, the host in a colour of its own on a terminal."""

    COLOURS = ("36", "33", "35", "32", "34", "31")

    def __init__(self, hosts: list[str]) -> None:
        width = max((len(h) for h in hosts), default=0)
        colour = sys.stdout.isatty()
        self._prefix = {
            h: (f"\033[{self.COLOURS[i % len(self.COLOURS)]}m{h:<{width}}\033[0m" if colour else f"{h:<{width}}")
            for i, h in enumerate(hosts)
        }

    def line(self, host: str, text: str) -> None:
        _out(f"{self._prefix.get(host, host)} | {text}\n")
        sys.stdout.flush()

    def problem(self, host: str, text: str) -> None:
        _err(f"{host}: {text}\n")


def warn_line(text: str) -> None:
    """One line on stderr, as given."""
    _err(text + "\n")


def warn(message: str) -> None:
    _err(f"warning: {message}\n")


def print_error_line(line: str) -> None:
    _err(line + "\n")


def host_key_warning(hosts: list[str]) -> str:
    """Said on every run that connects without verifying host keys."""
    shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
    return f"host keys are NOT verified for {shown} (host_key_checking: off); anyone on the path can impersonate them"


def say(message: str) -> None:
    """A progress line on stderr (long steps say what they are doing)."""
    _err(f"pushorch: {message}\n")
    sys.stderr.flush()


def print_table(columns: list[str], rows: Sequence[Mapping[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console = Console(width=200, file=io.StringIO())
    console.print(table)
    _out(console.file.getvalue())  # type: ignore[attr-defined]


# The reporters of plan, apply and reconcile (imported here so `pushorch.report` stays the one door).
from pushorch.report.runs import ApplyReporter as ApplyReporter  # noqa: E402
from pushorch.report.runs import ReconcileReporter as ReconcileReporter  # noqa: E402
from pushorch.report.runs import print_plan as print_plan  # noqa: E402

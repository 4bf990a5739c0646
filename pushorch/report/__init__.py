"""Everything pushorch prints goes through here: problems, JSON documents, tables."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pushorch.errors import InputError, PushorchError
from pushorch.secret import redact, scrub

if TYPE_CHECKING:  # types only: the reporter prints what the runtime hands it, it imports no runtime
    from rich.progress import Progress, TaskID

    from pushorch.actions import Plan
    from pushorch.converge import Outcome
    from pushorch.events import Event
    from pushorch.execute.batches import RolloutReport
    from pushorch.fanout import HostOutcome
    from pushorch.report.live import LiveApply


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
        counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("ok", "failed", "unreachable")}
        if self.as_json:
            return
        _err(
            f"recap: {len(outcomes)} hosts  ok={counts['ok']}  failed={counts['failed']}  "
            f"unreachable={counts['unreachable']}\n"
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


_SIGNS = {
    "install": "+",
    "start": "+",
    "write": "~",
    "ensure": "~",
    "run": "!",
    "pull": "+",
    "ship": "+",
    "restart": "~",
    "remove": "-",
    "register": "+",
    "deregister": "-",
    "reload": "~",
    "replace": "~",
}


def print_plan(plan: Plan, unreachable: dict[str, str]) -> None:
    """The plan, host by host: one line per action with its reason."""
    lines = []
    for host, actions in plan.by_host().items():
        lines.append(f"{host}:")
        for action in actions:
            lines.append(f"  {_SIGNS.get(action.shown_verb, '*')} {action.describe()}")
    if plan.host_batches:
        limits = [f"max_fail_percentage {plan.max_fail_percentage:g}"] if plan.max_fail_percentage is not None else []
        limits += ["any_errors_fatal"] if plan.any_errors_fatal else []
        batches = " then ".join("[" + ", ".join(b) + "]" for b in plan.host_batches)
        lines.append(f"host batches (serial): {batches}" + (f"; {', '.join(limits)}" if limits else ""))
    for rollout in plan.rollouts:
        total = len(rollout.batches)
        lines.append(
            f"rollout {rollout.service}: {total} batch{'es' if total != 1 else ''}, "
            f"max_failures {rollout.max_failures}, max_unreachable {rollout.max_unreachable}, "
            f"auto_revert {'on' if rollout.auto_revert else 'off'}"
            + (f", {rollout.delay:g}s between batches" if rollout.delay else "")
            + (
                f"; then unused images of {rollout.image_repository} beyond the newest {rollout.keep_images} go"
                if rollout.image_repository
                else ""
            )
        )
        if rollout.depends_on:
            lines.append(f"  after: {', '.join(rollout.depends_on)} (their rollouts complete first)")
        lines.extend(f"  hook {kind}: {' '.join(argv)[:100]}" for kind, argv in rollout.hooks)
        lines.extend(f"  job {job.name} on {job.host} (before batch 1)" for job in rollout.jobs)
        for index, batch in enumerate(rollout.batches):
            lines.append(f"  batch {index + 1}:")
            lines.extend(f"    {a.host}: {_SIGNS.get(a.shown_verb, '*')} {a.describe()}" for a in batch)
    for host, error in sorted(unreachable.items()):
        lines.append(f"{host}: UNREACHABLE: {error}")
    lines.extend(f"failover: {note}" for note in plan.notes)
    count = len(plan.steps)
    lines.append(
        f"plan: {count} change{'s' if count != 1 else ''} on {len(plan.hosts)} host(s)"
        if count
        else "plan: nothing to do"
    )
    print_text("\n".join(lines))


class ApplyReporter:
    """apply's output: one line per change as it happens, then Ansible's recap per host. On a terminal
    (not --json) the lines scroll above a live view of the work in flight (report/live.py)."""

    def __init__(self, hosts: list[str], as_json: bool = False, live: bool | None = None) -> None:
        self.hosts, self.as_json = hosts, as_json
        if live is None:
            live = not as_json and sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb"
        self._live: LiveApply | None = None
        if live:
            from pushorch.report.live import LiveApply

            self._live = LiveApply()

    def event(self, event: Event) -> None:
        if event.status == "started" and self._live is None:
            return  # only the live view shows what is starting; lines say what finished
        if self.as_json:
            record = {
                "host": event.host,
                "status": event.status,
                "message": event.message,
                "duration": round(event.duration, 3),
                "action": event.action.to_json() if event.action else None,
            }
            _out(json.dumps(redact(record), default=str) + "\n")
            return
        line = self._line(event)
        if self._live is not None:
            self._live.event(event, line)
            return
        _out(line)
        sys.stdout.flush()

    @staticmethod
    def _line(event: Event) -> str:
        what = event.action.describe() if event.action else "probe"
        if not event.host:  # a rollout's own news: batch started, stopped, aborted
            return f"==> {event.message}\n"
        if event.status == "progress":
            return f"{event.host} | {event.message} [{event.duration:.1f}s]\n"
        if event.status == "reverted":
            return f"{event.host} | reverted | {event.message}\n"
        if event.status == "diff":
            return event.message or f"{event.host}: {what}: no textual difference\n"
        if event.status == "changed":
            return f"{event.host} | changed | {what}\n"
        return f"{event.host} | {event.status.upper()} | {what} => {event.message}\n"

    def recap(self, outcome: Outcome) -> None:
        if self._live is not None:
            self._live.stop()
        rows = []
        for host in self.hosts:
            changed = sum(1 for e in outcome.events if e.host == host and e.status == "changed")
            rows.append(
                {
                    "host": host,
                    "ok": 0 if host in outcome.unreachable or host in outcome.failed else 1,
                    "changed": changed,
                    "failed": 1 if host in outcome.failed else 0,
                    "unreachable": 1 if host in outcome.unreachable else 0,
                }
            )
        if self.as_json:
            summary = {
                "summary": rows,
                "passes": outcome.passes,
                "failed": outcome.failed,
                "unreachable": outcome.unreachable,
                "rollouts": [r.to_json() for r in outcome.rollouts],
            }
            _out(json.dumps(redact(summary), default=str) + "\n")
            return
        _out("\nRECAP\n")
        sys.stdout.flush()
        print_table(["host", "ok", "changed", "failed", "unreachable"], rows)
        for report in outcome.rollouts:
            _out(_rollout_line(report) + "\n")


def _rollout_line(report: RolloutReport) -> str:
    """One line per rollout: how it ended, what was reverted, and pushorch's own time beyond the waits."""
    ended = (
        f"ABORTED ({report.stopped})" if report.aborted else f"STOPPED ({report.stopped})" if report.stopped else "done"
    )
    parts = [f"rollout {report.service}: {ended}", f"updated {len(report.done)}"]
    if report.reverted:
        parts.append("reverted " + ", ".join(report.reverted))
    if report.skipped:
        parts.append("not started " + ", ".join(report.skipped))
    parts.append(f"{report.wall:.1f}s ({report.waiting:.1f}s waiting for health, {report.own:.1f}s pushorch's own)")
    return "; ".join(parts)


class ReconcileReporter:
    """reconcile's output, for cron: nothing when nothing changed, else a short summary (stdout);
    problems on stderr; with --json the events as JSON lines and one summary object; --log-file
    appends the same JSON lines, with a timestamp, on every run."""

    def __init__(self, as_json: bool = False, log_file: str | None = None) -> None:
        self.as_json, self.log_file = as_json, log_file
        self.events: list[Event] = []
        self.notes: list[str] = []  # what failover waits for: printed with the problems

    @staticmethod
    def _record(event: Event) -> dict[str, object]:
        return {
            "host": event.host,
            "status": event.status,
            "message": event.message,
            "what": event.action.describe() if event.action else "",
            "action": event.action.to_json() if event.action else None,
        }

    def event(self, event: Event) -> None:
        if event.status == "started":
            return  # cron and logs want what happened, not what began
        self.events.append(event)
        if event.status == "progress" and not event.host:
            self.notes.append(event.message)
        if self.as_json:
            _out(json.dumps(redact(self._record(event)), default=str) + "\n")

    def summary(self, outcome: Outcome) -> None:
        from datetime import UTC, datetime

        changed = [e for e in self.events if e.status in ("changed", "reverted")]
        hosts_changed = sorted({e.host for e in changed})
        now = datetime.now(UTC).isoformat(timespec="seconds")
        document: dict[str, object] = {
            "reconcile": "changed" if changed else "converged",
            "time": now,
            "changes": len(changed),
            "hosts_changed": hosts_changed,
            "failed": outcome.failed,
            "unreachable": outcome.unreachable,
            "rollouts": [r.to_json() for r in outcome.rollouts],
        }
        if self.log_file:
            with open(self.log_file, "a", encoding="utf-8") as handle:
                for record in [*(self._record(e) for e in self.events), document]:
                    handle.write(scrub(json.dumps(redact({"time": now, **record}), default=str)) + "\n")
        if self.as_json:
            _out(json.dumps(redact(document), default=str) + "\n")
            return
        if changed:
            lines = [f"reconcile: {len(changed)} change(s) on {', '.join(hosts_changed)}"]
            lines += [f"  {e.host}: {e.action.describe() if e.action else ''} {e.message}".rstrip() for e in changed]
            lines += [_rollout_line(r) for r in outcome.rollouts]
            _out("\n".join(lines) + "\n")
        for host, error in sorted({**outcome.unreachable, **outcome.failed}.items()):
            _err((error if error.startswith(f"{host}:") else f"{host}: {error}") + "\n")
        for note in self.notes:
            _err(f"failover: {note}\n")

"""What plan, apply and reconcile print: the plan, apply's lines and recap (and its live view on a
terminal), reconcile's quiet report; text or JSON lines."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from pushorch.secret import redact, scrub

if TYPE_CHECKING:  # types only: the reporter prints what the runtime hands it, it imports no runtime
    from pushorch.actions import Plan
    from pushorch.converge import Outcome
    from pushorch.events import Event
    from pushorch.execute.batches import RolloutReport
    from pushorch.report.live import LiveApply


from pushorch.report import _err, _out, print_table, print_text

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
    if plan.after:
        lines.append("after every rollout completed:")
        lines.extend(f"  {a.host}: {_SIGNS.get(a.shown_verb, '*')} {a.describe()}" for a in plan.after)
    for host, error in sorted(unreachable.items()):
        lines.append(f"{host}: UNREACHABLE: {error}")
    lines.extend(f"note: {note}" for note in plan.notes)
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


def _reconcile_state(outcome: Outcome, changed: bool) -> str:
    """How the fleet ended: "converged" only when every host is where the playbooks say."""
    if outcome.failed or outcome.aborted or outcome.lock_lost:
        return "failed"
    if outcome.unreachable:
        return "unreachable"
    return "changed" if changed else "converged"


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
            "reconcile": _reconcile_state(outcome, bool(changed)),
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

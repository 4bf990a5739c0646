"""The `pushorch` command group and the one place errors become exit codes."""

from __future__ import annotations

import sys
import traceback

import click

from pushorch import __version__
from pushorch.cli.app import App
from pushorch.cli.check_cmd import check
from pushorch.cli.converge_cmds import apply, plan, restart, rollback, status
from pushorch.cli.convert_cmd import convert
from pushorch.cli.doctor_cmd import doctor
from pushorch.cli.exec_cmd import exec_
from pushorch.cli.history_cmd import history
from pushorch.cli.inventory_cmd import inventory
from pushorch.cli.lab_cmd import lab
from pushorch.cli.logs_cmd import logs
from pushorch.cli.maintenance_cmd import maintenance
from pushorch.cli.prune_cmd import prune
from pushorch.cli.reconcile_cmd import lock, reconcile
from pushorch.errors import ExitStatus, PushorchError
from pushorch.report import print_error, print_internal_error
from pushorch.secret import secrets_of_one_run


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="pushorch")
@click.option("-v", "--verbose", count=True, help="More output (-vvv for the most).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Agentless push orchestration: inventory + playbooks -> Docker services over SSH."""
    ctx.ensure_object(App).verbosity = verbose


cli.add_command(inventory)
cli.add_command(check)
cli.add_command(convert)
cli.add_command(exec_)
cli.add_command(lab)
cli.add_command(plan)
cli.add_command(apply)
cli.add_command(status)
cli.add_command(rollback)
cli.add_command(restart)
cli.add_command(reconcile)
cli.add_command(lock)
cli.add_command(history)
cli.add_command(logs)
cli.add_command(prune)
cli.add_command(maintenance)
cli.add_command(doctor)


def _docker_style(args: list[str]) -> list[str]:
    """`exec -it` as Docker users type it: -i is Ansible's --inventory, so `-it` (which would read as
    "-i t") means --interactive before the command's `--`. And `exec -l HOST -- CMD`, as the README
    writes it: no PATTERN before `--` with a --limit given means `all` (the limit narrows it)."""
    if not args or args[0] != "exec":
        return args
    end = args.index("--") if "--" in args else len(args)
    head = [("--interactive" if a == "-it" else a) for a in args[:end]]
    if end < len(args) and _limited_without_pattern(head[1:]):
        head.append("all")
    return head + args[end:]


def _limited_without_pattern(words: list[str]) -> bool:
    """Options only (a --limit among them), no positional word: exec's PATTERN was left out."""
    valued = {
        name
        for p in exec_.params
        if isinstance(p, click.Option) and not p.is_flag and not p.count
        for name in (*p.opts, *p.secondary_opts)
    }
    limited = positional = False
    it = iter(words)
    for word in it:
        name = word.split("=", 1)[0]
        if not word.startswith("-") or word == "-":
            positional = True
        elif name in valued and "=" not in word:
            limited |= name in ("-l", "--limit")
            next(it, None)  # its value
        else:
            limited |= name in ("-l", "--limit") or (word.startswith("-l") and not word.startswith("--"))
    return limited and not positional


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with an ExitStatus; the only catch of PushorchError."""
    with secrets_of_one_run():  # the scrubber knows this invocation's secrets, no other's
        sys.exit(_run(list(sys.argv[1:] if argv is None else argv)))


def _run(args: list[str]) -> int:
    from pushorch.ansible import config as ansible_cfg

    ansible_cfg.forget()  # read for this invocation (in-process callers change directory and environment)
    app = App(command=("pushorch", *args))  # this invocation's run context, handed to every command
    try:
        status = cli.main(args=_docker_style(args), prog_name="pushorch", standalone_mode=False, obj=app)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(ExitStatus.USAGE)
    except click.Abort:
        return 130
    except PushorchError as exc:
        print_error(exc)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return 130
    except Exception:
        print_internal_error(traceback.format_exc())
        return int(ExitStatus.INTERNAL_ERROR)
    return int(status or 0)

"""The App object every command receives in ctx.obj, and the options commands share."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pushorch.ansible.inventory import Inventory

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True)
class App:
    """One invocation's run context, in ctx.obj: built by the CLI from the command line and
    ansible.cfg as the options are parsed, then handed down explicitly (`load_context()`,
    `Locking.command`); nothing below the CLI keeps state of its own."""

    verbosity: int = 0
    command: tuple[str, ...] = ()  # the command line as given (recorded with credentials redacted)
    vault_secrets: list[Any] = field(default_factory=list)  # VaultSecret each
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()
    compose_hosts: str | None = None  # cli/compose_opts.py
    profiles: tuple[str, ...] = ()
    image_map: tuple[tuple[str, str], ...] = ()


def current_app() -> App:
    """This invocation's App (a fresh one outside a click invocation, e.g. a helper called by a test)."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(App) if ctx is not None else None
    return found if found is not None else App()


def load_context() -> Any:
    """What the loaders need from this invocation: its vault passwords, the runners of `!secret_cmd`
    and inventory scripts, and its --tags selection (a LoadContext)."""
    from pushorch import secret_command
    from pushorch.ansible import scripts
    from pushorch.ansible.tags import Selection
    from pushorch.load.context import ComposeOptions, LoadContext

    app = current_app()
    return LoadContext(
        vault_secrets=tuple(app.vault_secrets),
        secret_command=secret_command.run,
        inventory_script=scripts.run,
        selection=Selection(app.tags, app.skip_tags),
        compose=ComposeOptions(dict(os.environ), app.profiles, app.compose_hosts, app.image_map),
    )


def inventory_option(func: F) -> F:
    """-i/--inventory, repeatable, like Ansible's; PUSHORCH_INVENTORY when not given. With it, the
    vault options: whatever loads an inventory may meet vault-encrypted files."""
    func = click.option(
        "-i",
        "--inventory",
        "inventories",
        multiple=True,
        metavar="SOURCE",
        help="Inventory file, directory or 'host1,host2,' list (repeatable).",
    )(func)
    return vault_options(func)


def _vault_files(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    """Eager, so it runs first: the run's vault passwords start from these files (or
    ANSIBLE_VAULT_PASSWORD_FILE, or ansible.cfg's vault_password_file)."""
    from pushorch.ansible import config as ansible_cfg
    from pushorch.ansible import vault_sources

    files = list(value) or ansible_cfg.current().vault_password_files
    secrets = [_vault_secret(vault_sources.secret_from, "--vault-password-file", f) for f in files]
    ctx.ensure_object(App).vault_secrets[:] = secrets


def _vault_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    from pushorch.ansible import config as ansible_cfg
    from pushorch.ansible import vault, vault_sources

    for given in value or ansible_cfg.current().vault_identities:
        label, source = vault.parse_vault_id(given)
        ctx.ensure_object(App).vault_secrets.append(
            _vault_secret(vault_sources.secret_from, "--vault-id", source, label)
        )


def _ask_vault(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    from pushorch.ansible import vault_sources

    if value:
        ctx.ensure_object(App).vault_secrets.append(vault_sources.secret_from("prompt", prompt=True))


def _vault_secret(read: Callable[..., Any], option: str, *args: str) -> Any:
    from pushorch.ansible import vault
    from pushorch.errors import InputError, Problem

    try:
        return read(*args)
    except vault.VaultError as exc:
        raise InputError(Problem(option, 0, 0, "", str(exc))) from None


def _set_tags(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    from pushorch.ansible import tags

    app = ctx.ensure_object(App)
    if param.name == "tags":
        app.tags = tags.split(value)
    else:
        app.skip_tags = tags.split(value)


def tag_options(func: F) -> F:
    """Ansible's -t/--tags and --skip-tags (repeatable, comma-separated): which tasks run."""
    for names, name, text in (
        (("-t", "--tags"), "tags", "Only tasks (and plays' services) with these tags, plus `always`."),
        (("--skip-tags",), "skip_tags", "Not the tasks (and plays' services) with these tags."),
    ):
        func = click.option(
            *names, name, multiple=True, metavar="TAGS", expose_value=False, callback=_set_tags, help=text
        )(func)
    return func


def vault_options(func: F) -> F:
    """Ansible's vault options: --vault-password-file, --vault-id, --ask-vault-pass (-J)."""
    options = [
        click.option(
            "--vault-password-file",
            "--vault-pass-file",
            multiple=True,
            metavar="FILE",
            envvar="ANSIBLE_VAULT_PASSWORD_FILE",
            is_eager=True,
            expose_value=False,
            callback=_vault_files,
            help="Vault password file, or an executable that prints it (repeatable).",
        ),
        click.option(
            "--vault-id",
            multiple=True,
            metavar="LABEL@SOURCE",
            expose_value=False,
            callback=_vault_ids,
            help="A vault id and its password source: a file, an executable or 'prompt' (repeatable).",
        ),
        click.option(
            "-J",
            "--ask-vault-pass",
            "--ask-vault-password",
            is_flag=True,
            expose_value=False,
            callback=_ask_vault,
            help="Ask for the vault password.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def inventory_sources(given: tuple[str, ...]) -> list[str]:
    """The -i sources, with Vagrant projects (a dir with a Vagrantfile, or vagrant:DIR) resolved."""
    from pushorch.ansible import config as ansible_cfg
    from pushorch.vagrant import is_vagrant_source, vagrant_inventory

    sources = list(given) or [s for s in os.environ.get("PUSHORCH_INVENTORY", "").split(os.pathsep) if s]
    sources = sources or config().inventory  # ANSIBLE_INVENTORY or ansible.cfg's inventory, as Ansible
    if not sources:
        where = f" or `inventory` in {ansible_cfg.current().path}" if ansible_cfg.current().path else ""
        raise click.UsageError(f"no inventory: give -i SOURCE (or set PUSHORCH_INVENTORY{where})")
    return [vagrant_inventory(s) if is_vagrant_source(s) else s for s in sources]


def target_hosts(inventory: Inventory, pattern: str, limit: str | None) -> list[str]:
    """Hosts matching pattern and --limit (both may use @file); bad patterns are input errors."""
    from pushorch.ansible.patterns import select
    from pushorch.errors import InputError, Problem

    def read(path: str) -> str:
        with open(path, encoding="utf-8") as handle:
            return handle.read()

    hosts: list[str] = []
    for where, text in (("pattern", pattern), ("--limit", limit)):
        if not text:
            continue
        try:
            matched = select(inventory, text, read_file=read)
        except (OSError, ValueError, re.error) as exc:
            raise InputError(Problem(where, 0, 0, "", f"{text!r}: {exc}")) from None
        hosts = matched if where == "pattern" else [h for h in hosts if h in set(matched)]
    return hosts


def config() -> Any:
    """ansible.cfg (and ANSIBLE_* variables) as this run reads them; a file that cannot be read is bad input."""
    from pushorch.ansible import config as ansible_cfg
    from pushorch.errors import InputError, Problem

    try:
        return ansible_cfg.current()
    except ValueError as exc:
        raise InputError(Problem("ansible.cfg", 0, 0, "", str(exc))) from None


def make_overrides(connection: dict[str, Any]) -> Any:
    """The command line's connection settings over ansible.cfg's defaults (themselves below inventory vars)."""
    from pushorch.connection import Overrides

    return Overrides(**connection, defaults=config().variable_defaults())


def extra_vars_option(func: F) -> F:
    return click.option(
        "-e",
        "--extra-vars",
        "extra_vars",
        multiple=True,
        metavar="VARS",
        help="key=value, a JSON/YAML mapping, or @file.yml; highest precedence (repeatable).",
    )(func)


def limit_option(func: F) -> F:
    return click.option("-l", "--limit", metavar="PATTERN", help="Further limit hosts to a pattern.")(func)


def connection_options(func: F) -> F:
    """SSH options shared by every command that connects (Ansible's names where they exist)."""
    return _connection_options(func, ("-f", "--forks"))


def _connection_options(func: F, forks_names: tuple[str, ...]) -> F:
    options = [
        click.option(
            "--transport", type=click.Choice(["asyncssh", "paramiko"]), help="SSH library (default asyncssh)."
        ),
        click.option("-u", "--user", help="Connect as this user (overrides ansible_user)."),
        click.option("--private-key", "key_file", metavar="FILE", help="SSH private key file."),
        click.option("--known-hosts", metavar="FILE", help="known_hosts file (default ~/.ssh/known_hosts)."),
        click.option(
            "--host-key-checking",
            type=click.Choice(["strict", "accept-new", "off"]),
            help="strict (default): unknown or changed keys refused; accept-new: trust on first use; off.",
        ),
        click.option("--ssh-config", metavar="FILE", help="ssh_config file (default ~/.ssh/config)."),
        click.option("-T", "--timeout", "connect_timeout", type=float, help="Connect timeout in seconds (default 10)."),
        click.option("--command-timeout", type=float, help="Per-command timeout in seconds."),
        click.option("-b", "--become", is_flag=True, default=None, help="Run commands through sudo -n."),
        click.option(
            "-K",
            "--ask-become-pass",
            "become_password",
            is_flag=True,
            callback=_ask_become,
            help="Ask for the sudo password (sent on stdin, never in argv).",
        ),
        _forks_option(*forks_names),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _ask_become(ctx: click.Context, param: click.Parameter, value: bool) -> Any:
    """-K (or ansible.cfg's become_ask_pass): the become password, asked once on the terminal."""
    if not (value or config().flag("become_ask_pass")):
        return None
    import getpass

    from pushorch.secret import Secret

    return Secret(getpass.getpass("BECOME password: "))


def _forks_option(*names: str) -> Callable[[F], F]:
    return click.option(
        *names,
        "forks",
        type=click.IntRange(1),
        default=lambda: config().forks or 200,
        show_default="200, or ansible.cfg's forks",
        help="SSH handshakes in flight at once.",
    )


def lock_options(func: F) -> F:
    """The locks a mutating command takes: the local flock and the fleet lock on the lock host."""
    options = [
        click.option(
            "--lock-file",
            metavar="PATH",
            help="Local lock file (default $XDG_RUNTIME_DIR or ~/.cache: pushorch/run.lock).",
        ),
        click.option(
            "--lock-wait",
            type=click.FloatRange(0),
            default=0.0,
            metavar="SECONDS",
            help="Wait this long for a held lock before exiting 7 (default: exit at once).",
        ),
        click.option(
            "--lock-ttl",
            type=click.IntRange(10),
            default=None,
            metavar="SECONDS",
            help="Fleet lock expiry, renewed while the run lasts (default 900, or pushorch_lock_ttl).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def warn_inventory(inventory: Any) -> None:
    """What ansible-core warns about an inventory, said on stderr as it says it ([WARNING]: ...)."""
    from pushorch.report import print_error_line

    for line in inventory.warnings:
        print_error_line(f"[WARNING]: {line}")


def missing_controller_files(settings: Iterable[Any]) -> list[Any]:
    """The Consul TLS files the hosts' settings name on the controller that do not exist (read here:
    the settings themselves are computed without touching the disk); Problems, one per file and host."""
    from pushorch.errors import Problem

    problems = []
    for s in settings:
        named = {"consul_cacert": s.consul.ca_file, "consul_client_cert": s.consul.cert_file}
        named["consul_client_key"] = s.consul.key_file
        for name, path in named.items():
            if path and not os.path.isfile(path):
                problems.append(Problem(f"host {s.name}", 0, 0, "", f"{name}: no such file on the controller: {path}"))
    return problems


def warn_unverified(settings: Iterable[Any]) -> None:
    """Said on every run that connects to a host without verifying its key."""
    from pushorch.report import host_key_warning, warn

    unverified = [s.name for s in settings if s.host_key_checking == "off" and s.transport != "local"]
    if unverified:
        warn(host_key_warning(unverified))


def host_options(func: F) -> F:
    """-i, -l, -e and the SSH options: what every command that connects to hosts takes."""
    for option in (connection_options, extra_vars_option, limit_option, inventory_option):
        func = option(func)
    return func


def follow_host_options(func: F) -> F:
    """host_options for commands whose -f means --follow (`logs`): --forks keeps only its long name."""
    func = _connection_options(func, ("--forks",))
    for option in (extra_vars_option, limit_option, inventory_option):
        func = option(func)
    return func

"""What loading needs from outside the files, built once per run by the CLI and passed down: the
vault passwords, who runs `!secret_cmd` and inventory scripts, and the --tags selection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pushorch.ansible.tags import Selection
from pushorch.ansible.vault import VaultSecret

# `!secret_cmd COMMAND` -> (the secret, or None and why); (script, args) -> (its stdout, or None and why)
SecretCommand = Callable[[str], tuple[str | None, str]]
InventoryScript = Callable[[str, list[str]], tuple[str | None, str]]


@dataclass(frozen=True, slots=True)
class ComposeOptions:
    """What a compose file's loading takes from the command line and the shell, as docker compose
    does: the environment (over `.env`), --profile, the hosts that run it, and image renames."""

    environ: Mapping[str, str] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    hosts: str | None = None
    image_map: tuple[tuple[str, str], ...] = ()  # (as written, what to run instead)


@dataclass(frozen=True, slots=True)
class LoadContext:
    """The loaders run nothing and hold nothing of their own: without a runner, `!secret_cmd` and
    executable inventories are refused; without passwords, vaults cannot be opened."""

    vault_secrets: tuple[VaultSecret, ...] = ()
    secret_command: SecretCommand | None = None
    inventory_script: InventoryScript | None = None
    selection: Selection = field(default_factory=Selection)
    compose: ComposeOptions = field(default_factory=ComposeOptions)


NO_CONTEXT = LoadContext()

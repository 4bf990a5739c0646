"""An Ansible user's repository as it is: files encrypted by `ansible-vault` (ansible-core, a dev
dependency), ansible.cfg and ANSIBLE_* settings, and secrets from controller commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pushorch.connection import settings_for

PASSWORD = "vault-pw-for-tests-1"
OTHER = "vault-pw-for-prod-2"


def _bin(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not os.path.exists(found):
        pytest.fail(f"{name} not found: install the dev extras (pip install -e '.[dev]')")
    return found


def _ansible(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ANSIBLE_HOME": str(cwd / ".ansible-home"), "ANSIBLE_NOCOLOR": "1", **env}
    return subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=120)


def _encrypt(path: Path, *vault_args: str) -> None:
    done = _ansible([_bin("ansible-vault"), "encrypt", *vault_args, str(path)], path.parent)
    assert done.returncode == 0, done.stderr


def _encrypt_string(value: str, name: str, cwd: Path, *vault_args: str) -> str:
    done = _ansible([_bin("ansible-vault"), "encrypt_string", *vault_args, value, "--name", name], cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An inventory dir: a vault-encrypted INI inventory, whole-file vaulted group_vars (1.1), an inline
    !vault value under a vault id (1.2) in host_vars."""
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "prod-pw").write_text(OTHER + "\n")
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "hosts").write_text("[web]\nweb1 ansible_host=10.0.0.1\nweb2\n[db]\ndb1\n")
    _encrypt(inv / "hosts", "--vault-password-file", str(tmp_path / "pw"))
    (inv / "group_vars" / "web.yml").write_text("db_password: hunter2-group-secret\nworkers: 4\n")
    _encrypt(inv / "group_vars" / "web.yml", "--vault-password-file", str(tmp_path / "pw"))
    inline = _encrypt_string("inline-api-key-42", "api_key", tmp_path, "--vault-id", f"prod@{tmp_path / 'prod-pw'}")
    (inv / "host_vars" / "web1.yml").write_text(f"region: eu\n{inline}")
    return tmp_path


def _ids(repo: Path) -> list[str]:
    return ["--vault-password-file", str(repo / "pw"), "--vault-id", f"prod@{repo / 'prod-pw'}"]


def test_vaulted_inventory_and_vars_read_as_ansible_reads_them(repo: Path) -> None:
    theirs = _ansible([_bin("ansible-inventory"), "-i", "inventory", "--list", *_ids(repo)], repo)
    assert theirs.returncode == 0, theirs.stderr
    ours = subprocess.run(
        [sys.executable, "-m", "pushorch", "inventory", "-i", "inventory", "--list", *_ids(repo)],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert ours.returncode == 0, ours.stderr
    # The one difference, by design: a value from a whole-file vault is a secret pushorch never prints
    # (ansible-inventory prints it). The inline one is shown as Ansible shows it, by its envelope.
    expected = theirs.stdout.replace('"hunter2-group-secret"', '"********"')
    assert ours.stdout == expected
    assert "hunter2-group-secret" not in ours.stdout and "inline-api-key-42" not in ours.stdout
    assert "$ANSIBLE_VAULT;1.2;AES256;prod" in ours.stdout


def test_vault_label_order_scripts_and_environment(repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    script = repo / "pw-script.sh"
    script.write_text(f"#!/bin/sh\necho {PASSWORD}\n")
    script.chmod(0o700)
    client = repo / "prod-client.sh"  # Ansible's convention: *-client scripts are told the vault id
    client.write_text(f'#!/bin/sh\n[ "$1 $2" = "--vault-id prod" ] && echo {OTHER}\n')
    client.chmod(0o700)
    result = run_cli(
        "inventory", "-i", str(repo / "inventory"), "--host", "web1",
        "--vault-password-file", str(script), "--vault-id", f"prod@{client}",
    )  # fmt: skip
    assert result.status == 0, result.err
    assert json.loads(result.out)["region"] == "eu"
    os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(repo / "pw")
    try:  # the environment's file, plus the prod id from the command line
        result = run_cli("inventory", "-i", str(repo / "inventory"), "--list", "--vault-id", f"prod@{repo / 'prod-pw'}")
    finally:
        del os.environ["ANSIBLE_VAULT_PASSWORD_FILE"]
    assert result.status == 0, result.err


def test_a_wrong_or_missing_vault_password_is_bad_input_naming_the_file(repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (repo / "wrong").write_text("not-the-password\n")
    result = run_cli("inventory", "-i", str(repo / "inventory"), "--list", "--vault-password-file", str(repo / "wrong"))
    assert result.status == 3 and "Traceback" not in result.err
    assert (
        f"{repo / 'inventory' / 'hosts'}:1:1: Ansible Vault: none of the vault passwords given opens it" in result.err
    )
    result = run_cli("inventory", "-i", str(repo / "inventory"), "--list")
    assert result.status == 3 and "no vault password was given" in result.err
    result = run_cli("inventory", "-i", str(repo / "inventory"), "--list", "--vault-password-file", str(repo / "nope"))
    assert result.status == 3 and "--vault-password-file: vault password file" in result.err


def test_vaulted_vars_files_and_inline_secrets_in_a_playbook_stay_secret(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "secrets.yml").write_text("db_password: hunter2-vars-file\n")
    _encrypt(tmp_path / "secrets.yml", "--vault-password-file", str(tmp_path / "pw"))
    inline = _encrypt_string("inline-token-77", "token", tmp_path, "--vault-password-file", str(tmp_path / "pw"))
    inline = "\n".join("    " + line for line in inline.splitlines())
    (tmp_path / "app.yml").write_text(
        "- hosts: all\n  vars_files: [secrets.yml]\n  vars:\n"
        + inline
        + "\n  services:\n    - name: app\n      image: reg/app:1\n"
        "      env: {DB_PASSWORD: '{{ db_password }}', TOKEN: '{{ token }}'}\n"
    )
    result = run_cli("check", "-i", "h1,", "--vault-password-file", str(tmp_path / "pw"), str(tmp_path / "app.yml"))
    assert result.status == 0, result.err
    assert "hunter2-vars-file" not in result.out + result.err and "inline-token-77" not in result.out + result.err
    # What the hosts would get: the decrypted values, as secrets (so env goes to a 0600 env file).
    from pushorch.ansible import vault
    from pushorch.load.context import LoadContext
    from pushorch.load.playbooks import load_spec
    from pushorch.secret import Secret

    context = LoadContext(vault_secrets=(vault.VaultSecret("default", Secret(PASSWORD)),))
    spec = load_spec(["h1,"], (str(tmp_path / "app.yml"),), (), None, context)[1]
    env = spec.hosts["h1"].plays[0].services[0].env
    assert isinstance(env["DB_PASSWORD"], Secret) and env["DB_PASSWORD"].reveal() == "hunter2-vars-file"
    assert isinstance(env["TOKEN"], Secret) and env["TOKEN"].reveal() == "inline-token-77"


def test_secret_cmd_reads_a_command_and_hides_its_stderr(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    play = (
        '- hosts: all\n  vars:\n    token: !secret_cmd "printf cmd-secret-value-9"\n'
        "  services:\n    - name: app\n      image: reg/app:1\n      env: {TOKEN: '{{ token }}'}\n"
    )
    (tmp_path / "ok.yml").write_text(play)
    result = run_cli("check", "-i", "h1,", str(tmp_path / "ok.yml"))
    assert result.status == 0, result.err
    assert "cmd-secret-value-9" not in result.out
    (tmp_path / "bad.yml").write_text(
        play.replace("printf cmd-secret-value-9", "sh -c 'echo leaked-stderr-x >&2; exit 3'")
    )
    result = run_cli("check", "-i", "h1,", str(tmp_path / "bad.yml"))
    assert result.status == 3
    assert "!secret_cmd: sh exited 3; its stderr (16 bytes) is not shown" in result.err
    assert "leaked-stderr-x" not in result.err + result.out


def test_ansible_cfg_is_found_and_read_like_ansible(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    from pushorch.ansible import config as ansible_cfg

    (tmp_path / "hosts").write_text("[web]\nw1\nw2 ansible_user=deploy2\n")
    (tmp_path / "keys").mkdir()
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ninventory = hosts\nremote_user = deploy  ; inline comment\nprivate_key_file = keys/id\n"
        "forks = 7\nhost_key_checking = False\ntimeout = 12\n"
        "[privilege_escalation]\nbecome = true\nbecome_user = app\n"
        "[ssh_connection]\nssh_args = -o ProxyJump=bastion@jump:2222\npipelining = True\n"
    )
    config = ansible_cfg.load(ansible_cfg.find(env={}, cwd=str(tmp_path)), env={})
    assert config.path == str(tmp_path / "ansible.cfg") and config.forks == 7
    assert config.inventory == [str(tmp_path / "hosts")]
    defaults = config.variable_defaults()
    w1 = settings_for("w1", defaults)
    assert (w1.user, w1.key_files, w1.host_key_checking, w1.connect_timeout) == (
        "deploy",
        (str(tmp_path / "keys" / "id"),),
        "off",
        12.0,
    )
    assert (w1.become, w1.become_user, w1.proxy_jump) == (True, "app", "bastion@jump:2222")
    assert settings_for("w2", {**defaults, "ansible_user": "deploy2"}).user == "deploy2"  # a host var wins
    # The environment overrides the file, as in Ansible.
    assert (
        ansible_cfg.load(config.path, env={"ANSIBLE_REMOTE_USER": "envuser"}).variable_defaults()["ansible_user"]
        == "envuser"
    )
    # The CLI takes its inventory from ansible.cfg in the working directory when -i is not given.
    result = run_cli("inventory", "--list", cwd=tmp_path)
    assert result.status == 0 and '"w2"' in result.out, result.err
    # ANSIBLE_CONFIG names the file (or its directory) wherever the command runs from.
    found = ansible_cfg.find(env={"ANSIBLE_CONFIG": str(tmp_path)}, cwd="/")
    assert found == str(tmp_path / "ansible.cfg")


def test_ansible_playbook_habits_list_hosts_syntax_check_and_tags(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "hosts").write_text("[web]\nw1\nw2\n[db]\nd1\n")
    (tmp_path / "site.yml").write_text(
        "- name: web servers\n  hosts: web\n  tags: [web]\n  tasks:\n    - {command: ['true'], tags: conf}\n"
        "- hosts: db\n  services:\n    - {name: db, image: reg/db:1}\n"
    )
    listed = run_cli("apply", "-i", str(tmp_path / "hosts"), "--list-hosts", str(tmp_path / "site.yml"))
    assert listed.status == 0, listed.err
    assert (
        "  play #1 (web): web servers\tTAGS: [web]\n    pattern: ['web']\n    hosts (2):\n      w1\n      w2"
        in listed.out
    )
    assert "  play #2 (db): db\tTAGS: []\n    pattern: ['db']\n    hosts (1):\n      d1" in listed.out
    checked = run_cli("plan", "-i", str(tmp_path / "hosts"), "--syntax-check", str(tmp_path / "site.yml"))
    assert checked.status == 0 and checked.out.startswith("ok: 1 playbook(s), 3 host(s)")
    (tmp_path / "bad.yml").write_text("- hosts: web\n  tasks:\n    - {command: ['true'], tagz: x}\n")
    assert run_cli("apply", "-i", str(tmp_path / "hosts"), "--syntax-check", str(tmp_path / "bad.yml")).status == 3
    refused = run_cli("apply", "-i", str(tmp_path / "hosts"), "--tags", "conf", "--prune", str(tmp_path / "site.yml"))
    assert refused.status == 2 and "--prune cannot be combined with --tags" in refused.err


def test_ansible_cfg_vault_password_file_opens_the_repository(repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (repo / "ansible.cfg").write_text(
        f"[defaults]\ninventory = inventory\nvault_password_file = pw\nvault_identity_list = prod@{repo / 'prod-pw'}\n"
    )
    result = run_cli("inventory", "--host", "web1", cwd=repo)  # no -i, no vault option: ansible.cfg says it all
    assert result.status == 0, result.err
    assert json.loads(result.out)["ansible_host"] == "10.0.0.1"


def test_ask_vault_pass_reads_the_password_it_asks_for(repo: Path) -> None:
    """-J asks on the terminal; without one (cron, CI) getpass reads the answer from stdin."""
    done = subprocess.run(
        [sys.executable, "-m", "pushorch", "inventory", "-i", "inventory", "--host", "web1", "-J",
         "--vault-id", f"prod@{repo / 'prod-pw'}"],
        cwd=repo,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal: the prompt falls back to stdin
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ansible_host"] == "10.0.0.1"


@pytest.mark.parametrize(
    "content",
    ["line one\nline two\n", "  padded password \n\n", "first\r\n\r\nthird line\t\n"],
    ids=["multi-line", "surrounding-spaces", "crlf-and-tabs"],
)
def test_a_vault_password_file_is_read_whole_as_ansible_core_reads_it(tmp_path: Path, run_cli, content: str) -> None:  # type: ignore[no-untyped-def]
    """Differential: ansible-vault encrypts with the file; pushorch must open what it encrypted, and
    must not open it with the first line alone."""
    (tmp_path / "pw").write_text(content)
    (tmp_path / "first-line").write_text(content.splitlines()[0] + "\n")
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "hosts").write_text("[web]\nweb1 ansible_host=10.9.9.9\n")
    _encrypt(inv / "hosts", "--vault-password-file", str(tmp_path / "pw"))
    result = run_cli("inventory", "-i", str(inv), "--host", "web1", "--vault-password-file", str(tmp_path / "pw"))
    assert result.status == 0, result.err
    assert json.loads(result.out)["ansible_host"] == "10.9.9.9"
    if content.strip().strip("\r\n") != content.splitlines()[0].strip():
        wrong = run_cli(
            "inventory", "-i", str(inv), "--host", "web1", "--vault-password-file", str(tmp_path / "first-line")
        )
        assert wrong.status == 3, wrong.out


def test_two_runs_in_one_process_see_only_their_own_context(repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """The loaders keep no state of their own: loads running at once in one process, each with its
    own vault passwords, get what their own context gives; CLI invocations one after another do too."""
    import threading

    from pushorch.ansible.load_inventory import load_inventory
    from pushorch.ansible.vault import VaultSecret
    from pushorch.errors import InputError
    from pushorch.load.context import LoadContext
    from pushorch.secret import Secret

    opened = LoadContext(vault_secrets=(VaultSecret("default", Secret(PASSWORD)), VaultSecret("prod", Secret(OTHER))))
    results: dict[str, str] = {}

    def load(name: str, context: LoadContext) -> None:
        try:
            results[name] = str(load_inventory([str(repo / "inventory")], context).host_vars("web1")["ansible_host"])
        except InputError:
            results[name] = "refused"

    runs = [("a", opened), ("b", LoadContext()), ("c", opened), ("d", LoadContext())]
    threads = [threading.Thread(target=load, args=run) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"a": "10.0.0.1", "b": "refused", "c": "10.0.0.1", "d": "refused"}
    vault_args = ("--vault-password-file", str(repo / "pw"), "--vault-id", f"prod@{repo / 'prod-pw'}")
    inventory = ("inventory", "-i", str(repo / "inventory"), "--host", "web1")
    assert run_cli(*inventory, *vault_args).status == 0
    assert run_cli(*inventory).status == 3  # the run before left no password behind
    assert run_cli(*inventory, *vault_args).status == 0

"""How `pushorch exec` reads its command line (pure): the README's forms, one-word commands."""

from __future__ import annotations

from pushorch.cli.exec_cmd import _plain_word
from pushorch.cli.main import _docker_style


def test_the_readme_form_without_a_pattern_means_all_narrowed_by_the_limit() -> None:
    """`exec -it -i INV -l HOST -- CMD` was a usage error (the first word of CMD became the PATTERN)."""
    assert _docker_style(["exec", "-it", "-i", "inv", "-l", "lab-2", "--", "sh"]) == [
        "exec", "--interactive", "-i", "inv", "-l", "lab-2", "all", "--", "sh",
    ]  # fmt: skip
    assert _docker_style(["exec", "--limit=web", "--", "id"])[-3:] == ["all", "--", "id"]
    # A pattern given, or playbooks (--service), or no --limit at all: unchanged.
    for args in (
        ["exec", "-i", "inv", "-l", "w1", "web", "--", "id"],
        ["exec", "-i", "inv", "-l", "w1", "--service", "api", "app.yml", "--", "env"],
        ["exec", "-i", "inv", "--", "id"],
        ["exec", "-i", "inv", "-l", "w1", "-f", "5", "web", "uname"],
    ):
        assert _docker_style(list(args)) == args


def test_one_word_in_a_container_runs_without_a_shell_one_shell_line_on_a_host() -> None:
    assert _plain_word("env", "api") and _plain_word("/app/manage.py", "api")
    for line in ("ls -l", "a|b", "echo $HOME", "x;y", "cat *.log", "A=1"):
        assert not _plain_word(line, "api"), line
    assert not _plain_word("uname", None)  # on a host: `ansible -a uname` runs through a shell

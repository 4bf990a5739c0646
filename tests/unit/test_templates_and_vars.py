"""Templating: native types, lazy variables, magic variables, extra-vars precedence, sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushorch.errors import InputError
from pushorch.load.extravars import parse_extra_vars
from pushorch.load.playbooks import load_spec
from pushorch.secret import Secret
from pushorch.templates import LazyVars, Templar, TemplateFailure


def test_native_types_and_lazy_vars(tmp_path: Path) -> None:
    templar = Templar(str(tmp_path))
    variables = LazyVars({"port": "{{ base + 1 }}", "base": 8079, "version": "1.10", "v": "{{ version }}"}, templar)
    assert templar.render_text("{{ port }}", variables) == 8080
    assert templar.render_text("{{ v }}", variables) == "1.10"  # never literal_eval'd into 1.1
    assert templar.render_text("p{{ port }}", variables) == "p8080"
    assert templar.render_value({"a": ["{{ base }}", "x"]}, variables) == {"a": [8079, "x"]}


def test_loops_and_undefined_are_errors(tmp_path: Path) -> None:
    templar = Templar(str(tmp_path))
    variables = LazyVars({"a": "{{ b }}", "b": "{{ a }}"}, templar)
    with pytest.raises(TemplateFailure, match="refers to itself"):
        templar.render_text("{{ a }}", variables)
    with pytest.raises(TemplateFailure, match="'zz' is undefined"):
        templar.render_text("{{ zz }}", variables)


def test_secrets_stay_secret_through_templates(tmp_path: Path) -> None:
    templar = Templar(str(tmp_path))
    variables = LazyVars({"s": Secret("hunter2")}, templar)
    assert templar.render_text("{{ s }}", variables) == Secret("hunter2")
    assert templar.render_text("x={{ s }}", variables) == Secret("x=hunter2")  # built from a secret: a secret
    (tmp_path / "t.j2").write_text("x={{ s }}\n")
    assert templar.render_file("t.j2", variables) == "x=hunter2\n"  # files get the value


def test_extra_vars_forms(tmp_path: Path) -> None:
    file = tmp_path / "v.yml"
    file.write_text("a: 1\nb: [1]\n")
    merged, problems = parse_extra_vars(["a=x c='two words'", '{"a": 2, "d": true}', f"@{file}"])
    assert problems == []
    assert merged == {"a": 1, "c": "two words", "d": True, "b": [1]}


def _write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)


def test_precedence_inventory_play_varsfiles_extra(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "inv.ini": "[web]\nw1 a=host b=host c=host d=host\n",
            "vf.yml": "c: vars_file\nd: vars_file\n",
            "p.yml": "- hosts: web\n  vars: {b: play, c: play, d: play}\n  vars_files: [vf.yml]\n"
            "  tasks:\n    - template: {src: t.j2, dest: /t}\n",
            "templates/t.j2": "{{ a }} {{ b }} {{ c }} {{ d }} {{ inventory_hostname }} {{ groups['web'] }}"
            " {{ group_names }} {{ hostvars['w1']['a'] }}",
        },
    )
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")], ["d=extra"])
    assert spec.hosts["w1"].files[(0, 0)] == "host play vars_file extra w1 ['w1'] ['web'] host"


def test_play_hosts_limit_and_templated_ints(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "inv.ini": "[web]\nw1 port=8081\nw2 port=8082\n[db]\nd1\n",
            "p.yml": "- hosts: web\n  services:\n    - {name: a, image: img, ports: [{container: 80, host: '{{ port }}'}]}\n",
        },
    )
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")], limit="all:!w2")
    assert list(spec.hosts) == ["w1"]
    assert spec.hosts["w1"].plays[0].services[0].ports[0].host == 8081


def test_problems_for_every_host_are_merged(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "inv.ini": "[web]\nw1 port=x\nw2 port=y\n",
            "p.yml": "- hosts: web\n  services: [{name: a, image: '{{ nope }}'}]\n",
        },
    )
    with pytest.raises(InputError) as caught:
        load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")])
    assert [p.message for p in caught.value.problems] == ["'nope' is undefined (rendering for hosts w1, w2)"]


def test_when_drops_tasks_per_host(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "inv.ini": "[web]\nw1 role=primary\nw2 role=replica\n",
            "p.yml": "- hosts: web\n  tasks:\n"
            "    - {name: primary only, command: 'true', when: \"role == 'primary'\"}\n"
            "    - {name: yes string, command: 'true', when: \"'yes' | bool\"}\n"
            "    - {name: never, command: 'true', when: false}\n",
        },
    )
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")])
    assert [t.name for t in spec.hosts["w1"].plays[0].tasks] == ["primary only", "yes string"]
    assert [t.name for t in spec.hosts["w2"].plays[0].tasks] == ["yes string"]

"""Compose files (issue 25): read as docker compose reads them, mapped to services, or refused with
file:line:col; `convert` prints a playbook that loads to the same services."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushorch.errors import InputError
from pushorch.load.compose_file import InterpolationError, interpolate, read_env_file
from pushorch.load.context import ComposeOptions, LoadContext
from pushorch.load.convert import playbook_text
from pushorch.load.playbooks import load_spec
from pushorch.spec import Service

ENV = {"SET": "yes", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$SET ${SET}", "yes yes"),
        ("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", "d d  d"),
        ("${SET:+r} ${EMPTY:+r}|${EMPTY+r}|${UNSET+r}", "r |r|"),
        ("$$SET $${SET} cost: 5$", "$SET ${SET} cost: 5$"),
        ("${UNSET:-${SET}-x}", "yes-x"),  # nested default
        ("$UNSET.", "."),  # unset: empty, as compose
    ],
)
def test_interpolation_as_compose_does_it(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


def test_a_required_variable_and_a_bad_format_are_errors() -> None:
    with pytest.raises(InterpolationError, match="required variable UNSET is missing a value: say it"):
        interpolate("${UNSET:?say it}", ENV)
    with pytest.raises(InterpolationError, match="required variable EMPTY"):
        interpolate("${EMPTY:?}", ENV)
    assert interpolate("${EMPTY?no}", ENV) == ""
    for bad in ("${SET", "${1x}", "${SET!x}"):
        with pytest.raises(InterpolationError):
            interpolate(bad, ENV)


def test_a_variable_named_as_elasticsearch_names_its_settings_is_taken(tmp_path: Path) -> None:
    """The compose corpus (docker/awesome-compose elasticsearch-logstash-kibana): Docker takes any
    name without `=`; pushorch refused `discovery.type`."""
    _project(tmp_path, "services:\n  es:\n    image: es:7\n    environment: {discovery.type: single-node}\n")
    assert _services(tmp_path, hosts="app")["es"].env == {"discovery.type": "single-node"}


def test_a_config_whose_file_is_missing_is_named_as_a_config(tmp_path: Path) -> None:
    """The compose corpus (the compose-spec's examples): a missing config file was reported as a
    template the playbook could not find."""
    text = "services:\n  web: {image: 'web:1', configs: [conf]}\nconfigs:\n  conf: {file: ./missing.conf}\n"
    _project(tmp_path, text)
    with pytest.raises(InputError) as caught:
        _services(tmp_path, hosts="app")
    (problem,) = caught.value.problems  # said once, where the file is named
    assert str(problem).endswith(
        "compose.yaml:4:10: configs.conf.file: ./missing.conf not found (beside the compose file)"
    )


def test_env_files_read_like_compose() -> None:
    text = "# c\nexport A=1\nB='two words'\nC=\"x\\ny\"\nD=plain # comment\n\nE\n"
    assert read_env_file(text) == {"A": "1", "B": "two words", "C": "x\ny", "D": "plain"}


APP = """\
name: shop
x-pushorch: {hosts: app}
services:
  web:
    image: ${REG:-reg:5000}/web:${TAG:-v1}
    command: /web --port 8080 "two words"
    environment:
      - GREETING=hi {{ not jinja }}
      - FROM_SHELL
      - NOT_SET
    env_file: web.env
    ports: ["8080:8080", "127.0.0.1::9090", {target: 53, published: 5353, protocol: udp}]
    volumes: ["data:/data", "/srv/x:/x:ro", {type: tmpfs, target: /scratch, tmpfs: {size: 1m}}]
    healthcheck: {test: ["CMD", "true"], interval: 2s, retries: 3}
    depends_on: {db: {condition: service_healthy}}
    deploy:
      replicas: 2
      update_config: {parallelism: 1, order: start-first, failure_action: rollback, monitor: 3s, delay: 1s}
      resources: {limits: {cpus: "0.5", memory: 1.5G}}
    configs: [app_conf]
    secrets: [{source: token, target: api-token}]
    working_dir: /srv
    stop_grace_period: 20s
    stop_signal: SIGINT
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    extra_hosts: ["db.local:10.0.0.2"]
    labels: {team: shop}
    restart: on-failure:3
    networks: {front: {aliases: [www]}}
  db:
    image: redis:7
    profiles: [backend]
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data: {}
networks:
  front: {ipam: {config: [{subnet: 10.77.0.0/24}]}}
configs:
  app_conf: {file: ./app.conf}
secrets:
  token: {file: ./token.txt}
"""


def _project(tmp_path: Path, text: str = APP, **files: str) -> Path:
    (tmp_path / "inv.ini").write_text("[app]\na1\na2\na3\n")
    (tmp_path / "app.conf").write_text("conf\n")
    (tmp_path / "token.txt").write_text("s3cret\n")
    (tmp_path / "web.env").write_text("FROM_FILE=1\nGREETING=overridden\n")
    (tmp_path / ".env").write_text("TAG=v2\nREG=from-dotenv\n")
    for name, content in files.items():
        (tmp_path / name.replace("_", ".")).write_text(content)
    (tmp_path / "compose.yaml").write_text(text)
    return tmp_path


def _services(tmp_path: Path, *files: str, **compose: object) -> dict[str, Service]:
    options = ComposeOptions(**{"environ": {"FROM_SHELL": "shell", "REG": "shell-reg"}, **compose})  # type: ignore[arg-type]
    paths = [str(tmp_path / f) for f in files or ("compose.yaml",)]
    _, spec = load_spec([str(tmp_path / "inv.ini")], paths, context=LoadContext(compose=options))
    (play,) = spec.hosts["a1"].plays
    return {s.name: s for s in play.services}


def test_a_compose_service_becomes_a_pushorch_service_with_its_rollout(tmp_path: Path) -> None:
    web = _services(_project(tmp_path), profiles=("backend",))["web"]
    assert web.image == "shell-reg/web:v2"  # the shell over .env, .env over the default
    assert web.command == ["/web", "--port", "8080", "two words"]  # split as compose splits, no shell
    assert web.env == {"FROM_FILE": "1", "GREETING": "hi {{ not jinja }}", "FROM_SHELL": "shell"}
    assert [(p.host, p.container, p.protocol, p.bind) for p in web.ports] == [
        (8080, 8080, "tcp", None), (None, 9090, "tcp", "127.0.0.1"), (5353, 53, "udp", None)
    ]  # fmt: skip
    mounts = {(v.source, v.target, v.read_only) for v in web.volumes}
    assert mounts == {
        ("shop_data", "/data", False),
        ("/srv/x", "/x", True),
        ("/etc/pushorch/compose/shop/configs/app_conf", "/app_conf", True),
        ("/etc/pushorch/compose/shop/secrets/token", "/run/secrets/api-token", True),
    }
    assert web.tmpfs == ["/scratch:size=1m"]
    assert web.health is not None and web.health.docker and web.healthcheck and web.healthcheck.retries == 3
    assert web.depends_on == ["db"] and web.replicas == 2
    assert web.update and (web.update.order, web.update.min_healthy_time, web.update.delay) == ("start-first", 3.0, 1.0)
    assert web.update.auto_revert and web.resources and web.resources.memory == "1536m" and web.resources.cpus == 0.5
    assert web.options == ["--workdir", "/srv", "--stop-signal", "SIGINT"] and web.stop_timeout == 20.0
    assert web.ulimits["nproc"].soft == 512 and web.extra_hosts == {"db.local": "10.0.0.2"}
    assert web.restart == "on-failure" and web.labels == {"team": "shop"}
    assert [(n.name, n.aliases) for n in web.networks] == [("shop_front", ["web", "www"])]
    assert web.restart_on == ["compose config app_conf", "compose secret token"]


def test_profiles_select_services_and_the_files_ship_with_the_play(tmp_path: Path) -> None:
    _project(tmp_path)
    assert set(_services(tmp_path, profiles=("backend",))) == {"web", "db"}
    assert set(_services(tmp_path, profiles=("backend", "debug"))) == {"web", "db", "debug"}
    _, spec = load_spec(
        [str(tmp_path / "inv.ini")], [str(tmp_path / "compose.yaml")],
        context=LoadContext(compose=ComposeOptions(environ={"COMPOSE_PROFILES": "backend"})),
    )  # fmt: skip
    (play,) = spec.hosts["a2"].plays
    tasks = {t.name: t for t in play.tasks}
    assert tasks["compose secret token"].copy_ and tasks["compose secret token"].copy_.mode == "0600"
    assert [n.name for n in play.networks] == ["shop_front", "shop_default"]


def test_files_merge_in_order_as_compose_merges_them(tmp_path: Path) -> None:
    over = "services:\n  web:\n    image: other/web:v9\n    ports: ['9999:99']\n    environment: {EXTRA: '1'}\n"
    _project(tmp_path, compose_override_yaml=over)
    web = _services(tmp_path, "compose.yaml", "compose.override.yaml", profiles=("backend",))["web"]
    assert web.image == "other/web:v9"
    assert [p.host for p in web.ports] == [8080, None, 5353, 9999]  # appended
    assert web.env["EXTRA"] == "1" and web.env["FROM_FILE"] == "1"  # merged by key


def test_hosts_from_the_command_line_and_images_mapped(tmp_path: Path) -> None:
    text = "services:\n  web: {image: 'nginx:1.14.2'}\n"
    _project(tmp_path, text)
    with pytest.raises(InputError, match=r"compose.yaml:2:3: services.web: which hosts run it"):
        _services(tmp_path)
    web = _services(tmp_path, hosts="app", image_map=(("nginx:1.14.2", "reg:5000/nginx:1.14.2"),))["web"]
    assert web.image == "reg:5000/nginx:1.14.2"
    assert [n.name for n in web.networks] == [f"{tmp_path.name.lower()}_default"]


BAD = """\
x-pushorch: {hosts: app, colour: red}
include: [other.yaml]
services:
  web:
    image: web:1
    container_name: web
    ports: ["http:80"]
    volumes: ["./data:/data", "/anonymous", "undeclared:/u"]
    depends_on: {init: {condition: service_completed_successfully}}
    deploy: {placement: {constraints: ["node.role==manager"]}}
    links: [db]
    x-pushorch: {proxy: {host: a}}
  init: {image: "init:${INIT_TAG:?set INIT_TAG}"}
"""


def test_every_unsupported_key_is_named_with_its_place_all_at_once(tmp_path: Path) -> None:
    _project(tmp_path, BAD)
    with pytest.raises(InputError) as caught:
        _services(tmp_path)
    found = sorted(str(p) for p in caught.value.problems)
    text = "\n".join(found)
    for expected in (
        "compose.yaml:13:10: services.init.image: required variable INIT_TAG is missing a value: set INIT_TAG",
        "compose.yaml:1:26: x-pushorch.colour: x-pushorch key 'colour' is not one of become, hosts",
        "compose.yaml:2:1: include: top-level key 'include' is not supported by pushorch",
        "compose.yaml:6:5: services.web.container_name: pushorch names the containers",
        "compose.yaml:7:13: services.web.ports[0]: 'http:80' is not a port mapping compose reads",
        "compose.yaml:8:15: services.web.volumes[0]: bind mount './data' names a path on this machine",
        "services.web.volumes[1]: '/anonymous': an anonymous volume is new at every rollout",
        "services.web.volumes[2]: volume 'undeclared' is not declared in the top-level `volumes:`",
        "services.web.depends_on.init: service_completed_successfully: pushorch runs init as a job of web, with "
        "web's image; init's differ",
        "services.web.deploy.placement: 'placement' is not supported here",
        "compose.yaml:11:5: services.web.links: compose key 'links' is not supported by pushorch",
        "services.web.x-pushorch.proxy: x-pushorch key 'proxy' is not one of",
    ):
        assert expected in text, (expected, text)


JOB = """\
x-pushorch: {hosts: app}
services:
  migrate:
    image: shop:2
    command: ["./manage", "migrate"]
    environment: {DB: db:5432}
  web:
    image: shop:2
    environment: {DB: db:5432}
    depends_on:
      migrate: {condition: service_completed_successfully}
"""


def test_a_service_waited_for_to_complete_is_a_run_once_job_of_the_one_that_waits(tmp_path: Path) -> None:
    _project(tmp_path, JOB)
    services = _services(tmp_path)
    assert set(services) == {"web"}  # migrate is not deployed as a service of its own
    (job,) = services["web"].jobs
    assert (job.name, job.command) == ("migrate", ["./manage", "migrate"]) and services["web"].depends_on == []
    _project(tmp_path, JOB.replace("environment: {DB: db:5432}\n  web", "environment: {DB: other}\n  web"))
    with pytest.raises(InputError, match=r"compose.yaml:11:7: services.web.depends_on.migrate: .* with web's env; "):
        _services(tmp_path)


def test_convert_prints_a_playbook_that_loads_to_the_same_services(tmp_path: Path) -> None:
    _project(tmp_path)
    options = ComposeOptions(environ={"FROM_SHELL": "shell"}, profiles=("backend",))
    text = playbook_text([str(tmp_path / "compose.yaml")], LoadContext(compose=options))
    assert text.startswith("# The service playbook pushorch runs for")
    (tmp_path / "converted.yml").write_text(text)
    direct = _services(tmp_path, environ={"FROM_SHELL": "shell"}, profiles=("backend",))
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "converted.yml")])
    assert {s.name: s for s in spec.hosts["a1"].plays[0].services} == direct


def test_a_build_is_built_on_the_controller_and_the_image_names_its_repository(tmp_path: Path) -> None:
    text = (
        "x-pushorch: {hosts: app}\nservices:\n  api:\n    image: reg/api:dev\n"
        "    build: {context: ./api, dockerfile: Dockerfile.prod, args: [MODE=prod, FROM_SHELL], target: prod}\n"
    )
    _project(tmp_path, text)
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile.prod").write_text("FROM scratch\n")
    api = _services(tmp_path)["api"]
    assert api.image.startswith("reg/api:ctx-") and api.build is not None  # tagged by its context
    assert (api.build.context, api.build.dockerfile) == (str(tmp_path / "api"), "Dockerfile.prod")
    assert api.build.args == {"MODE": "prod", "FROM_SHELL": "shell"} and api.build.target == "prod"
    (tmp_path / "compose.yaml").write_text(text.replace(", target: prod", ""))
    assert _services(tmp_path)["api"].image != api.image  # another stage is another image


@pytest.mark.parametrize(
    "command",
    [
        ["check"], ["plan"], ["apply"], ["status"], ["reconcile"], ["prune"], ["doctor"],
        ["rollback", "@", "web"], ["restart", "@", "web"], ["logs", "@", "web"], ["maintenance", "enable", "@", "web"],
        ["exec", "--service", "web", "@", "true"],
    ],
)  # fmt: skip
def test_every_command_that_takes_playbooks_takes_a_compose_file_and_its_options(  # type: ignore[no-untyped-def]
    command: list[str], tmp_path: Path, run_cli
) -> None:
    """--hosts reaches the loader (without it: which hosts?), and a bad key is exit 3, nothing connected."""
    (tmp_path / "inv.ini").write_text("[app]\na1 ansible_host=192.0.2.1\n")
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: web:1\n    links: [db]\n")
    argv = [*command[:1], "-i", "inv.ini", "--hosts", "app", *command[1:]]
    at = argv.index("@") if "@" in argv else len(argv)
    argv[at : at + 1] = ["compose.yaml"]
    result = run_cli(*argv, cwd=tmp_path)
    assert result.status == 3, (result.out, result.err)
    assert "compose.yaml:4:5: services.web.links: compose key 'links' is not supported by pushorch" in result.err


def test_x_pushorch_ingress_routes_a_service_and_names_the_ingress_hosts(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[app]\na1\na2\n[edge]\ne1\n")
    (tmp_path / "compose.yaml").write_text(
        "x-pushorch: {hosts: app, ingress: {hosts: edge, http_port: 8080}}\n"
        "services:\n"
        "  web:\n"
        "    image: web:1\n"
        "    ports: ['18400:80']\n"
        "    x-pushorch: {ingress: {hosts: [shop.example.com], balance: leastconn}}\n"
    )
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "compose.yaml")])
    (web,) = spec.hosts["a1"].plays[0].services
    assert web.ingress is not None and (web.ingress.hosts, web.ingress.balance) == (["shop.example.com"], "leastconn")
    (edge,) = spec.hosts["e1"].plays
    assert edge.ingress is not None and edge.ingress.http_port == 8080 and edge.services == []

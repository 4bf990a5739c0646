"""Kubernetes manifests (issue 25): a Deployment, its Service, ConfigMaps and Secrets mapped to a
pushorch service, or refused with file:line:col; `convert` prints a playbook that loads to the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pushorch.errors import InputError
from pushorch.load.context import ComposeOptions, LoadContext
from pushorch.load.convert import playbook_text
from pushorch.load.playbooks import load_spec
from pushorch.spec import Service

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "tests" / "fixtures" / "kube" / "shop.yaml"
SEED = [ROOT / "playbooks" / "kubernetes" / f for f in ("nginx-deployment.yaml", "nginx-service.yaml")]


def _spec(tmp_path: Path, *files: Path, **options: object):  # type: ignore[no-untyped-def]
    (tmp_path / "inv.ini").write_text("[app]\na1\na2\na3\n[web]\nw1\n")
    context = LoadContext(compose=ComposeOptions(**options))  # type: ignore[arg-type]
    return load_spec([str(tmp_path / "inv.ini")], [str(f) for f in files], context=context)[1]


def _service(tmp_path: Path, *files: Path, host: str = "a1", **options: object) -> Service:
    (play,) = _spec(tmp_path, *files, **options).hosts[host].plays
    (service,) = play.services
    return service


def test_the_seeds_deployment_as_printed_is_three_replicas_registered_as_the_seeds_consul_service(
    tmp_path: Path,
) -> None:
    nginx = _service(tmp_path, *SEED, host="w1", hosts="web", image_map=(("nginx:1.14.2", "reg:5000/nginx:1.14.2"),))
    assert (nginx.name, nginx.image, nginx.replicas) == ("nginx-deployment", "reg:5000/nginx:1.14.2", 3)
    assert nginx.consul and (nginx.consul.name, nginx.consul.tags, nginx.consul.port) == ("nginx-service", ["web"], 80)
    assert [(p.container, p.host) for p in nginx.ports] == [(80, 80)]
    # Kubernetes' default strategy (25% / 25%) on 3 replicas: 1 surge, 0 unavailable -> start-first, one at a time
    assert nginx.update and (nginx.update.order, nginx.update.parallelism.value) == ("start-first", 1)
    assert nginx.labels == {"app": "nginx"}


def test_a_deployment_maps_every_field_it_uses(tmp_path: Path) -> None:
    shop = _service(tmp_path, SHOP)
    assert shop.replicas == 2 and shop.update
    assert (shop.update.order, shop.update.parallelism.value) == ("stop-first", 1)
    assert (shop.update.min_healthy_time, shop.update.healthy_deadline, shop.update.keep) == (3.0, 60.0, 2)
    assert shop.entrypoint == ["/shop"] and shop.command == ["--port", "8080", "--level", "debug", "$(literal)"]
    assert {k: v for k, v in shop.env.items() if k != "TOKEN"} == {
        "CONF_app.conf": "greeting {{ not jinja }}\n", "CONF_LEVEL": "debug", "PORT": "8080",
        "URL": "http://localhost:8080/", "LEVEL": "debug",
    }  # fmt: skip
    assert str(shop.env["TOKEN"]) != "s3cret" and shop.env["TOKEN"].reveal() == "s3cret"  # type: ignore[union-attr]
    assert [(p.container, p.host, p.protocol) for p in shop.ports] == [(8080, 30080, "tcp"), (9100, 9100, "tcp")]
    assert shop.consul and (shop.consul.name, shop.consul.tags, shop.consul.port) == ("shop-web", ["web", "v1"], 30080)
    assert shop.consul.meta == {"team": "payments"}
    assert shop.health and shop.health.http and (shop.health.http.path, shop.health.http.port) == ("/ready", 8080)
    assert (shop.health.interval, shop.health.timeout) == (2.0, 1.0)
    assert shop.healthcheck and shop.healthcheck.test == ["CMD", "/shop", "--check"] and shop.healthcheck.retries == 3
    assert shop.resources and (shop.resources.cpus, shop.resources.memory) == (0.5, "256m")
    assert shop.options == ["--memory-reservation", "64m", "--cpu-shares", "256", "--workdir", "/srv"]
    assert (shop.user, shop.read_only, shop.cap_drop, shop.security_opt) == (
        "1000",
        True,
        ["ALL"],
        ["no-new-privileges"],
    )
    assert shop.stop_timeout == 20.0 and shop.labels == {"app": "shop", "tier": "web"}
    assert {(v.source, v.target, v.read_only) for v in shop.volumes} == {
        ("/etc/pushorch/kube/shop/conf", "/etc/shop", True),
        ("/etc/pushorch/kube/shop/secret/token", "/run/secrets/token", True),
        ("/srv/shop-data", "/data", False),
    }
    assert shop.tmpfs == ["/tmp:size=64m"]
    assert shop.restart_on == [
        "kubernetes shop conf app.conf", "kubernetes shop secret token", "kubernetes shop secret password"
    ]  # fmt: skip


def test_configmap_and_secret_files_ship_with_the_play_and_secrets_stay_secret(tmp_path: Path) -> None:
    (play,) = _spec(tmp_path, SHOP).hosts["a2"].plays
    tasks = {t.name: t.copy_ for t in play.tasks}
    conf, token = tasks["kubernetes shop conf app.conf"], tasks["kubernetes shop secret token"]
    assert conf and conf.dest == "/etc/pushorch/kube/shop/conf/app.conf" and conf.mode == "0644"
    assert conf.content == "greeting {{ not jinja }}\n"  # manifest values are not templates
    assert token and token.secret and token.mode == "0600" and token.dest == "/etc/pushorch/kube/shop/secret/token"


def test_convert_prints_a_playbook_that_loads_to_the_same_services(tmp_path: Path) -> None:
    text = playbook_text([str(f) for f in SEED], LoadContext(compose=ComposeOptions(hosts="web")))
    assert text.startswith("# The service playbook pushorch runs for") and "Kubernetes manifests" in text
    (tmp_path / "converted.yml").write_text(text)
    direct = _service(tmp_path, *SEED, host="w1", hosts="web")
    assert _service(tmp_path, tmp_path / "converted.yml", host="w1") == direct


BAD = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  paused: true
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {disk: ssd}
      containers:
      - name: web
        image: web:1
        imagePullPolicy: Always
        bogus: 1
        startupProbe: {exec: {command: ["true"]}}
        livenessProbe: {httpGet: {path: /, port: 80}}
        env:
        - name: POD
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: MISSING
          valueFrom: {secretKeyRef: {name: nope, key: k}}
        volumeMounts: [{name: claim, mountPath: /data}]
      volumes:
      - name: claim
        persistentVolumeClaim: {claimName: data}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: nothing}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: http}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
"""


def test_every_unsupported_field_is_named_with_its_place_all_at_once(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    with pytest.raises(InputError) as caught:
        _spec(tmp_path, tmp_path / "bad.yaml", hosts="app")
    text = "\n".join(sorted(str(p) for p in caught.value.problems))
    for expected in (
        "bad.yaml:16:9: spec.template.spec.containers[0].bogus: unknown field 'bogus': Kubernetes refuses it",
        "bad.yaml:6:3: spec.paused: Deployment field 'paused' is not supported by pushorch",
        "bad.yaml:7:3: spec.selector: the selector does not match the pod template's labels",
        "bad.yaml:11:7: spec.template.spec.nodeSelector: pod field 'nodeSelector' is not supported",
        "bad.yaml:15:9: spec.template.spec.containers[0].imagePullPolicy: pushorch pulls an image a host does not have",
        "containers[0].startupProbe: container field 'startupProbe' is not supported by pushorch",
        "bad.yaml:18:9: spec.template.spec.containers[0].livenessProbe: Docker's health check runs a command",
        "containers[0].env[0].valueFrom.fieldRef: valueFrom field 'fieldRef' is not supported by pushorch",
        "containers[0].env[1].valueFrom: Secret 'nope' is not in these manifests",
        "spec.template.spec.volumes[0].persistentVolumeClaim: volume field 'persistentVolumeClaim' is not supported",
        "bad.yaml:33:3: spec.selector: selects no Deployment of these manifests",
        "bad.yaml:34:3: spec.sessionAffinity: Service field 'sessionAffinity' is not supported by pushorch",
        "bad.yaml:38:1: kind: batch/v1 Job is not supported: pushorch maps Deployment (apps/v1), Service",
    ):
        assert expected in text, (expected, text)


def test_a_deployment_needs_hosts_and_a_playbook_is_still_one_document(tmp_path: Path) -> None:
    shutil.copy(SEED[0], tmp_path / "d.yaml")
    with pytest.raises(InputError, match=r"d.yaml:4:3: metadata.name: which hosts run it\? give --hosts GROUP"):
        _spec(tmp_path, tmp_path / "d.yaml")
    (tmp_path / "two.yml").write_text("- hosts: app\n  tasks: []\n---\n- hosts: app\n  tasks: []\n")
    with pytest.raises(InputError, match=r"two.yml:4:1: expected one YAML document, found several"):
        _spec(tmp_path, tmp_path / "two.yml")


@pytest.mark.parametrize(
    "command",
    [
        ["check"], ["plan"], ["apply"], ["status"], ["reconcile"], ["prune"], ["doctor"], ["convert"],
        ["rollback", "@", "web"], ["restart", "@", "web"], ["logs", "@", "web"], ["maintenance", "enable", "@", "web"],
        ["exec", "--service", "web", "@", "true"],
    ],
)  # fmt: skip
def test_every_command_that_takes_playbooks_takes_manifests_and_their_options(  # type: ignore[no-untyped-def]
    command: list[str], tmp_path: Path, run_cli
) -> None:
    """--hosts reaches the loader, and a field pushorch does not map is exit 3, nothing connected."""
    (tmp_path / "inv.ini").write_text("[app]\na1 ansible_host=192.0.2.1\n")
    manifest = SEED[0].read_text().replace("        ports:\n", "        tty: true\n        ports:\n")
    (tmp_path / "web.yaml").write_text(manifest)
    argv = [*command[:1], *([] if command == ["convert"] else ["-i", "inv.ini"]), "--hosts", "app", *command[1:]]
    at = argv.index("@") if "@" in argv else len(argv)
    argv[at : at + 1] = ["web.yaml"]
    result = run_cli(*argv, cwd=tmp_path)
    assert result.status == 3, (result.out, result.err)
    assert "web.yaml:18:9: spec.template.spec.containers[0].tty: container field 'tty' is not supported" in result.err

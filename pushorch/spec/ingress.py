"""The ingress: a play's hosts that run the proxy (`Play.ingress`), and how a service is reached through
it (`Service.ingress`): hostnames, a path prefix, the container port, the balancing."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pushorch.secret import Secret
from pushorch.spec.values import Duration, Model, Port, SecretStr

# A hostname as a Host header carries it (no port); `*.example.com` matches any one label.
_HOSTNAME = r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"


class IngressProxy(Model):
    """`ingress:` on a play: its hosts run HAProxy (Debian's package) for every service of the run
    that has an `ingress:`; pushorch installs it, renders its configuration from the plan, validates
    it before loading it, and drains each instance there before a rollout stops it."""

    http_port: Port = 80
    https_port: Port = 443  # bound when a service behind it has `tls`
    packages: list[str] = Field(default_factory=lambda: ["haproxy", "socat"])
    # HAProxy's own health checks of each instance (the service's `health`, when it is http or tcp):
    check_interval: Duration = 1.0


class IngressTls(Model):
    """The certificate (PEM, its chain after it) and its private key, e.g. `!secret_file app.pem` and
    `!secret_file app-key.pem`; checked to belong together before anything connects. ACME is out of
    reach of these machines: bring the files."""

    certificate: SecretStr
    key: SecretStr

    @model_validator(mode="after")
    def _pair(self) -> IngressTls:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            certificate = x509.load_pem_x509_certificate(self.certificate.reveal().encode())
        except ValueError as exc:
            raise ValueError("tls.certificate: not a PEM certificate") from exc
        try:
            key = serialization.load_pem_private_key(self.key.reveal().encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError("tls.key: not an unencrypted PEM private key") from exc
        raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if certificate.public_key().public_bytes(*raw) != key.public_key().public_bytes(*raw):
            raise ValueError("tls: the certificate does not match its key")
        return self

    def bundle(self) -> Secret:
        """What HAProxy reads: the certificate chain, then the key."""
        return Secret(self.certificate.reveal().rstrip("\n") + "\n" + self.key.reveal().rstrip("\n") + "\n")


class ServiceIngress(Model):
    """`ingress:` on a service: requests for these hostnames (and path prefix) go to its instances."""

    hosts: list[str] = Field(min_length=1)
    path: str = "/"
    port: Port | None = None  # the container port; default: the service's one published port
    balance: Literal["roundrobin", "leastconn", "consistent"] = "roundrobin"
    hash_key: str = "uri"  # with balance: consistent: uri, header:NAME or cookie:NAME
    tls: IngressTls | None = None  # HTTPS on the ingress's https_port; HTTP requests are redirected
    # What the ingress answers (503) while no instance takes requests (`maintenance enable`).
    maintenance_page: str = "<html><body><h1>Down for maintenance</h1><p>Back soon.</p></body></html>"

    @field_validator("hosts")
    @classmethod
    def _hostnames(cls, value: list[str]) -> list[str]:
        bad = [h for h in value if not re.match(_HOSTNAME, h)]
        if bad:
            raise ValueError(f"not a hostname: {', '.join(map(repr, bad))} (a name like app.example.com, no port)")
        return [h.lower() for h in value]

    @field_validator("path")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError(f"{value!r}: a path prefix starts with / and has no spaces")
        return value

    @field_validator("hash_key")
    @classmethod
    def _key(cls, value: str) -> str:
        kind, _, name = value.partition(":")
        if value == "uri" or (kind in ("header", "cookie") and re.match(r"^[A-Za-z0-9_-]+$", name)):
            return value
        raise ValueError(f"{value!r}: hash_key is uri, header:NAME or cookie:NAME")

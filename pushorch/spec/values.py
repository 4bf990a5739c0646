"""Small validated types of the schema: names, durations, amounts, modes, secrets, env values, ports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
)

from pushorch.durations import parse_duration
from pushorch.secret import Secret

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# What Docker and the kernel take (no `=`, no space or control character): Elasticsearch's settings
# are variables like `discovery.type` (docker/awesome-compose, found by the compose corpus).
_ENV_KEY = re.compile(r"^[^=\s\x00-\x1f]+$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$", re.IGNORECASE)


class Model(BaseModel):
    """Base of every schema model: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, populate_by_name=True)


# -- small validated types -------------------------------------------------------------------------


def _name(value: str) -> str:
    """Names become container names, file names and Consul IDs: no '/', no '..', no spaces."""
    if not _NAME.match(value) or ".." in value:
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '_', '.', '-'; starts with a letter or digit; "
            "no '..'; at most 63 characters)"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]


Duration = Annotated[float, BeforeValidator(parse_duration)]


@dataclass(frozen=True, slots=True)
class Amount:
    """A count or a percentage of some total ('25%')."""

    value: float
    percent: bool = False

    def of(self, total: int, minimum: int = 0) -> int:
        """Resolve against a total, rounding down but never below minimum.

        Worked example: 25% of 10 hosts = 2.5 -> 2 per batch; 25% of 3 hosts = 0.75 -> 0,
        raised to minimum=1 for parallelism so a rollout always makes progress.
        """
        count = int(total * self.value / 100) if self.percent else int(self.value)
        return max(minimum, count)


def _amount(value: Any) -> Amount:
    if isinstance(value, Amount):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Amount(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                number = float(text[:-1])
            except ValueError:
                number = -1
            if 0 <= number <= 100:
                return Amount(number, percent=True)
        elif text.isdigit():
            return Amount(int(text))
    raise ValueError(f"{value!r} is neither a count (0, 1, 2, ...) nor a percentage ('25%')")


CountOrPercent = Annotated[Amount, PlainValidator(_amount)]


def _mode(value: Any) -> str:
    """File modes as octal strings: '0644', '644' or an int already read as octal by YAML."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
        return f"{value:04o}"
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        return f"{int(value.strip(), 8):04o}"
    raise ValueError(f"{value!r} is not a file mode (write it quoted, as '0644')")


Mode = Annotated[str, PlainValidator(_mode)]


def _secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    raise ValueError("must be a string (mark it !secret)")


SecretStr = Annotated[Secret, PlainValidator(_secret)]


def _env_value(value: Any) -> str | Secret:
    if isinstance(value, (Secret, str)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise ValueError("an env value must be a string, number or boolean")


EnvValue = Annotated[str | Secret, PlainValidator(_env_value)]


def _env(value: Any) -> Any:
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not _ENV_KEY.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
    return value


def _image(value: str) -> str:
    if not _IMAGE.match(value):
        raise ValueError(f"{value!r} is not an image reference (like registry:5000/app:v1)")
    return value


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    return value


AbsPath = Annotated[str, AfterValidator(_absolute)]
Port = Annotated[int, Field(ge=1, le=65535)]

"""Host preparation tasks (docker, template, copy, file, command, shell), as Ansible writes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    model_validator,
)

from pushorch.spec.values import (
    AbsPath,
    Mode,
    Model,
    SecretStr,
)

# -- host preparation tasks ------------------------------------------------------------------------


class DockerArgs(Model):
    """Ensure the Docker engine: installed from the distribution (or verified present), started."""

    state: Literal["present"] = "present"
    method: Literal["auto", "distro", "none"] = "auto"
    packages: list[str] | None = None
    start: bool = True


class FileAttrs(Model):
    mode: Mode | None = None
    owner: str | None = None
    group: str | None = None


class TemplateArgs(FileAttrs):
    src: str
    dest: AbsPath
    secret: bool = False


class CopyArgs(FileAttrs):
    src: str | None = None
    content: str | SecretStr | None = None
    dest: AbsPath
    secret: bool = False

    @model_validator(mode="after")
    def _src_or_content(self) -> CopyArgs:
        if (self.src is None) == (self.content is None):
            raise ValueError("give exactly one of src and content")
        return self


class FileArgs(FileAttrs):
    path: AbsPath
    state: Literal["file", "directory", "touch", "absent"] = "file"


class CommandArgs(Model):
    cmd: str | list[str]
    creates: AbsPath | None = None
    removes: AbsPath | None = None
    chdir: AbsPath | None = None


def _command_shorthand(value: Any) -> Any:
    return {"cmd": value} if isinstance(value, (str, list)) else value


Command = Annotated[CommandArgs, BeforeValidator(_command_shorthand)]
MODULES = ("docker", "template", "copy", "file", "command", "shell")


class Task(Model):
    """An Ansible-shaped task: a name, exactly one module, and notify/become/when."""

    name: str | None = None
    docker: DockerArgs | None = None
    template: TemplateArgs | None = None
    copy_: CopyArgs | None = Field(None, alias="copy")
    file: FileArgs | None = None
    command: Command | None = None
    shell: Command | None = None
    notify: list[str] = Field(default_factory=list)
    become: bool | None = None
    when: str | bool | None = None
    tags: list[str] = Field(default_factory=list)  # --tags / --skip-tags select tasks by these

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            if isinstance(value.get("notify"), str):
                value["notify"] = [value["notify"]]
            if isinstance(value.get("tags"), str):  # Ansible: "a,b" or "a"
                value["tags"] = [t.strip() for t in value["tags"].split(",") if t.strip()]
            if value.get("docker", "absent") is None:
                value["docker"] = {}  # `- docker:` alone means "ensure Docker"
        return value

    @model_validator(mode="after")
    def _one_module(self) -> Task:
        given = [m for m in MODULES if self.module_args(m) is not None]
        if len(given) != 1:
            raise ValueError(f"a task needs exactly one of {', '.join(MODULES)} (got {given or 'none'})")
        return self

    def module_args(self, module: str) -> Any:
        return getattr(self, "copy_" if module == "copy" else module)

    @property
    def module(self) -> str:
        return next(m for m in MODULES if self.module_args(m) is not None)

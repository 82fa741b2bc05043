"""Reading the YAML files people edit (``config/services.yaml``, ``config/offices.yaml``, ``flows/*.yaml``): a file
that cannot be read or parsed is one line naming the file and, for a YAML mistake, its line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.common.errors import ConfigError


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: where the mistake is, what it is, and what was being read."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    where = f"at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}: " if exc.problem_mark else ""
    what = " ".join(str(exc.problem or exc.context or "").split())
    context = ""
    if exc.context and exc.problem:
        mark = exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" ({' '.join(exc.context.split())}{at})"
    return f"{where}{what}{context}"


def read_yaml(path: Path) -> Any:
    """The document in ``path``; ConfigError (one line) when it cannot be read, is not UTF-8, or is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path.name}: not UTF-8 text (line {line} holds the byte 0x{exc.object[exc.start]:02x}): save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML {yaml_problem(exc)}") from None

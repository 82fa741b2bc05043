"""Survey flows as data: loading ``flows/*.yaml`` and the facts the engine needs from a flow.

The full A-11 rule checks of a flow (SPEC §2 rule 8) live in :mod:`engine.flow_rules`; this module reads the
files, keeps their content hash (a published version may not change) and answers questions such as "has the PRA
approval expired".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ConfigError


@dataclass(frozen=True)
class Pra:
    """The Paperwork Reduction Act block (5 CFR 1320.8(b)(3))."""

    omb_control_number: str
    expiration_date: date
    burden_statement: str

    def expired(self, on: date) -> bool:
        return on > self.expiration_date


@dataclass(frozen=True)
class Flow:
    id: str
    version: str
    title: str
    edition: str
    pra: Pra
    default_language: str
    content_hash: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    path: Path | None = None

    @property
    def questions(self) -> list[dict[str, Any]]:
        return list(self.raw.get("questions") or [])

    def message(self, name: str) -> dict[str, Any]:
        """A message template of the flow (``messages.<name>``): wording per channel, English."""
        messages = self.raw.get("messages") or {}
        value = messages.get(name)
        if not isinstance(value, dict):
            raise KeyError(f"flow {self.id} has no message {name!r}")
        return value


def content_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def parse_flow(data: Any, source: str = "<flow>", path: Path | None = None) -> Flow:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a flow is a YAML mapping")
    missing = [key for key in ("id", "version", "title", "edition", "pra", "questions") if key not in data]
    if missing:
        raise ConfigError(f"{source}: missing {', '.join(missing)}")
    pra = data["pra"]
    if not isinstance(pra, dict):
        raise ConfigError(f"{source}: pra must be a mapping")
    pra_missing = [k for k in ("omb_control_number", "expiration_date", "burden_statement") if not pra.get(k)]
    if pra_missing:
        raise ConfigError(f"{source}: rule pra (5 CFR 1320.8(b)(3)): pra block lacks {', '.join(pra_missing)}")
    expiration = pra["expiration_date"]
    if isinstance(expiration, str):
        try:
            expiration = date.fromisoformat(expiration)
        except ValueError as exc:
            raise ConfigError(f"{source}: pra.expiration_date {expiration!r} is not a date (YYYY-MM-DD)") from exc
    if not isinstance(expiration, date):
        raise ConfigError(f"{source}: pra.expiration_date must be a date (YYYY-MM-DD)")
    return Flow(
        id=str(data["id"]),
        version=str(data["version"]),
        title=str(data["title"]),
        edition=str(data["edition"]),
        pra=Pra(str(pra["omb_control_number"]), expiration, str(pra["burden_statement"]).strip()),
        default_language=str(data.get("default_language", "en")),
        content_hash=content_hash(data),
        raw=data,
        path=path,
    )


def load_flows(directory: Path) -> dict[str, Flow]:
    if not directory.is_dir():
        raise ConfigError(f"flows directory {directory} does not exist (SURVEY_ENGINE_FLOWS_DIR)")
    flows: dict[str, Flow] = {}
    for path in sorted(directory.glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            try:
                data = yaml.safe_load(handle)
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path.name}: not valid YAML: {exc}") from exc
        flow = parse_flow(data, path.name, path)
        if flow.id in flows:
            raise ConfigError(f"{path.name}: flow id {flow.id!r} is defined twice")
        if path.stem != flow.id:
            raise ConfigError(f"{path.name}: the file name must be the flow id ({flow.id}.yaml)")
        flows[flow.id] = flow
    return flows

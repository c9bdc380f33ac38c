"""Rule parameters and severities, read from rules.toml so a policy change needs no code change."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import FormularyDataError
from .packaged import read_packaged

DEFAULT_FILE = "rules.toml"
SEVERITIES = ("block", "warn")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule's identity and settings: id, version, severity, title and parameters."""

    rule_id: str
    version: int
    severity: str  # "block" | "warn"
    title: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.params[name]


@dataclass(frozen=True, slots=True)
class RuleBook:
    """All rule specs by id, with the source they came from (for messages and logs)."""

    specs: Mapping[str, RuleSpec]
    source: str = DEFAULT_FILE

    def __getitem__(self, rule_id: str) -> RuleSpec:
        return self.specs[rule_id]

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self.specs

    def require(self, rule_id: str, params: tuple[str, ...]) -> None:
        """Raises FormularyDataError unless ``rule_id`` is configured with all of ``params``."""
        if rule_id not in self.specs:
            raise FormularyDataError(
                f"{self.source} 缺少规则 {rule_id}", f"{self.source}: no [{rule_id}] table"
            )
        missing = [p for p in params if p not in self.specs[rule_id].params]
        if missing:
            raise FormularyDataError(
                f"{self.source} 规则 {rule_id} 缺少参数：{'、'.join(missing)}",
                f"{self.source}: [{rule_id}] lacks {missing}",
            )


def parse_rulebook(text: str, source: str = DEFAULT_FILE) -> RuleBook:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FormularyDataError(f"{source} 格式错误：{e}", f"{source}: {e}") from None
    specs: dict[str, RuleSpec] = {}
    for rule_id, table in data.items():
        if not isinstance(table, dict):
            raise FormularyDataError(
                f"{source} 中 {rule_id} 应为规则表", f"{source}: {rule_id} is not a table"
            )
        table = dict(table)
        version, severity = table.pop("version", None), table.pop("severity", None)
        title = table.pop("title", rule_id)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise FormularyDataError(
                f"{source} 规则 {rule_id} 的 version 应为正整数", f"{source}: [{rule_id}] version={version!r}"
            )
        if severity not in SEVERITIES:
            raise FormularyDataError(
                f"{source} 规则 {rule_id} 的 severity 应为 block 或 warn",
                f"{source}: [{rule_id}] severity={severity!r}",
            )
        specs[rule_id] = RuleSpec(rule_id, version, severity, str(title), MappingProxyType(table))
    return RuleBook(MappingProxyType(specs), source)


def load_rulebook(path: str | Path) -> RuleBook:
    path = Path(path)
    return parse_rulebook(path.read_text(encoding="utf-8"), source=path.name)


@functools.cache
def default_rulebook() -> RuleBook:
    """The rules shipped with the package (formulary/data/rules.toml)."""
    return parse_rulebook(read_packaged(DEFAULT_FILE))

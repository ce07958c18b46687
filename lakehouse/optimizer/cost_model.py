"""The cost model's settings: thresholds that choose single-node or distributed plans, and
which rules run. Defaults come from the settings; an admin may change them at run time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
RULES = ("pushdown_predicates", "prune_columns", "prune_files", "estimate_rows",
         "order_joins", "choose_distribution")
MODES = ("auto", "single", "distributed")


@dataclass(frozen=True, slots=True)
class CostModel:
    broadcast_threshold_bytes: int = 64 * MIB  # a relation this small is sent whole to workers
    target_fragment_bytes: int = 32 * MIB  # a fragment reads about this much
    single_node_threshold_bytes: int = 512 * MIB  # less input than this runs on one node
    max_fragments: int = 64
    scan_bytes_per_s: float = 400 * MIB  # to estimate a query's time
    rules: tuple[str, ...] = RULES
    mode: str = "auto"  # "single" or "distributed" force the plan's shape

    def __post_init__(self) -> None:
        unknown = set(self.rules) - set(RULES)
        if unknown or self.mode not in MODES:
            raise ValueError(f"unknown rules {sorted(unknown)} or mode {self.mode!r}")

    def enabled(self, rule: str) -> bool:
        return rule in self.rules

    def to_json(self) -> dict[str, Any]:
        return {"broadcast_threshold_mb": self.broadcast_threshold_bytes / MIB,
                "target_fragment_mb": self.target_fragment_bytes / MIB,
                "single_node_threshold_mb": self.single_node_threshold_bytes / MIB,
                "max_fragments": self.max_fragments,
                "scan_mb_per_s": self.scan_bytes_per_s / MIB,
                "rules_enabled": list(self.rules), "mode": self.mode}

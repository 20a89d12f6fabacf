"""`auto` SRAM costs in a hardware config: resolved to numbers when the config is built.

A memory key written `auto` (`read_pj`, `write_pj`, `leakage_mw`, `area_mm2_per_kib`) takes
the value that `sram_table.sram_costs` interpolates for the config's `technology_nm`, the
memory's `size_kib` and `word_bits`. The loaded config holds plain numbers (so every cost is a
float on `HwConfig`), and remembers which keys were `auto` in the memory's `auto` field, so that
`HwConfig.to_dict()` writes them as `auto` again and a sweep that changes `size_kib` gets the
costs of the new size. A number in the file always wins over the table.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sparsespikformer.simulator.config_fields import AUTO
from sparsespikformer.simulator.errors import HwConfigError
from sparsespikformer.simulator.sram_table import sram_costs, table_nodes

AUTO_KEYS = ("read_pj", "write_pj", "leakage_mw", "area_mm2_per_kib")


def resolve_auto_costs(hw: Any, sections: tuple[str, ...], source: str) -> Any:
    """`hw` with every `auto` SRAM cost replaced by the table's value (HwConfigError if the
    technology has no table)."""
    changes = {}
    for name in sections:
        memory = getattr(hw, name)
        auto = tuple(key for key in AUTO_KEYS if getattr(memory, key) == AUTO)
        if not auto:
            continue
        try:
            costs = sram_costs(hw.technology_nm, memory.size_kib, memory.word_bits)
        except KeyError:
            nodes = ", ".join(f"{node:g}" for node in table_nodes())
            raise HwConfigError(
                f"{source}: {name}.{auto[0]}: 'auto' needs an SRAM table for technology_nm "
                f"{hw.technology_nm:g} (tables exist for: {nodes} nm); give a number") from None
        values = {key: getattr(costs, key) for key in auto}
        changes[name] = dataclasses.replace(memory, **values, auto=auto)
    return dataclasses.replace(hw, **changes) if changes else hw


def to_plain_dict(hw: Any) -> dict[str, Any]:
    """Nested dict of every value, `auto` keys written `auto`, bookkeeping dropped."""
    data = dataclasses.asdict(hw)
    data.pop("source", None)
    for section in data.values():
        if isinstance(section, dict) and "auto" in section:
            for key in section.pop("auto"):
                section[key] = AUTO
    return data


__all__ = ["AUTO_KEYS", "resolve_auto_costs", "to_plain_dict"]

"""Spikformer-4-384 (CIFAR-10 shapes) on every bundled accelerator: energy, latency, DRAM.

A synthetic trace (15 % input spikes, T = 4; no weights, no data) at two weight densities:
dense (1.0) and 7.5 % (92.5 % sparse, the lottery tickets' level). One row per (config,
density): energy (µJ) split into compute, on-chip memory, DRAM and leakage, latency (ms),
DRAM traffic (Mbit, weights apart) and the bound. Used to compare simulator versions: run it
on two checkouts and diff the tables.

Run: python benchmarks/bundled_configs.py [--firing-rate 0.15] [--csv PATH]
"""

from __future__ import annotations

import argparse

import pandas as pd

from sparsespikformer.hwconfigs import list_hwconfigs
from sparsespikformer.model import create_model
from sparsespikformer.model.tracing.record import layer_shapes
from sparsespikformer.simulator import load_hwconfig, simulate, synthetic_trace

PRESET = "spikformer_4_384_cifar10"
DENSITIES = (1.0, 0.075)
COMPUTE = ("pe_array", "neuron_unit", "selector_unit")
ON_CHIP = ("weight_memory", "spike_buffer", "global_buffer", "membrane_buffer")


def row(config: str, density: float, totals: dict) -> dict:
    def share(names):
        return sum(totals.get(f"energy_{name}_pj", 0.0) for name in names) / 1e6

    return {"config": config, "weight_density": density,
            "energy_uJ": totals["energy_pj"] / 1e6, "compute_uJ": share(COMPUTE),
            "on_chip_uJ": share(ON_CHIP), "dram_uJ": share(("dram",)),
            "leakage_uJ": share(("leakage",)), "latency_ms": totals["latency_s"] * 1e3,
            "dram_Mbit": totals["dram_bits"] / 1e6,
            "weight_dram_Mbit": totals.get("weight_dram_bits", float("nan")) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firing-rate", type=float, default=0.15)
    parser.add_argument("--csv", help="also write the table here")
    args = parser.parse_args()
    shapes = layer_shapes(create_model(PRESET), (3, 32, 32))
    rows = []
    for density in DENSITIES:
        trace = synthetic_trace(shapes, firing_rate=args.firing_rate, weight_density=density,
                                timesteps=4, preset=PRESET)
        for config in list_hwconfigs():
            rows.append(row(config, density, simulate(trace, load_hwconfig(config)).totals))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.float_format", "{:,.4g}".format):
        print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()

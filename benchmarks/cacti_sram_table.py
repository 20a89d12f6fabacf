"""Regenerate the 45 nm SRAM table of `simulator/sram_table.py` with CACTI 7.0 (provenance).

Not run by the tests or the product: it documents how the table's numbers were made, so
anyone can check or extend them (another node, another cell type). It needs a built CACTI 7
(`make opt` in its source tree; the source ships, for instance, inside the `hwcomponents-cacti`
wheel on PyPI) and its `default_cfg.cfg` (the Accelergy/hwcomponents plug-in's defaults: ITRS
LSTP cells and periphery, 300 K, fast access mode, ED^2 objective).

Run: python benchmarks/cacti_sram_table.py CACTI_DIR DEFAULT_CFG [--node-um 0.045]
Prints one table row per (capacity, word width) in the table's tuple format.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

CAPACITIES_KIB = [2 ** k for k in range(15)]  # 1 KiB .. 16 MiB
WORD_BYTES = (8, 16, 32, 64, 128)  # 64 .. 1024-bit words


def run_cacti(cacti_dir: Path, default_cfg: str, size_bytes: int, block_bytes: int,
              node_um: float) -> dict[str, float]:
    cfg = default_cfg + (
        f"\n-size (bytes) {size_bytes}\n-read-write port  1\n-block size (bytes) {block_bytes}\n"
        f"-technology (u) {node_um}\n-output/input bus width  {block_bytes * 8}\n"
        f'-UCA bank 1\n-cache type "ram"\n-tag size (b) 0\n-associativity 1\n')
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "sram.cfg"
        path.write_text(cfg)
        subprocess.run(["./cacti", "-infile", str(path)], cwd=cacti_dir, check=True,
                       capture_output=True)
        row = list(csv.DictReader(open(str(path) + ".out")))[-1]
    return {"read_pj": float(row[" Dynamic read energy (nJ)"]) * 1e3,
            "write_pj": float(row[" Dynamic write energy (nJ)"]) * 1e3,
            "leakage_mw": float(row[" Standby leakage per bank(mW)"]),
            "area_mm2": float(row[" Area (mm2)"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cacti_dir", type=Path)
    parser.add_argument("default_cfg", type=Path)
    parser.add_argument("--node-um", type=float, default=0.045)
    args = parser.parse_args()
    default_cfg = args.default_cfg.read_text()
    for kib in CAPACITIES_KIB:
        for block in WORD_BYTES:
            if kib * 1024 < block * 64:  # CACTI needs at least 64 rows
                continue
            r = run_cacti(args.cacti_dir, default_cfg, kib * 1024, block, args.node_um)
            print(f"    ({kib}, {block * 8}, {r['read_pj']:.6g}, {r['write_pj']:.6g}, "
                  f"{r['leakage_mw']:.6g}, {r['area_mm2']:.6g}),")
    return 0


if __name__ == "__main__":
    sys.exit(main())

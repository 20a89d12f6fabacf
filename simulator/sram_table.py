"""Capacity-aware SRAM costs: published per-access energy, leakage and area by technology node.

An SRAM key written `auto` in a hardware config (`read_pj`, `write_pj`, `leakage_mw`,
`area_mm2_per_kib` of the weight memory and of every buffer) takes its value from the table of
the config's `technology_nm`, at the memory's `size_kib` and `word_bits`:

* within the table: per word width, log(value) is interpolated linearly in log2(capacity)
  (above the table's last capacity the end segment is extended; below its first, 1 KiB, the
  first capacity's values are kept: a smaller array's cost is its periphery's, and the
  extended slope went to unphysical values, 0.06 pJ a read at 0.01 KiB); between two
  tabulated widths, log(value) is interpolated linearly in log2(width);
* a width outside the tabulated ones scales energy in proportion to the width (constant
  energy per bit) from the nearest tabulated width; leakage and area per KiB are taken at
  that width.

45 nm table (`SRAM_TABLE_45NM`): CACTI 7.0 (HP Labs), 45 nm, single-bank scratchpad RAM
(`cache type "ram"`, one read/write port, ITRS low-standby-power cells and periphery, 300 K,
the defaults of the Accelergy/hwcomponents CACTI plug-in), run for every power-of-two
capacity from 1 KiB to 16 MiB and word widths 64 to 1024 bits. Its 64 KiB / 64-bit and
256 KiB / 256-bit points are exactly the CACTI (Accelergy) figures of docs/references.md
(25.87 / 19.65 and 124.61 / 118.03 pJ). Accuracy, held-out points and how to regenerate the table:
docs/sram-tables.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# (capacity KiB, word bits, read pJ, write pJ, leakage mW, area mm2); CACTI 7.0, 45 nm, ITRS
# LSTP, one bank, one RW port (docs/sram-tables.md). Each per access of one word.
SRAM_TABLE_45NM: tuple[tuple[float, int, float, float, float, float], ...] = (
    (1, 64, 1.66966, 3.49161, 3.53876e-05, 0.0035993),
    (1, 128, 3.37845, 5.11277, 3.90173e-05, 0.00531964),
    (2, 64, 2.75566, 4.23915, 7.41733e-05, 0.00754236),
    (2, 128, 3.79698, 7.44088, 7.43359e-05, 0.0083071),
    (2, 256, 9.46053, 12.9292, 7.09633e-05, 0.0134821),
    (4, 64, 3.38552, 6.45356, 0.000140432, 0.0135029),
    (4, 128, 4.42684, 11.8899, 0.000140595, 0.0142676),
    (4, 256, 10.2041, 17.4919, 0.000134691, 0.0192628),
    (4, 512, 30.5024, 37.4397, 0.000135384, 0.038138),
    (8, 64, 6.13702, 7.87807, 0.000256785, 0.0262673),
    (8, 128, 7.91635, 14.0524, 0.000255838, 0.0277058),
    (8, 256, 11.484, 26.4102, 0.000257769, 0.0307979),
    (8, 512, 31.896, 46.4716, 0.000252307, 0.0492292),
    (8, 1024, 108.099, 121.973, 0.000264819, 0.120278),
    (16, 64, 11.6097, 10.6968, 0.000469172, 0.050742),
    (16, 128, 10.7481, 23.2224, 0.000497793, 0.0506494),
    (16, 256, 14.3158, 44.5186, 0.000499724, 0.0537415),
    (16, 512, 34.4761, 64.3284, 0.000481775, 0.0713627),
    (16, 1024, 110.792, 139.944, 0.00047212, 0.141554),
    (32, 64, 17.0418, 15.3975, 0.000923907, 0.0948597),
    (32, 128, 20.3074, 27.5274, 0.000927107, 0.0975387),
    (32, 256, 26.838, 51.7865, 0.000928967, 0.103395),
    (32, 512, 39.9081, 100.314, 0.00093651, 0.11548),
    (32, 1024, 115.973, 175.677, 0.000882343, 0.184015),
    (64, 64, 25.8695, 19.6486, 0.00167027, 0.209046),
    (64, 128, 39.332, 36.0435, 0.00165181, 0.187953),
    (64, 256, 51.7987, 66.2387, 0.00165989, 0.198942),
    (64, 512, 76.7312, 126.628, 0.00167152, 0.221984),
    (64, 1024, 126.605, 247.417, 0.00169859, 0.268744),
    (128, 64, 32.2859, 26.065, 0.00334055, 0.429589),
    (128, 128, 50.2566, 46.968, 0.00330362, 0.41348),
    (128, 256, 73.7616, 88.2016, 0.00331979, 0.473839),
    (128, 512, 97.7725, 198.375, 0.00330875, 0.391346),
    (128, 1024, 147.647, 390.671, 0.00333582, 0.438107),
    (256, 64, 44.7157, 38.4949, 0.0066811, 0.872093),
    (256, 128, 76.1191, 63.6773, 0.00626877, 0.887609),
    (256, 256, 124.61, 118.033, 0.00623184, 0.859765),
    (256, 512, 199.379, 228.259, 0.00628414, 1.03866),
    (256, 1024, 289.557, 490.763, 0.0062731, 0.858575),
    (512, 64, 68.3493, 51.346, 0.012496, 1.64463),
    (512, 128, 100.187, 87.7454, 0.0125375, 1.79757),
    (512, 256, 167.908, 161.331, 0.0124637, 1.7977),
    (512, 512, 274.521, 333.304, 0.0124507, 1.82824),
    (512, 1024, 469.59, 670.795, 0.0125462, 2.36635),
    (1024, 64, 93.5192, 76.1829, 0.0249626, 3.26283),
    (1024, 128, 153.433, 129.128, 0.0248517, 3.24735),
    (1024, 256, 251.863, 245.286, 0.0249274, 3.67635),
    (1024, 512, 434.067, 492.85, 0.0249014, 3.95301),
    (1024, 1024, 753.784, 871.35, 0.0242964, 4.05413),
    (2048, 64, 127.527, 110.19, 0.0499251, 6.46596),
    (2048, 128, 205.041, 170.368, 0.0483843, 6.80215),
    (2048, 256, 353.951, 305.34, 0.0482658, 6.80054),
    (2048, 512, 624.366, 599.51, 0.0482109, 6.97801),
    (2048, 1024, 1104.82, 1222.39, 0.0485929, 8.76263),
    (4096, 64, 188.734, 155.065, 0.0991817, 11.989),
    (4096, 128, 299.928, 275.289, 0.0993478, 12.7788),
    (4096, 256, 521.724, 472.447, 0.0965072, 13.623),
    (4096, 512, 939.941, 915.086, 0.0964217, 14.2597),
    (4096, 1024, 1797, 1914.57, 0.0971857, 18.1856),
    (8192, 64, 254.905, 221.236, 0.198363, 23.763),
    (8192, 128, 416.736, 392.097, 0.198696, 25.1523),
    (8192, 256, 757.76, 745.332, 0.198374, 25.6666),
    (8192, 512, 1397.61, 1372.76, 0.192843, 28.1247),
    (8192, 1024, 2878.7, 3116.5, 0.192843, 31.9739),
    (16384, 64, 351.272, 317.603, 0.396727, 47.4069),
    (16384, 128, 588.096, 562.791, 0.397729, 49.9298),
    (16384, 256, 1070.57, 1058.14, 0.396748, 51.1146),
    (16384, 512, 2032.64, 2007.79, 0.385687, 56.052),
    (16384, 1024, 4138.08, 4375.87, 0.385687, 63.3735),
)

SRAM_TABLES = {45.0: SRAM_TABLE_45NM}
COST_COLUMNS = ("read_pj", "write_pj", "leakage_mw", "area_mm2")


@dataclass(frozen=True)
class SramCosts:
    """Resolved costs of one SRAM: energies per `word_bits` access, whole-memory leakage."""

    read_pj: float
    write_pj: float
    leakage_mw: float
    area_mm2_per_kib: float


def table_nodes() -> tuple[float, ...]:
    return tuple(sorted(SRAM_TABLES))


def sram_costs(technology_nm: float, size_kib: float, word_bits: int) -> SramCosts:
    """Interpolated SRAM costs (see the module docstring).

    Raises KeyError when no table exists for `technology_nm` (the config loader turns it
    into an `HwConfigError` naming the key).
    """
    table = np.asarray(SRAM_TABLES[float(technology_nm)], dtype=np.float64)
    read, write, leakage, area = (_interpolate(table, size_kib, word_bits, column)
                                  for column in range(2, 6))
    widths = np.unique(table[:, 1])
    nearest = float(np.clip(word_bits, widths[0], widths[-1]))
    energy_scale = word_bits / nearest  # constant energy per bit outside the tabulated widths
    return SramCosts(read_pj=read * energy_scale, write_pj=write * energy_scale,
                     leakage_mw=leakage, area_mm2_per_kib=area / size_kib)


def _interpolate(table: np.ndarray, size_kib: float, word_bits: int, column: int) -> float:
    widths = np.unique(table[:, 1])
    width = float(np.clip(word_bits, widths[0], widths[-1]))
    upper = int(np.searchsorted(widths, width))
    lower = max(upper - 1, 0) if widths[min(upper, len(widths) - 1)] != width else upper
    upper = min(upper, len(widths) - 1)
    low_value = _along_capacity(table, widths[lower], size_kib, column)
    if upper == lower:
        return low_value
    high_value = _along_capacity(table, widths[upper], size_kib, column)
    t = (math.log2(width) - math.log2(widths[lower])) / (math.log2(widths[upper])
                                                           - math.log2(widths[lower]))
    return math.exp((1 - t) * math.log(low_value) + t * math.log(high_value))


def _along_capacity(table: np.ndarray, width: float, size_kib: float, column: int) -> float:
    """log(value) piecewise linear in log2(capacity) for one word width; the last segment
    extended above the table, the first capacity's value kept below it."""
    rows = table[table[:, 1] == width]
    x, y = np.log2(rows[:, 0]), np.log(rows[:, column])
    at = max(math.log2(size_kib), float(x[0]))
    i = int(np.clip(np.searchsorted(x, at) - 1, 0, len(x) - 2))
    slope = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
    return float(math.exp(y[i] + slope * (at - x[i])))


__all__ = ["SRAM_TABLE_45NM", "SRAM_TABLES", "COST_COLUMNS", "SramCosts", "sram_costs",
           "table_nodes"]

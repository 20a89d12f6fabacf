"""The SCALE-Sim v3 configuration under which its cycle counts are comparable with ours
(docs/references.md, SCALE-Sim).

Huge SRAMs, CALC interface bandwidth (no memory stalls) and no sparsity: SCALE-Sim's
"Total Cycles" is then the pure systolic compute time that `mapping.scalesim_cycles`
models. A `str.format` template with `rows`, `cols` and `dataflow` (`ws`, `os`, `is`), used
by the fidelity test and `benchmarks/simulator_speed.py`; this package never runs SCALE-Sim.
"""

from __future__ import annotations

# Our dataflow names -> SCALE-Sim's.
SCALESIM_DATAFLOWS = {"weight_stationary": "ws", "output_stationary": "os",
                      "input_stationary": "is"}

SCALESIM_CONFIG = """[general]
run_name = gemm_check
[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = 10240
FilterSramSzkB = 10240
OfmapSramSzkB = 10240
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
Bandwidth = 10
ReadRequestBuffer = 32
WriteRequestBuffer = 32
[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2
[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40
[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""

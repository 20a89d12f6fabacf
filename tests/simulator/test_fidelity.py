"""Fidelity anchors: each against an oracle computed here from first principles."""

import math
import os

import numpy as np
import pytest
from spikformer_shapes import spikformer_shapes

from sparsespikformer.simulator import gemm_trace, load_hwconfig, simulate, synthetic_trace
from sparsespikformer.simulator.mapping import scalesim_cycles
from sparsespikformer.simulator.scalesim_config import SCALESIM_CONFIG, SCALESIM_DATAFLOWS

E_MAC_PJ, E_AC_PJ = 4.6, 0.9  # Horowitz 45 nm fp32, the papers' constants (docs/references.md)


def tiny_trace(**kwargs):
    return synthetic_trace(spikformer_shapes(selector=True), **kwargs)


# ----------------------------------------------------------------------------- paper formula


@pytest.mark.parametrize("kwargs", [
    {},
    {"firing_rate": 0.05, "weight_density": 0.1, "keep_ratio": 0.6, "timesteps": 2},
    {"firing_rate": 0.4, "weight_density": 0.5, "timesteps": 1, "seed": 3},
])
def test_paper_config_reproduces_the_papers_energy_formula(kwargs):
    trace = tiny_trace(**kwargs)
    layers = trace.layers
    real = layers.in_value_kind == "real"
    # E = 4.6 pJ x MACs(real-valued input: the first conv, a learned selector's hidden layer)
    #   + 0.9 pJ x SOPs(every other layer)
    oracle = E_MAC_PJ * layers.dense_macs[real].sum() + E_AC_PJ * layers.sops[~real].sum()
    assert layers.layer[real].iloc[0] == "patch_embed.proj_conv"
    result = simulate(trace, load_hwconfig("paper_fp32_45nm"))
    assert result.totals["energy_pj"] == pytest.approx(oracle, rel=1e-12)
    assert result.totals["sops"] == pytest.approx(layers.sops[~real].sum(), rel=1e-12)


# ----------------------------------------------------------------------------- SCALE-Sim


def scale_sim_v2_cycles(m, n, k, rows, cols, dataflow):
    """docs/references.md: SCALE-Sim v2's stall-free cycles of an (m x k) @ (k x n) GEMM."""
    sr, sc, t = {"weight_stationary": (k, n, m), "input_stationary": (k, m, n),
                 "output_stationary": (m, n, k)}[dataflow]
    fill = 2 * rows + cols - 2 if dataflow != "output_stationary" else rows + cols - 2
    return (fill + t) * math.ceil(sr / rows) * math.ceil(sc / cols) - 1


GEMMS = [(1, 1, 1), (7, 5, 3), (64, 64, 64), (100, 50, 30), (33, 129, 65), (196, 512, 384)]
ARRAYS = [(4, 4), (8, 16), (16, 8), (32, 32), (3, 5)]
DATAFLOWS = ["weight_stationary", "output_stationary", "input_stationary"]


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rows, cols", ARRAYS)
def test_dense_systolic_cycles_equal_scale_sim_v2(dataflow, rows, cols):
    hw = load_hwconfig("dense_systolic", {"pe_array.rows": rows, "pe_array.cols": cols,
                                          "pe_array.dataflow": dataflow})
    for m, n, k in GEMMS:
        result = simulate(gemm_trace(m, n, k), hw)
        assert result.totals["cycles"] == scale_sim_v2_cycles(m, n, k, rows, cols, dataflow), \
            (m, n, k)
        assert result.totals["memory_bound_layers"] == 0


def test_mapping_scalesim_cycles_is_the_closed_form():
    """`mapping.scalesim_cycles` (used by benchmarks/simulator_speed.py) is the v2 form above."""
    for dataflow in DATAFLOWS:
        for rows, cols in ARRAYS:
            for m, n, k in GEMMS:
                assert scalesim_cycles(m, n, k, rows, cols, dataflow) == \
                    scale_sim_v2_cycles(m, n, k, rows, cols, dataflow), (dataflow, rows, m)


def single_gemm_layer_trace(m, n, k, groups, timesteps):
    """One dense real-input layer of `groups` (m x k) @ (k x n) GEMMs per timestep."""
    shape = {"layer": "gemm", "kind": "linear", "block": -1, "tokens_in": m, "tokens_out": m,
             "in_numel": groups * m * k, "out_numel": groups * m * n, "gemm_m": m, "gemm_n": n,
             "gemm_k": k, "gemm_groups": groups, "weight_numel": groups * k * n,
             "in_value_kind": "real"}
    return synthetic_trace([shape], timesteps=timesteps, weight_density=1.0)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_every_timestep_and_group_is_one_scale_sim_run(dataflow):
    """Serial time: groups x T GEMM runs back to back; parallel: T stacked into M."""
    m, n, k, groups, steps = 100, 50, 30, 3, 4
    trace = single_gemm_layer_trace(m, n, k, groups, steps)
    overrides = {"pe_array.rows": 8, "pe_array.cols": 16, "pe_array.dataflow": dataflow}
    serial = simulate(trace, load_hwconfig("dense_systolic", overrides))
    assert serial.totals["cycles"] == groups * steps * scale_sim_v2_cycles(m, n, k, 8, 16,
                                                                           dataflow)
    overrides["policies.time_handling"] = "parallel"
    parallel = simulate(trace, load_hwconfig("dense_systolic", overrides))
    assert parallel.totals["cycles"] == groups * scale_sim_v2_cycles(m * steps, n, k, 8, 16,
                                                                     dataflow)


def test_dense_systolic_utilization_is_macs_over_pe_cycles():
    hw = load_hwconfig("dense_systolic", {"pe_array.rows": 8, "pe_array.cols": 16})
    result = simulate(gemm_trace(100, 50, 30), hw)
    cycles = scale_sim_v2_cycles(100, 50, 30, 8, 16, "weight_stationary")
    assert result.totals["utilization"] == pytest.approx(100 * 50 * 30 / (cycles * 8 * 16))


# .ci/run sets this in the venv it builds for SCALE-Sim (numpy < 2.4): there a skip is a failure.
REQUIRE_SCALESIM = os.environ.get("SPARSESPIKFORMER_REQUIRE_SCALESIM") == "1"


def skip_or_fail(reason: str) -> None:
    if REQUIRE_SCALESIM:
        pytest.fail(f"SPARSESPIKFORMER_REQUIRE_SCALESIM=1 but {reason}")
    pytest.skip(reason)


def run_scalesim_package(m, n, k, rows, cols, dataflow, tmp_path):
    """SCALE-Sim v3 (`pip install scalesim`) in CALC bandwidth mode: its 'Total Cycles'."""
    import contextlib
    import io

    from scalesim.scale_sim import scalesim

    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "scale.cfg"
    config.write_text(SCALESIM_CONFIG.format(rows=rows, cols=cols,
                                             dataflow=SCALESIM_DATAFLOWS[dataflow]))
    (tmp_path / "topo.csv").write_text(f"Layer,M,N,K,\ngemm,{m},{n},{k},\n")
    (tmp_path / "layout.csv").write_text("Layer name,unused,\n")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=str(config),
                           topology=str(tmp_path / "topo.csv"),
                           layout=str(tmp_path / "layout.csv"), input_type_gemm=True)
            sim.run_scale(top_path=str(tmp_path / "out"))
    except TypeError as err:  # scalesim 3.0.0 calls int() on 1-element arrays: numpy >= 2.4
        skip_or_fail(f"scalesim does not run with numpy {np.__version__}: {err}")
    report = (tmp_path / "out" / "gemm_check" / "COMPUTE_REPORT.csv").read_text().splitlines()
    return int(report[1].split(",")[2])


# Ragged folds and folds that are exact multiples of the array (64 = 4 x 16 = 2 x 32, 48 =
# 3 x 16 = 6 x 8): an off-by-one in ceil(S / R) or in the last fold shows in the latter.
PACKAGE_CASES = [((100, 50, 30), (8, 16)), ((33, 129, 65), (32, 32)),
                 ((64, 64, 64), (16, 16)), ((64, 48, 32), (8, 16)), ((128, 64, 96), (32, 32))]


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_cycles_match_the_scalesim_package_when_installed(dataflow, tmp_path):
    try:
        import scalesim  # noqa: F401
    except ImportError:
        skip_or_fail("the scalesim package is not installed (.ci/run installs it in a venv)")
    for case, ((m, n, k), (rows, cols)) in enumerate(PACKAGE_CASES):
        expected = run_scalesim_package(m, n, k, rows, cols, dataflow, tmp_path / str(case))
        hw = load_hwconfig("dense_systolic", {"pe_array.rows": rows, "pe_array.cols": cols,
                                              "pe_array.dataflow": dataflow})
        assert simulate(gemm_trace(m, n, k), hw).totals["cycles"] == expected


# ----------------------------------------------------------------------------- monotonicity


def test_energy_and_cycles_fall_with_firing_rate_under_skip():
    hw = load_hwconfig("sparse_int8_45nm")
    results = [simulate(tiny_trace(firing_rate=rate), hw) for rate in (0.5, 0.25, 0.1, 0.02)]
    energies = [r.totals["energy_pj"] for r in results]
    cycles = [r.totals["cycles"] for r in results]
    assert energies == sorted(energies, reverse=True) and len(set(energies)) == 4
    assert cycles == sorted(cycles, reverse=True) and len(set(cycles)) == 4
    # and layer by layer (a fused GEMM->LIF pair counted as one pipeline), never up
    def units(result):
        cycles = result.per_layer["cycles"].to_numpy().copy()
        fused = np.flatnonzero(result.per_layer["fused_with_next"].to_numpy())
        cycles[fused] += cycles[fused + 1]
        cycles[fused + 1] = 0
        return cycles

    per_layer = np.array([units(r) for r in results])
    assert (np.diff(per_layer, axis=0) <= 0).all()


def test_energy_and_cycles_fall_with_weight_density_under_skip():
    hw = load_hwconfig("sparse_int8_45nm")
    results = [simulate(tiny_trace(weight_density=d), hw) for d in (1.0, 0.5, 0.2, 0.05)]
    energies = [r.totals["energy_pj"] for r in results]
    cycles = [r.totals["cycles"] for r in results]
    assert energies == sorted(energies, reverse=True) and len(set(energies)) == 4
    assert cycles == sorted(cycles, reverse=True) and len(set(cycles)) == 4


def test_nothing_changes_with_sparsity_when_handling_is_none():
    hw = load_hwconfig("sparse_int8_45nm", {"policies.input_sparsity": "none",
                                            "policies.weight_sparsity": "none",
                                            "weight_memory.format": "dense",
                                            "leakage_mw": 0})
    spike_only = [layer for layer in spikformer_shapes()
                  if layer["in_value_kind"] in ("spike", "real")]
    a = simulate(synthetic_trace(spike_only, firing_rate=0.5, weight_density=1.0), hw)
    b = simulate(synthetic_trace(spike_only, firing_rate=0.05, weight_density=0.1), hw)
    assert a.totals["cycles"] == b.totals["cycles"]
    pe = a.layers[a.layers.component == "pe_array"].energy_pj.sum()
    assert pe == b.layers[b.layers.component == "pe_array"].energy_pj.sum()


@pytest.mark.parametrize("operand", ["input_sparsity", "weight_sparsity"])
def test_gate_saves_energy_but_not_cycles(operand):
    trace = tiny_trace(firing_rate=0.15, weight_density=0.3)
    base = {"policies.input_sparsity": "none", "policies.weight_sparsity": "none"}

    def run(mode):
        overrides = {**base, f"policies.{operand}": mode}
        return simulate(trace, load_hwconfig("sparse_int8_45nm", overrides))

    none, gate, skip = run("none"), run("gate"), run("skip")
    assert gate.totals["cycles"] == none.totals["cycles"]
    assert gate.totals["energy_pe_array_pj"] < none.totals["energy_pe_array_pj"]
    assert skip.totals["cycles"] < gate.totals["cycles"]
    # gated slots cost nothing in this config: gating saves exactly the skipped work's energy
    assert gate.totals["energy_pe_array_pj"] == pytest.approx(skip.totals["energy_pe_array_pj"])


def test_bigger_weight_memory_removes_dram_traffic_once_the_layer_fits():
    # one dense int8 linear layer, stored as a bitmask: numel mask bits + nnz x 8 value bits
    m, n, k = 64, 256, 512
    trace = gemm_trace(m, n, k)
    stored_kib = (k * n + k * n * 8) / 8 / 1024  # 144 KiB
    base = {"weight_memory.format": "bitmask", "spike_buffer.size_kib": 1 << 20,
            "global_buffer.size_kib": 1 << 20, "pe_array.dataflow": "weight_stationary"}

    def dram_bits(size_kib):
        hw = load_hwconfig("sparse_int8_45nm", {**base, "weight_memory.size_kib": size_kib})
        return simulate(trace, hw).totals["dram_bits"]

    small, smaller = dram_bits(stored_kib / 2), dram_bits(stored_kib / 4)
    assert 0 < small < smaller
    # the part that does not fit is streamed once per weight-set read (once: T = 1, WS)
    assert small == pytest.approx((stored_kib / 2) * 1024 * 8)
    assert dram_bits(stored_kib) == 0
    assert dram_bits(stored_kib * 4) == 0


def test_time_parallel_reads_each_weight_once_instead_of_t_times():
    timesteps = 4
    trace = tiny_trace(timesteps=timesteps)

    def weight_reads(mode):
        hw = load_hwconfig("sparse_int8_45nm", {"policies.time_handling": mode,
                                                "pe_array.dataflow": "weight_stationary"})
        frame = simulate(trace, hw).layers
        reads = frame[(frame.component == "weight_memory") & frame.action.str.startswith("read")]
        return reads.groupby("layer")["count"].sum()

    serial, parallel = weight_reads("serial"), weight_reads("parallel")
    steps = trace.layers.set_index("layer").timesteps
    assert list(serial.index) == list(parallel.index)
    assert np.allclose(serial / parallel, steps[serial.index])
    assert set(steps[serial.index]) == {1, timesteps}  # head and selector run once per image

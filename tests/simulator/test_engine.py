"""The engine's result: consistent tables and totals, every config runs, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from spikformer_shapes import spikformer_shapes

from sparsespikformer.hwconfigs import list_hwconfigs
from sparsespikformer.simulator import (
    SimResult,
    apply_overrides,
    gemm_trace,
    load_hwconfig,
    simulate,
    synthetic_trace,
)
from sparsespikformer.simulator.engine import TOTAL_KEYS
from sparsespikformer.simulator.result import LAYER_COLUMNS


@pytest.fixture(scope="module")
def trace():
    return synthetic_trace(spikformer_shapes(selector=True), firing_rate=0.2,
                           weight_density=0.4, keep_ratio=0.75)


@pytest.mark.parametrize("name", list_hwconfigs())
def test_every_bundled_config_simulates_a_trace(name, trace):
    result = simulate(trace, load_hwconfig(name))
    assert isinstance(result, SimResult)
    assert set(TOTAL_KEYS) == set(result.totals)
    assert result.totals["energy_pj"] > 0 and result.totals["latency_s"] > 0
    finite = {k: v for k, v in result.totals.items() if k != "area_mm2"}
    assert all(np.isfinite(v) and v >= 0 for v in finite.values())
    assert list(result.per_layer.layer) == list(trace.layers.layer)


def test_tables_add_up_to_the_totals(trace):
    hw = load_hwconfig("sparse_int8_45nm")
    result = simulate(trace, hw)
    totals, layers, per_layer = result.totals, result.layers, result.per_layer
    assert list(layers.columns) == list(LAYER_COLUMNS)
    assert layers.energy_pj.sum() == pytest.approx(totals["energy_pj"], rel=1e-12)
    assert per_layer.energy_pj.sum() == pytest.approx(totals["energy_pj"], rel=1e-12)
    assert per_layer.cycles.sum() == totals["cycles"]
    assert totals["latency_s"] == pytest.approx(totals["cycles"] / (hw.clock_mhz * 1e6))
    assert totals["edp_pj_s"] == pytest.approx(totals["energy_pj"] * totals["latency_s"])
    by_component = layers.groupby("component").energy_pj.sum()
    for component, energy in by_component.items():
        assert totals[f"energy_{component}_pj"] == pytest.approx(energy)
    # leakage = power x time: mW x s = 1e9 pJ; logic plus the four SRAMs' (CACTI 45 nm LSTP:
    # 0.00623184 mW per 256 KiB / 256-bit memory, 0.00167027 mW per 64 KiB / 64-bit one)
    power_mw = hw.leakage_mw + 2 * 0.00623184 + 2 * 0.00167027
    assert totals["energy_leakage_pj"] == pytest.approx(power_mw * totals["latency_s"] * 1e9)
    # one row per (layer, component, action), in layer order
    assert not layers.duplicated(["layer", "component", "action"]).any()
    order = {name: i for i, name in enumerate(trace.layers.layer)}
    assert layers.layer.map(order).is_monotonic_increasing


def test_latency_is_the_slower_of_compute_and_memory_worked_on_paper():
    """gemm_trace(16, 16, 16) on sparse_int8_45nm (16 x 16, output stationary): compute is
    SCALE-Sim's (R + C + K - 2) - 1 = 45 cycles. The global buffer moves the 8-bit input
    (16 x 16 x 8 = 2048 bits) and the 24-bit sums (16 x 16 x 24 = 6144 bits); the weight
    memory 2048 value + 256 mask bits at 4 x 256 bits a cycle (2.25 cycles). With the global
    buffer cut to one 8-bit bank its 8192 bits take 1024 cycles: memory bound, no DRAM."""
    fast = simulate(gemm_trace(16, 16, 16), load_hwconfig("sparse_int8_45nm")).per_layer
    assert (fast.compute_cycles[0], fast.cycles[0], fast.bound[0]) == (45, 45, "compute")
    assert fast.memory_cycles[0] == pytest.approx(8192 / (4 * 256))  # global buffer: 8 cycles
    narrow = load_hwconfig("sparse_int8_45nm", {"global_buffer.banks": 1,
                                                 "global_buffer.word_bits": 8})
    slow = simulate(gemm_trace(16, 16, 16), narrow).per_layer
    assert (slow.compute_cycles[0], slow.memory_cycles[0]) == (45, 1024)
    assert (slow.stall_cycles[0], slow.cycles[0], slow.bound[0]) == (0, 1024, "memory")
def test_latency_is_the_slower_of_compute_and_memory_plus_stalls(trace):
    """Alone (unfused), a layer takes the slower of its compute and memory time plus its stall;
    a fused GEMM->LIF pair overlaps: at least each row's own bound, at most both in turn."""
    unfused = simulate(trace, load_hwconfig("sata_like", {"schedule.lif_fusion": "unfused"}))
    per_layer = unfused.per_layer
    bound = np.maximum(per_layer.compute_cycles, per_layer.memory_cycles)
    assert np.array_equal(per_layer.cycles, np.ceil(bound + per_layer.stall_cycles))
    assert set(per_layer.bound) <= {"compute", "memory"}
    fused = simulate(trace, load_hwconfig("sata_like")).per_layer
    gemm = np.flatnonzero(fused.fused_with_next.to_numpy())
    assert gemm.size > 0 and not unfused.per_layer.fused_with_next.any()
    own = np.ceil(np.maximum(fused.compute_cycles, fused.memory_cycles)
                  + fused.stall_cycles).to_numpy()
    pair = fused.cycles.to_numpy()[gemm] + fused.cycles.to_numpy()[gemm + 1]
    assert (pair >= np.maximum(own[gemm], own[gemm + 1])).all()
    assert (pair <= own[gemm] + own[gemm + 1] + 1).all()


# Four layers whose counts are worked by hand below (T = 4, firing rate 0.25, density 0.5).
COUNTED_LAYERS = [
    dict(layer="conv", kind="conv", block=-1, tokens_in=16, tokens_out=16, in_numel=16,
         out_numel=128, gemm_m=16, gemm_n=8, gemm_k=9, gemm_groups=1, weight_numel=72,
         in_value_kind="real"),
    dict(layer="fc", kind="linear", block=0, tokens_in=16, tokens_out=16, in_numel=128,
         out_numel=128, gemm_m=16, gemm_n=8, gemm_k=8, gemm_groups=1, weight_numel=64),
    dict(layer="qk", kind="attn_qk", block=0, tokens_in=16, tokens_out=16, in_numel=128,
         out_numel=512, gemm_m=16, gemm_n=16, gemm_k=4, gemm_groups=2, weight_numel=0),
    dict(layer="head", kind="head", block=-1, tokens_in=1, tokens_out=1, in_numel=8,
         out_numel=10, gemm_m=1, gemm_n=10, gemm_k=8, gemm_groups=1, weight_numel=80,
         in_value_kind="rate", timesteps=1),
]


def test_gflops_and_sops_worked_on_paper():
    """Dense MACs = T.groups.M.N.K: conv 4 x 16 x 8 x 9 = 4608, fc 4 x 16 x 8 x 8 = 4096,
    Q.K^T 4 x 2 x 16 x 16 x 4 = 8192, head (once) 10 x 8 = 80: 16976 in all.
    SOPs (every input but the real-valued conv's) = 0.25 x (4096 + 8192 + 80) = 3092.
    Effective ops on sparse_int8_45nm (zero spikes and zero weights / K entries skipped;
    real inputs not): conv 0.5 x 4608 = 2304, fc 0.5 x 0.25 x 4096 = 512, Q.K^T with K at
    the firing rate 0.25 x 0.25 x 8192 = 512; the head's rate input r = c / T replayed as its
    counts (`rate_inputs: counts`) is c = 0.25 x 4 = 1 event per input: 0.5 x 1 x 80 = 40,
    3368 in all; priced as r of an accumulate (`rate_inputs: fraction`, the papers'
    convention) it is 0.5 x 0.25 x 80 = 10: 3338."""
    trace = synthetic_trace(COUNTED_LAYERS, firing_rate=0.25, weight_density=0.5,
                            timesteps=4)
    totals = simulate(trace, load_hwconfig("sparse_int8_45nm")).totals
    assert totals["dense_gflops"] == pytest.approx(16976e-9, rel=1e-12)
    assert totals["sops"] == pytest.approx(3092, rel=1e-12)
    assert totals["effective_gflops"] == pytest.approx(3368e-9, rel=1e-12)
    papers = load_hwconfig("sparse_int8_45nm", {"policies.rate_inputs": "fraction"})
    assert simulate(trace, papers).totals["effective_gflops"] == pytest.approx(3338e-9,
                                                                               rel=1e-12)


def test_every_lif_row_has_its_updates_in_the_breakdown(trace):
    """(The update count itself is worked on paper in test_energy_per_action.py.)"""
    layers = simulate(trace, load_hwconfig("sparse_int8_45nm")).layers
    updates = layers[(layers.component == "neuron_unit") & (layers.action == "update")]
    lif = trace.layers[trace.layers.kind == "lif"]
    assert list(updates.layer) == list(lif.layer)


def test_latency_percentiles_spread_with_the_samples(trace):
    totals = simulate(trace, load_hwconfig("loihi_like")).totals
    assert totals["latency_p50_s"] < totals["latency_p95_s"]
    assert totals["latency_p50_s"] == pytest.approx(totals["latency_s"], rel=0.05)
    dense = simulate(trace, load_hwconfig("dense_systolic")).totals  # no skipping: no spread
    assert dense["latency_p50_s"] == dense["latency_p95_s"] == pytest.approx(dense["latency_s"])


def test_same_inputs_give_identical_results(trace):
    hw = load_hwconfig("sparse_int8_45nm")
    first, second = simulate(trace, hw), simulate(trace, hw)
    assert first.totals == second.totals
    pd.testing.assert_frame_equal(first.layers, second.layers)
    rebuilt = synthetic_trace(spikformer_shapes(selector=True), firing_rate=0.2,
                              weight_density=0.4, keep_ratio=0.75)
    assert simulate(rebuilt, hw).totals == first.totals


def test_imbalance_cache_follows_the_array_shape(trace):
    # cached per (dataflow, rows, cols, time): a second shape must not reuse the first's
    hw = load_hwconfig("sparse_int8_45nm", {"pe_array.dataflow": "output_stationary"})
    a = simulate(trace, hw).totals["cycles"]
    b = simulate(trace, apply_overrides(hw, {"pe_array.rows": 64})).totals["cycles"]
    assert simulate(trace, hw).totals["cycles"] == a != b


def test_simulator_never_imports_torch():
    code = ("import sys; import sparsespikformer.simulator as s; "
            "from sparsespikformer.simulator import engine, config; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("key", ["energy.accumulate_pj", "leakage_mw",
                                 "weight_memory.read_pj"])
def test_overflowing_config_values_are_an_error_naming_the_config(trace, key):
    hw = load_hwconfig("sparse_int8_45nm", {key: 1e308})
    with pytest.raises(ValueError, match=r"sparse_int8_45nm.yaml: values overflow: energy_pj"):
        simulate(trace, hw)


# ----------------------------------------------------------------------------- CLI


def run_cli(*argv):
    from sparsespikformer.analysis.cli import main
    return main(list(argv))


def test_cli_prints_totals_in_each_format(trace, tmp_path, capsys):
    directory = trace.save(tmp_path / "trace")
    assert run_cli("simulate", str(directory), "--hw", "paper_fp32_45nm", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    expected = simulate(trace, load_hwconfig("paper_fp32_45nm")).totals["energy_pj"]
    assert data["totals"]["energy_pj"] == pytest.approx(expected)
    assert data["totals"]["area_mm2"] is None

    assert run_cli("simulate", str(directory), "--format", "csv", "--per-layer",
                   "--set", "pe_array.rows=8") == 0
    frame = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(frame.layer) == list(trace.layers.layer)

    out = tmp_path / "totals.txt"
    assert run_cli("simulate", str(directory), "--breakdown", "-o", str(out)) == 0
    assert "neuron_unit" in out.read_text()


def test_cli_bad_input_is_one_line_and_exit_2(trace, tmp_path, capsys):
    directory = trace.save(tmp_path / "trace")
    assert run_cli("simulate", str(directory), "--set", "pe_array.rows=0") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pe_array.rows: must be a positive integer" in err
    assert run_cli("simulate", str(tmp_path / "missing")) == 2
    assert "missing" in capsys.readouterr().err
    assert run_cli("simulate", str(directory), "--hw", "no_such_hw") == 2
    assert "no_such_hw" in capsys.readouterr().err


# ----------------------------------------------------------------------------- breakdown


def test_breakdown_names_every_component_action_and_its_cycles():
    """One real-input conv, a spiking linear + LIF, a max-pool and a parameter-free scorer,
    zeros gated (not skipped): every documented (component, action) shows up, and each
    action's cycles are those of the unit that does it."""
    shapes = [
        dict(layer="conv", kind="conv", block=-1, tokens_in=16, tokens_out=16, in_numel=48,
             out_numel=128, gemm_m=16, gemm_n=8, gemm_k=27, gemm_groups=1, weight_numel=216,
             in_value_kind="real"),
        dict(layer="pool", kind="pool", block=-1, tokens_in=16, tokens_out=4, in_numel=128,
             out_numel=32, gemm_m=0, gemm_n=0, gemm_k=0, gemm_groups=0, weight_numel=0),
        dict(layer="scorer", kind="selector", block=1, tokens_in=4, tokens_out=2, in_numel=32,
             out_numel=16, gemm_m=0, gemm_n=0, gemm_k=0, gemm_groups=0, weight_numel=0),
        dict(layer="fc", kind="linear", block=1, tokens_in=2, tokens_out=2, in_numel=16,
             out_numel=16, gemm_m=2, gemm_n=8, gemm_k=8, gemm_groups=1, weight_numel=64),
        dict(layer="fc_lif", kind="lif", block=1, tokens_in=2, tokens_out=2, in_numel=16,
             out_numel=16, gemm_m=0, gemm_n=0, gemm_k=0, gemm_groups=0, weight_numel=0,
             in_value_kind="real"),
    ]
    trace = synthetic_trace(shapes, firing_rate=0.25, weight_density=0.5, timesteps=2)
    hw = load_hwconfig("sparse_int8_45nm", {"policies.input_sparsity": "gate",
                                            "policies.weight_sparsity": "gate",
                                            "energy.gated_op_pj": 0.01})
    result = simulate(trace, hw)
    assert result.hw_name == "sparse_int8_45nm" and result.trace_origin == trace.origin
    layers = result.layers.set_index(["layer", "component", "action"])
    assert set(layers.index) >= {
        ("conv", "pe_array", "multiply_accumulate"), ("fc", "pe_array", "accumulate"),
        ("fc", "pe_array", "gated"), ("pool", "pe_array", "compare"),
        ("scorer", "selector_unit", "add"), ("scorer", "selector_unit", "compare"),
        ("fc_lif", "neuron_unit", "update"), ("fc_lif", "neuron_unit", "spike"),
        ("fc", "leakage", "static")}
    assert not {("conv", "pe_array", "accumulate"), ("fc", "pe_array", "multiply_accumulate")} \
        & set(layers.index)
    per_layer = result.per_layer.set_index("layer")
    # the GEMM's cycles belong to the unit that computes it
    assert layers.loc[("conv", "pe_array", "multiply_accumulate"), "cycles"] == \
        per_layer.loc["conv", "compute_cycles"]
    assert layers.loc[("fc", "pe_array", "accumulate"), "cycles"] == \
        per_layer.loc["fc", "compute_cycles"]
    # max-pool: 8 compares per output (3x3 window) x 32 outputs x 2 steps = 512 on 256 PEs
    assert layers.loc[("pool", "pe_array", "compare"), "count"] == 512
    assert layers.loc[("pool", "pe_array", "compare"), "cycles"] == 2
    assert per_layer.loc["pool", "compute_cycles"] == 2
    # scorer: 32 x 2 = 64 adds on 16 adders (gate keeps every cycle) = 4 cycles, then
    # 4 x ceil(log2 4) = 8 compares on 16 comparators = 1 cycle
    assert layers.loc[("scorer", "selector_unit", "compare"), "count"] == 8
    assert per_layer.loc["scorer", "compute_cycles"] == 4 + 1
    # LIF: 16 neurons x 2 steps = 32 updates on 16 units = 2 cycles
    assert per_layer.loc["fc_lif", "compute_cycles"] == 2


def test_per_layer_columns_of_a_gemm_worked_on_paper():
    """gemm_trace(16, 16, 16) on sparse_int8_45nm: 45 cycles at 500 MHz = 90 ns, 4096 dense
    MACs all performed, no DRAM."""
    row = simulate(gemm_trace(16, 16, 16), load_hwconfig("sparse_int8_45nm")).per_layer.iloc[0]
    assert (row.cycles, row.compute_cycles, row.dense_macs, row.ops, row.dram_bits) == \
        (45, 45, 4096, 4096, 0)
    assert row.latency_s == pytest.approx(90e-9, rel=1e-12)


def test_utilization_counts_each_pe_unit():
    """dense_systolic 8 x 16, weight stationary, 2 multipliers per PE, gemm 100 x 50 x 30:
    cycles (2 x 8 + 16 - 2 + 100 / 2) x ceil(30/8) x ceil(50/16) - 1 = 80 x 4 x 4 - 1 = 1279;
    each PE retires 2 MACs a cycle, so utilization = (150000 / 2) / (1279 x 128)."""
    hw = load_hwconfig("dense_systolic", {"pe_array.rows": 8, "pe_array.cols": 16,
                                          "pe_array.multiply_units_per_pe": 2})
    totals = simulate(gemm_trace(100, 50, 30), hw).totals
    assert totals["cycles"] == 1279
    assert totals["utilization"] == pytest.approx(75000 / (1279 * 128), rel=1e-12)
def test_cli_batch_and_the_residency_in_the_breakdown(trace, tmp_path, capsys):
    directory = trace.save(tmp_path / "trace")
    assert run_cli("simulate", str(directory), "--batch", "4", "--format", "json",
                   "--breakdown", "--set", "weight_memory.size_kib=16") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["batch"] == 4
    plan = pd.DataFrame(data["residency"])
    assert list(plan.columns[:3]) == ["tensor", "stored_bits", "resident_bits"]
    assert plan.resident_bits.sum() == 16 * 8192  # the model does not fit: memory full
    rows = pd.DataFrame(data["layers"])
    resident = rows[(rows.component == "weight_memory") & (rows.action == "resident_bits")]
    assert resident["count"].sum() == 16 * 8192
    assert run_cli("simulate", str(directory), "--breakdown") == 0
    assert "weight residency (bits)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        run_cli("simulate", str(directory), "--batch", "0")
    assert exit_info.value.code == 2

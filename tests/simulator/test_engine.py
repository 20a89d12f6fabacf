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


def test_gflops_and_sops_come_from_the_trace(trace):
    totals = simulate(trace, load_hwconfig("sparse_int8_45nm")).totals
    layers = trace.layers
    assert totals["dense_gflops"] == pytest.approx(layers.dense_macs.sum() / 1e9)
    assert totals["sops"] == pytest.approx(layers.sops[layers.in_value_kind != "real"].sum())
    assert totals["effective_gflops"] < totals["dense_gflops"]


def test_lif_updates_in_the_breakdown(trace):
    layers = simulate(trace, load_hwconfig("sparse_int8_45nm")).layers
    updates = layers[(layers.component == "neuron_unit") & (layers.action == "update")]
    lif = trace.layers[trace.layers.kind == "lif"]
    assert list(updates.layer) == list(lif.layer)
    assert np.array_equal(updates["count"].to_numpy(), (lif.out_numel * lif.timesteps).to_numpy())


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

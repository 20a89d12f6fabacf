"""A sweep with the real simulator: every row is what an independent `simulate` of the same
point gives, the point built through the config path (`load_hwconfig(base, overrides)`),
and points that differ only in clock take the same cycles and inversely scaled latencies."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sweep_fakes import tiny_layer_shapes, write_spec

from sparsespikformer.analysis.sweeps.run import run_sweep
from sparsespikformer.simulator import load_hwconfig, simulate, synthetic_trace
from sparsespikformer.simulator.engine import TOTAL_KEYS

TRACES = {
    "dense": {"firing_rate": 0.2},
    "pruned": {"firing_rate": 0.1, "weight_density": 0.25, "keep_ratio": 0.5},
}
CLOCKS_MHZ = [125, 250, 1000]
AXES = {"clock_mhz": CLOCKS_MHZ, "pe_array.rows": [8, 32]}
TRACE_SETTINGS = {"timesteps": 4, "num_samples": 8, "seed": 0}


def spec_traces():
    return [{"name": name, "accuracy": 0.9,
             "synthetic": {"layer_shapes": tiny_layer_shapes(), **stats, **TRACE_SETTINGS}}
            for name, stats in TRACES.items()]


def independent_totals(row: pd.Series, axes: dict) -> dict:
    """The row's point simulated from scratch: its own trace, its own config load."""
    trace = synthetic_trace(tiny_layer_shapes(), **TRACES[row["trace"]], **TRACE_SETTINGS)
    overrides = {key: row[key].item() if hasattr(row[key], "item") else row[key]
                 for key in axes}
    return simulate(trace, load_hwconfig(row["base"], overrides)).totals


def assert_rows_equal_independent_runs(results: pd.DataFrame, axes: dict) -> None:
    for _, row in results.iterrows():
        expected = independent_totals(row, axes)
        for key in TOTAL_KEYS:
            value = expected[key]
            if math.isnan(value):  # no component areas given (loihi_like)
                assert math.isnan(row[key]), (key, dict(row))
            else:
                assert row[key] == pytest.approx(value, rel=1e-12), (key, dict(row))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    spec = write_spec(folder, base=["sparse_int8_45nm", "loihi_like"], axes=AXES,
                      traces=spec_traces())
    outcome = run_sweep(spec, folder / "out", workers=1, progress=False)
    assert outcome.total_points == 2 * 3 * 2 * 2 == len(outcome.results)
    assert (outcome.results["status"] == "ok").all()
    return outcome.results


def test_every_row_is_an_independent_simulation_of_its_point(sweep):
    assert_rows_equal_independent_runs(sweep, AXES)


def test_clock_changes_latency_in_inverse_ratio_and_nothing_else_in_cycles(sweep):
    """With no DRAM traffic (its bandwidth is in Gbit/s, not per cycle) nothing depends on the
    clock but time: same cycles; latency x clock is constant; leakage energy follows time."""
    assert (sweep["dram_bits"] == 0).all()
    for _, group in sweep.groupby(["trace", "base", "pe_array.rows"]):
        group = group.sort_values("clock_mhz")
        assert group["clock_mhz"].tolist() == CLOCKS_MHZ
        assert group["cycles"].nunique() == 1
        cycles = group["cycles"].iloc[0]
        for clock, latency in zip(group["clock_mhz"], group["latency_s"], strict=True):
            assert latency == pytest.approx(cycles / (clock * 1e6), rel=1e-12)
        fastest, slowest = group.iloc[-1], group.iloc[0]
        assert slowest["latency_s"] / fastest["latency_s"] == pytest.approx(1000 / 125)
        leakage = group["energy_leakage_pj"].to_numpy()
        assert leakage[0] == pytest.approx(leakage[-1] * 1000 / 125, rel=1e-12)

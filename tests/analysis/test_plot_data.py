"""The data behind each plot, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sweep_fakes import tiny_layer_shapes

from sparsespikformer.analysis.reporting import plot_data
from sparsespikformer.analysis.reporting.result_files import (
    read_kept_tokens,
    read_rounds,
    write_kept_tokens,
)
from sparsespikformer.simulator.synthetic import synthetic_trace
from sparsespikformer.simulator.trace import EVENTS_ARRAY, Trace


def energy_rows():
    # layer, kind, block, component, action, energy_pj
    rows = [("conv0", "conv", -1, "pe_array", "mac", 10.0),
            ("conv0", "conv", -1, "dram", "read", 100.0),
            ("conv0", "conv", -1, "dram", "write", 20.0),
            ("b0.fc", "linear", 0, "pe_array", "acc", 5.0),
            ("b0.fc", "linear", 0, "weight_memory", "read", 7.0),
            ("b0.lif", "lif", 0, "neuron_unit", "update", 1.0),
            ("b1.fc", "linear", 1, "pe_array", "acc", 3.0)]
    table = pd.DataFrame(rows, columns=["layer", "kind", "block", "component", "action",
                                        "energy_pj"])
    table["count"], table["cycles"] = 1, 1
    return table


def test_layer_energy_sums_actions_keeps_execution_order_and_sorts_components():
    wide = plot_data.layer_energy_by_component(energy_rows())
    assert list(wide.index) == ["conv0", "b0.fc", "b0.lif", "b1.fc"]
    # totals: dram 120, pe_array 18, weight_memory 7, neuron_unit 1
    assert list(wide.columns) == ["dram", "pe_array", "weight_memory", "neuron_unit"]
    assert wide.loc["conv0", "dram"] == 120.0
    assert wide.loc["b0.fc"].tolist() == [0.0, 5.0, 7.0, 0.0]
    assert wide.to_numpy().sum() == 146.0


def test_layer_energy_by_block_and_kind():
    blocks = plot_data.layer_energy_by_component(energy_rows(), group="block")
    assert list(blocks.index) == ["outside blocks", "block 0", "block 1"]
    assert blocks.sum(axis=1).tolist() == [130.0, 13.0, 3.0]
    kinds = plot_data.layer_energy_by_component(energy_rows(), group="kind")
    assert kinds.sum(axis=1).to_dict() == {"conv": 130.0, "linear": 15.0, "lif": 1.0}
    with pytest.raises(ValueError, match="group"):
        plot_data.layer_energy_by_component(energy_rows(), group="timestep")
    per_layer = plot_data.layer_energy_by_component(energy_rows().drop(columns="component"))
    assert list(per_layer.columns) == ["total"]
    assert per_layer["total"].tolist() == [130.0, 12.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="missing columns energy_pj"):
        plot_data.layer_energy_by_component(energy_rows().drop(columns="energy_pj"))


def test_pareto_plot_data_drops_errors_and_marks_the_front():
    results = pd.DataFrame({
        "energy_pj": [1.0, 2.0, 3.0, 0.5, 4.0, np.nan],
        "accuracy": [0.90, 0.95, 0.94, 0.99, 0.96, 0.99],
        "trace": ["a", "a", "b", "b", "b", "a"],
        "status": ["ok", "ok", "ok", "error", "ok", "ok"],
    })
    data = plot_data.pareto_plot_data(results)
    assert len(data.points) == 4  # the error row and the NaN row are gone
    # (1, .90), (2, .95), (4, .96) are non-dominated; (3, .94) is dominated by (2, .95)
    assert data.points["on_front"].tolist() == [True, True, False, True]
    assert data.front["x"].tolist() == [1.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="no rows with both energy_pj and latency_s"):
        plot_data.pareto_plot_data(results.assign(latency_s=np.nan), y="latency_s",
                                   y_direction="min")


def rounds_table(baseline, accuracies):
    sparsity = [1 - 0.75 ** r for r in range(len(accuracies))]
    return pd.DataFrame({"round": range(len(accuracies)), "weight_sparsity": sparsity,
                         "test_accuracy": accuracies, "params_nonzero": 100,
                         "seconds": 1.0, "baseline": baseline})


def test_lth_curve_in_percent_labelled_by_baseline(tmp_path):
    imp = rounds_table("imp", [0.9, 0.91, 0.89])
    reinit = rounds_table("reinit", [0.9, 0.85, 0.8])
    (tmp_path / "lth").mkdir()
    (tmp_path / "lth" / "baseline_reinit").mkdir()
    imp.to_csv(tmp_path / "lth" / "rounds.csv", index=False)
    reinit.to_csv(tmp_path / "lth" / "baseline_reinit" / "rounds.csv", index=False)
    rounds = read_rounds([tmp_path / "lth" / "rounds.csv",
                          tmp_path / "lth" / "baseline_reinit" / "rounds.csv"])
    data = plot_data.lth_curve_data(rounds)
    assert sorted(set(data["label"])) == ["imp", "reinit"]
    imp_rows = data[data["label"] == "imp"]
    assert imp_rows["sparsity_pct"].tolist() == pytest.approx([0.0, 25.0, 43.75])
    assert imp_rows["accuracy_pct"].tolist() == pytest.approx([90.0, 91.0, 89.0])
    # tables without a baseline column are labelled by the caller
    data = plot_data.lth_curve_data({"run A": imp.drop(columns="baseline")})
    assert set(data["label"]) == {"run A"}
    with pytest.raises(ValueError, match="missing columns test_accuracy"):
        plot_data.lth_curve_data(imp.drop(columns="test_accuracy"))


def test_keep_ratio_data_orders_scorers_and_converts_accuracy():
    table = pd.DataFrame({"scorer": ["random", "learned", "firing_rate", "learned"],
                          "keep_ratio": [0.7, 0.7, 0.7, 0.9],
                          "accuracy": [0.9407, 0.9501, 0.945, 0.9522],
                          "gflops": [2.5, 2.5, 2.5, 3.2]})
    data = plot_data.keep_ratio_data(table)
    assert data["scorer"].tolist() == ["learned", "learned", "firing_rate", "random"]
    assert data["keep_ratio"].tolist() == [0.7, 0.9, 0.7, 0.7]
    assert data["accuracy_pct"].tolist() == pytest.approx([95.01, 95.22, 94.5, 94.07])


def test_input_events_matrix_is_events_over_elements_per_step():
    trace = synthetic_trace(tiny_layer_shapes(), firing_rate=0.2, timesteps=2)
    arrays = {name: dict(values) for name, values in trace.arrays.items()}
    # block.0.fc: 64 tokens, in_numel 1024; put 128 events at t=0 and 512 at t=1
    events = np.zeros((2, 64))
    events[0, :32] = 4.0
    events[1, :] = 8.0
    arrays["block.0.fc"][EVENTS_ARRAY] = events
    trace = Trace(manifest=trace.manifest, layers=trace.layers, arrays=arrays)
    matrix = plot_data.input_events_matrix(trace)
    assert list(matrix.index) == ["block.0.fc", "block.1.fc"]  # the real-input conv is left out
    assert matrix.loc["block.0.fc"].tolist() == [128 / 1024, 512 / 1024]
    with_real = plot_data.input_events_matrix(trace, value_kinds=("real", "spike"))
    assert list(with_real.index) == ["conv0", "block.0.fc", "block.1.fc"]


def test_kept_tokens_masks_follow_the_row_major_grid(tmp_path):
    images = np.arange(2 * 3 * 8 * 8, dtype=float).reshape(2, 3, 8, 8)  # (n, C, H, W)
    kept = {"sel1": np.array([[0, 1, 3], [2, 3, 1]]), "sel2": np.array([[3], [0]])}
    path = write_kept_tokens(tmp_path / "kept.npz", images, kept, num_tokens=4)
    images_back, kept_back, tokens = read_kept_tokens(path)
    data = plot_data.kept_tokens_data(images_back, kept_back, tokens)
    assert data.grid == 2 and data.selectors == ("sel1", "sel2")
    assert data.images.shape == (2, 8, 8, 3)  # channels last
    assert data.images.min() == 0.0 and data.images.max() == 1.0
    assert data.masks[0, 0].tolist() == [[True, True], [False, True]]
    assert data.masks[1, 0].tolist() == [[False, True], [True, True]]
    assert data.masks[0, 1].tolist() == [[False, False], [False, True]]
    assert data.masks[1, 1].tolist() == [[True, False], [False, False]]
    with pytest.raises(ValueError, match="not a square"):
        plot_data.kept_tokens_data(images, kept, 6)
    with pytest.raises(ValueError, match="outside 0..3"):
        plot_data.kept_tokens_data(images, {"s": np.array([[4], [0]])}, 4)

"""The trace schema: round trips, byte-identical files, clear errors, synthetic/GEMM traces."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from damaged_files import flip_compressed_bytes

from sparsespikformer.simulator.synthetic import gemm_trace, synthetic_trace
from sparsespikformer.simulator.trace import LAYER_COLUMNS, SCHEMA_VERSION, Trace, TraceError

# A two-block toy network: conv (real input), a linear in each block, attention in block 1.
SHAPES = [
    dict(layer="conv", kind="conv", block=-1, tokens_in=16, tokens_out=16, in_numel=16,
         out_numel=128, gemm_m=16, gemm_n=8, gemm_k=9, gemm_groups=1, weight_numel=72,
         in_value_kind="real"),
    dict(layer="block.0.fc", kind="linear", block=0, tokens_in=16, tokens_out=16, in_numel=128,
         out_numel=128, gemm_m=16, gemm_n=8, gemm_k=8, gemm_groups=1, weight_numel=64),
    dict(layer="block.1.fc", kind="linear", block=1, tokens_in=16, tokens_out=16, in_numel=128,
         out_numel=128, gemm_m=16, gemm_n=8, gemm_k=8, gemm_groups=1, weight_numel=64),
    dict(layer="block.1.qk", kind="attn_qk", block=1, tokens_in=16, tokens_out=16, in_numel=128,
         out_numel=512, gemm_m=16, gemm_n=16, gemm_k=4, gemm_groups=2, weight_numel=0),
    dict(layer="block.1.lif", kind="lif", block=1, tokens_in=16, tokens_out=16, in_numel=128,
         out_numel=128, gemm_m=0, gemm_n=0, gemm_k=0, gemm_groups=0, weight_numel=0),
]


def toy_trace(**kwargs):
    return synthetic_trace(SHAPES, timesteps=4, num_samples=3, **kwargs)


def test_round_trip_preserves_every_field(tmp_path):
    trace = toy_trace(firing_rate=0.2, weight_density=0.5)
    loaded = Trace.load(trace.save(tmp_path / "t"))
    pd.testing.assert_frame_equal(loaded.layers, trace.layers)
    assert loaded.manifest == json.loads(json.dumps(trace.manifest))
    for layer, arrays in trace.arrays.items():
        for name, array in arrays.items():
            np.testing.assert_array_equal(loaded.arrays[layer][name], array)


def test_same_inputs_give_byte_identical_files(tmp_path):
    first = toy_trace(seed=3).save(tmp_path / "a")
    second = toy_trace(seed=3).save(tmp_path / "b")
    for name in ("manifest.json", "layers.csv", "arrays.npz"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_files_read_with_pandas_and_numpy_alone(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    layers = pd.read_csv(directory / "layers.csv")
    assert list(layers.columns) == list(LAYER_COLUMNS)
    with np.load(directory / "arrays.npz") as arrays:
        assert arrays["block.1.qk/events_per_step_token"].shape == (4, 16)
    assert json.loads((directory / "manifest.json").read_text())["schema_version"] == 3


def test_save_replaces_an_existing_trace_whole(tmp_path):
    target = tmp_path / "t"
    toy_trace(firing_rate=0.1).save(target)
    toy_trace(firing_rate=0.3).save(target)
    assert Trace.load(target).layers["in_value_mean"].iloc[1] == pytest.approx(0.3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


def test_synthetic_counts_follow_closed_form():
    trace = toy_trace(firing_rate=0.25, weight_density=0.5)
    layers = trace.layers.set_index("layer")
    # dense MACs = T · groups · m · n · k, written out by hand for each layer
    assert layers.loc["conv", "dense_macs"] == 4 * 16 * 8 * 9
    assert layers.loc["block.1.qk", "dense_macs"] == 4 * 2 * 16 * 16 * 4
    assert layers.loc["block.1.lif", "dense_macs"] == 0
    # real input: every MAC happens; spike input: a quarter of them, half the weights remain
    assert layers.loc["conv", "sops"] == 4 * 16 * 8 * 9
    assert layers.loc["block.0.fc", "sops"] == 0.25 * 4 * 16 * 8 * 8
    assert layers.loc["block.0.fc", "effective_ops"] == 0.25 * 0.5 * 4 * 16 * 8 * 8
    assert layers.loc["block.0.fc", "weight_nnz"] == 32
    assert trace.arrays["block.0.fc"]["nnz_per_out_channel"].sum() == 32


def test_synthetic_keep_ratio_shrinks_tokens_of_later_blocks():
    layers = toy_trace(keep_ratio=0.7).layers.set_index("layer")
    assert layers.loc["block.0.fc", "tokens_in"] == 16  # block 0 sees every token
    assert layers.loc["block.1.fc", "tokens_in"] == 11  # int(16 x 0.7) = int(11.2)
    assert layers.loc["block.1.qk", "gemm_m"] == 11
    assert layers.loc["block.1.qk", "gemm_n"] == 11
    assert layers.loc["block.1.qk", "gemm_k"] == 4  # head dim is not a token axis


@pytest.mark.parametrize("argument", ["firing_rate", "weight_density", "keep_ratio"])
def test_synthetic_rejects_out_of_range_statistics(argument):
    with pytest.raises(ValueError, match=argument):
        toy_trace(**{argument: 1.5})


def test_gemm_trace_is_scale_sim_convention():
    """(7 x 3) input @ (3 x 5) dense weights, one timestep, real-valued input of value 1."""
    trace = gemm_trace(7, 5, 3)
    layer = trace.layers.iloc[0]
    assert (layer.gemm_m, layer.gemm_n, layer.gemm_k, layer.gemm_groups) == (7, 5, 3, 1)
    assert (layer.layer, layer.kind, layer.block, layer.timesteps) == ("gemm", "linear", -1, 1)
    assert (layer.in_shape, layer.out_shape) == ("1x7x3", "1x7x5")
    assert (layer.in_numel, layer.out_numel, layer.tokens_in) == (21, 35, 7)
    assert layer.dense_macs == layer.sops == layer.effective_ops == layer.nonzero_pairs == 105
    assert layer.weight_numel == layer.weight_nnz == 15
    assert (layer.in_value_min, layer.in_value_max, layer.in_value_mean) == (1.0, 1.0, 1.0)
    assert not layer.input_is_spike and layer.in_value_kind == "real"
    arrays = trace.arrays["gemm"]
    assert arrays["sample_in_events"].tolist() == [21.0]  # 7 x 3 input values of 1
    assert arrays["sample_effective_ops"].tolist() == [105.0]
    assert arrays["events_per_step_token"].tolist() == [[3.0] * 7]
    nnz = arrays["nnz_per_out_channel"]
    assert nnz.dtype == np.int64 and nnz.tolist() == [3] * 5
    manifest = trace.manifest
    assert (manifest["source"], manifest["dataset"], manifest["timesteps"]) == ("gemm", "gemm", 1)
    assert (manifest["input_shape"], manifest["num_samples"]) == ([7, 3], 1)


@pytest.mark.parametrize("name, args", [("m", (0, 5, 3)), ("n", (7, 2.5, 3)),
                                        ("k", (7, 5, -3))])
def test_gemm_trace_rejects_non_positive_or_fractional_sizes(name, args):
    with pytest.raises(TraceError, match=f"gemm_trace: {name} must be a positive integer, got"):
        gemm_trace(*args)


def test_synthetic_layers_without_weights_and_given_shapes():
    """A LIF row has no weights (nnz 0) and a dense operand; a shape string given in the
    layer shapes is kept as it is, an absent one is T x numel."""
    given = synthetic_trace([dict(SHAPES[1], in_shape="4x16x8", out_shape="4x16x8")],
                            timesteps=4).layers.iloc[0]
    assert (given.in_shape, given.out_shape) == ("4x16x8", "4x16x8")
    layers = synthetic_trace([SHAPES[1], SHAPES[4]], timesteps=4, firing_rate=0.2,
                             weight_density=0.5).layers.set_index("layer")
    assert (layers.loc["block.1.lif", "in_shape"], layers.loc["block.1.lif", "out_shape"]) == \
        ("4x128", "4x128")
    assert layers.loc["block.1.lif", "weight_nnz"] == 0
    assert layers.loc["block.1.lif", "operand_density"] == 1.0
    assert layers.loc["block.0.fc", "operand_density"] == 0.5


def test_save_replaces_a_trace_but_never_a_folder_of_other_files(tmp_path):
    first = toy_trace().save(tmp_path / "t")
    toy_trace().save(first)  # a trace over a trace: replaced
    assert (first / "manifest.json").is_file()
    runs = tmp_path / "runs"
    (runs / "dense").mkdir(parents=True)
    (runs / "dense" / "checkpoint.pt").write_text("weights")
    with pytest.raises(FileExistsError, match="not a trace"):
        toy_trace().save(runs)
    assert (runs / "dense" / "checkpoint.pt").read_text() == "weights"


def test_unknown_schema_version_is_named(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TraceError, match="schema_version"):
        Trace.load(directory)


@pytest.mark.parametrize("name", ["manifest.json", "layers.csv", "arrays.npz"])
def test_missing_file_is_named(tmp_path, name):
    directory = toy_trace().save(tmp_path / "t")
    (directory / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        Trace.load(directory)


def test_truncated_arrays_are_reported(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    data = (directory / "arrays.npz").read_bytes()
    (directory / "arrays.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError, match="arrays.npz"):
        Trace.load(directory)


def test_nan_count_is_reported_with_column_and_row(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    layers = pd.read_csv(directory / "layers.csv")
    layers.loc[2, "effective_ops"] = np.nan
    layers.to_csv(directory / "layers.csv", index=False)
    with pytest.raises(TraceError, match="effective_ops.*row 2"):
        Trace.load(directory)


@pytest.mark.parametrize("column, value", [("in_nonzero_fraction", 1.5),
                                           ("out_nonzero_fraction", 2.0),
                                           ("operand_density", 3.0), ("timesteps", 0)])
def test_impossible_rates_and_timesteps_are_reported(tmp_path, column, value):
    directory = toy_trace().save(tmp_path / "t")
    layers = pd.read_csv(directory / "layers.csv")
    layers.loc[1, column] = value
    layers.to_csv(directory / "layers.csv", index=False)
    with pytest.raises(TraceError, match=f"layers.csv: {column}: must"):
        Trace.load(directory)


def test_unknown_layer_kind_is_reported(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    layers = pd.read_csv(directory / "layers.csv")
    layers.loc[0, "kind"] = "softmax"
    layers.to_csv(directory / "layers.csv", index=False)
    with pytest.raises(TraceError, match="softmax"):
        Trace.load(directory)


def test_array_of_wrong_shape_is_reported(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    path = directory / "arrays.npz"
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["conv/events_per_step_token"] = np.zeros((2, 2))
    np.savez(path, **arrays)
    with pytest.raises(TraceError, match="conv/events_per_step_token"):
        Trace.load(directory)


def test_npz_is_a_plain_zip_of_npy_files(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    with zipfile.ZipFile(directory / "arrays.npz") as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())


# ----------------------------------------------------------------------------- bad input


def test_layer_table_without_layer_column_is_reported_before_the_arrays(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    layers = pd.read_csv(directory / "layers.csv").drop(columns="layer")
    layers.to_csv(directory / "layers.csv", index=False)
    with pytest.raises(TraceError, match="layers.csv: missing columns: layer"):
        Trace.load(directory)


def test_a_current_trace_built_with_the_v1_column_names_says_what_they_became():
    trace = toy_trace()
    old = trace.layers.rename(columns={"in_nonzero_fraction": "in_firing_rate"})
    with pytest.raises(TraceError, match=r"missing columns: in_nonzero_fraction \(renamed "
                                         r"in trace schema 2: in_firing_rate -> "
                                         r"in_nonzero_fraction"):
        Trace(manifest=trace.manifest, layers=old, arrays=trace.arrays)


def test_flipped_bytes_in_compressed_arrays_are_reported(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    flip_compressed_bytes(directory / "arrays.npz")
    with pytest.raises(TraceError, match="arrays.npz: corrupt"):
        Trace.load(directory)


@pytest.mark.parametrize("bad", [np.array(["a", "b", "c"]),
                                 np.zeros(3, dtype=[("x", "f8"), ("y", "i4")])])
def test_array_that_is_not_numbers_is_reported(tmp_path, bad):
    directory = toy_trace().save(tmp_path / "t")
    path = directory / "arrays.npz"
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["conv/sample_effective_ops"] = bad
    np.savez(path, **arrays)
    with pytest.raises(TraceError, match="conv/sample_effective_ops: expected numbers"):
        Trace.load(directory)


def test_arrays_of_layers_missing_from_the_table_are_reported(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    lines = (directory / "layers.csv").read_text().splitlines(keepends=True)
    (directory / "layers.csv").write_text("".join(lines[:3]))  # header + 2 of 5 rows
    with pytest.raises(TraceError, match="arrays.npz: arrays for layer 'block.1.fc', which "
                                         r"is not in layers.csv \(3 such layers\)"):
        Trace.load(directory)


@pytest.mark.parametrize("key, value", [
    ("accuracy", 5.0), ("accuracy", float("nan")), ("accuracy", -1),
    ("keep_ratios", ["x"]), ("keep_ratios", [0.5, 0]), ("keep_ratios", [1.5]),
    ("keep_ratios", [True]),
])
def test_manifest_values_out_of_range_are_reported(tmp_path, key, value):
    directory = toy_trace().save(tmp_path / "t")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest[key] = value
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TraceError, match=f"manifest.json: {key}: must be"):
        Trace.load(directory)


def test_manifest_accepts_fractions_and_null_accuracy(tmp_path):
    """The bounds themselves (0, 1, a ratio of 1) and a missing accuracy are valid values, and
    they survive a save and load unchanged."""
    trace = toy_trace()
    for index, accuracy in enumerate((None, 0, 1, 0.5)):
        manifest = {**trace.manifest, "accuracy": accuracy, "keep_ratios": [1, 0.7, 0.49]}
        built = Trace(manifest=manifest, layers=trace.layers, arrays=trace.arrays)
        loaded = Trace.load(built.save(tmp_path / str(index))).manifest
        assert loaded["accuracy"] == accuracy and (accuracy is None) == (loaded["accuracy"]
                                                                        is None)
        assert loaded["keep_ratios"] == [1, 0.7, 0.49]


def test_save_refuses_to_replace_a_file(tmp_path):
    target = tmp_path / "afile"
    target.write_text("precious")
    with pytest.raises(FileExistsError, match="afile: exists and is not a directory"):
        toy_trace().save(target)
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("failing_call", [1, 2])
def test_failed_replace_keeps_the_old_trace_and_leaves_no_temporaries(tmp_path, monkeypatch,
                                                                      failing_call):
    import sparsespikformer.simulator.atomic as trace_module

    target = tmp_path / "t"
    toy_trace(firing_rate=0.1).save(target)
    real_replace, calls = trace_module.os.replace, []

    def replace(source, destination):
        calls.append(source)
        if len(calls) == failing_call:  # 1: old trace aside; 2: new trace in
            raise PermissionError(f"{destination}: denied")
        real_replace(source, destination)

    monkeypatch.setattr(trace_module.os, "replace", replace)
    with pytest.raises(PermissionError):
        toy_trace(firing_rate=0.3).save(target)
    monkeypatch.undo()
    assert Trace.load(target).layers["in_value_mean"].iloc[1] == pytest.approx(0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


def test_a_version_1_trace_loads_with_the_renamed_columns(tmp_path):
    """Schema 2 renamed in_/out_firing_rate to in_/out_nonzero_fraction (the fraction of
    non-zero elements, not the mean value). A version-1 folder, written by hand here with the
    old names, loads into the same trace as its version-2 twin."""
    current = toy_trace(firing_rate=0.25)
    directory = current.save(tmp_path / "v1")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["schema_version"] = 1
    (directory / "manifest.json").write_text(json.dumps(manifest))
    layers = pd.read_csv(directory / "layers.csv").rename(columns={
        "in_nonzero_fraction": "in_firing_rate", "out_nonzero_fraction": "out_firing_rate"})
    layers.to_csv(directory / "layers.csv", index=False)
    old = Trace.load(directory)
    assert old.manifest["schema_version"] == SCHEMA_VERSION
    pd.testing.assert_frame_equal(old.layers, current.layers)


def test_a_version_2_trace_loads_without_per_sample_row_events(tmp_path):
    """Schema 3 only adds the optional `sample_row_events` array: a version-2 folder (no such
    array) loads unchanged, as the current version."""
    current = toy_trace(firing_rate=0.25)
    arrays = {layer: {k: v for k, v in a.items() if k != "sample_row_events"}
              for layer, a in current.arrays.items()}
    manifest = {**current.manifest, "schema_version": 2}
    old = Trace(manifest=manifest, layers=current.layers, arrays=arrays)
    assert old.manifest["schema_version"] == SCHEMA_VERSION
    directory = old.save(tmp_path / "v2")
    again = Trace.load(directory)
    assert all("sample_row_events" not in a for a in again.arrays.values())


def test_per_sample_row_events_are_checked(tmp_path):
    trace = toy_trace()
    gemm = trace.layers[trace.layers.gemm_m > 0].iloc[0]
    arrays = {k: dict(v) for k, v in trace.arrays.items()}
    shape = (trace.num_samples + 1, gemm.timesteps, gemm.gemm_groups, gemm.gemm_m)
    arrays[gemm.layer]["sample_row_events"] = np.zeros(shape)
    with pytest.raises(TraceError, match="sample_row_events: expected numbers of shape"):
        Trace(manifest=trace.manifest, layers=trace.layers, arrays=arrays)
    arrays[gemm.layer]["sample_row_events"] = -np.ones((1, *shape[1:]))
    with pytest.raises(TraceError, match="sample_row_events: negative"):
        Trace(manifest=trace.manifest, layers=trace.layers, arrays=arrays)


def test_an_unknown_schema_version_names_the_readable_ones(tmp_path):
    directory = toy_trace().save(tmp_path / "t")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["schema_version"] = 9
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TraceError, match="unsupported version 9.*reads versions 1, 2, 3"):
        Trace.load(directory)

"""`sparsespikformer trace`: real and synthetic traces, and its bad-input errors."""

from __future__ import annotations

import pytest
from cli_helpers import exit_code
from conftest import requires_torch

from sparsespikformer.analysis.cli import main
from sparsespikformer.simulator.trace import Trace


@requires_torch
def test_trace_records_real_samples(tmp_path, capsys):
    out = tmp_path / "trace"
    argv = ["trace", "--preset", "spikformer_4_64_digits", "--samples", "8", "--batch-size", "4",
            "--real-stats-samples", "4", "--out", str(out)]
    assert main(argv) == 0
    trace = Trace.load(out)
    assert trace.manifest["num_samples"] == 8
    assert trace.manifest["real_stats_samples"] == 4
    assert trace.manifest["dataset"].startswith("digits")
    assert "dense GFLOPs" in capsys.readouterr().out


@requires_torch
def test_trace_all_samples_described(tmp_path):
    out = tmp_path / "trace"
    assert main(["trace", "--preset", "spikformer_4_64_digits", "--samples", "6",
                 "--real-stats-samples", "all", "--out", str(out)]) == 0
    assert Trace.load(out).manifest["real_stats_samples"] == 6


@requires_torch  # the preset's layer shapes come from the model
def test_trace_synthetic_full_size_preset(tmp_path):
    out = tmp_path / "synthetic"
    assert main(["trace", "--preset", "spikformer_8_512_imagenet", "--synthetic",
                 "--firing-rate", "0.15", "--weight-density", "0.1", "--out", str(out)]) == 0
    trace = Trace.load(out)
    assert trace.manifest["source"] == "synthetic"
    assert (trace.layers.kind == "attn_qk").sum() == 8


@pytest.mark.parametrize("argv, message", [
    (["--real-stats-samples", "0"], "--real-stats-samples"),
    (["--real-stats-samples", "some"], "--real-stats-samples"),
    (["--samples", "0"], "argument --samples: expected a positive integer"),
    (["--img-size", "0"], "argument --img-size: expected a positive integer"),
    (["--seed", "-1"], "argument --seed"),
    (["--synthetic", "--firing-rate", "nan"], "argument --firing-rate: expected a finite"),
])
def test_trace_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    base = ["trace", "--preset", "spikformer_4_64_digits", "--out", str(tmp_path / "t")]
    assert exit_code(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "t").exists()

"""The demo pipeline end to end at a tiny size: every stage runs, the summary holds what the
issue asks for (every accuracy with its test-set size and 95 % interval), the report opens
with the answer and renders no stage bookkeeping, every output follows the umask (077
here: the strict case), and a re-run reuses the finished stages instead of recomputing
them."""

import json
import re

import pytest
from conftest import requires_torch
from file_modes import assert_umask_modes, umask

from sparsespikformer.analysis.accuracy import wilson_interval
from sparsespikformer.analysis.demo import STAGES, DemoConfig, run_demo
from sparsespikformer.analysis.demo_summary import ACCURACY_KEYS
from sparsespikformer.hwconfigs import list_hwconfigs
from sparsespikformer.simulator import load_hwconfig, simulate
from sparsespikformer.simulator.trace import Trace

pytestmark = requires_torch  # the demo trains a model

DIGITS_TEST_IMAGES = 360  # the bundled digits test split
SUMMARY_FLOATS = ("weight_sparsity", "keep_ratio", "dense_gflops", "selected_gflops")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    config = DemoConfig(out_dir=tmp_path_factory.mktemp("demo") / "run", timesteps=1,
                        lth_rounds=1, dense_epochs=1, lth_epochs=1, selector_epochs=1,
                        trace_samples=8, sweep_rows=(8, 16),
                        sweep_cols=(8,), sweep_weight_kib=(64,), progress=False)
    with umask(0o077):
        summary = run_demo(config)
    return config, summary


def test_summary_has_every_required_field(demo_run):
    config, summary = demo_run
    on_disk = json.loads((config.out_dir / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["test_samples"] == DIGITS_TEST_IMAGES
    for key in ACCURACY_KEYS:
        accuracy = summary[key]
        assert accuracy["test_samples"] == DIGITS_TEST_IMAGES, key
        assert accuracy["accuracy"] == accuracy["correct"] / DIGITS_TEST_IMAGES
        assert (accuracy["ci95_low"], accuracy["ci95_high"]) == \
            wilson_interval(accuracy["correct"], DIGITS_TEST_IMAGES)
    for key in SUMMARY_FLOATS:
        assert isinstance(summary[key], float), key
    assert summary["weight_sparsity"] == pytest.approx(0.25, abs=1e-3)  # one 25 % round
    assert summary["selected_gflops"] < summary["dense_gflops"]
    # every reported energy and latency is that of the stored trace on that config, simulated
    # here again from the files; GFLOPs of the dense model are its trace's dense MACs
    traces = {v: Trace.load(config.out_dir / "traces" / v) for v in ("dense", "co_designed")}
    for metric in ("energy_pj", "latency_s"):
        assert set(summary[metric]) == set(list_hwconfigs())
        for variants in summary[metric].values():
            assert list(variants) == ["dense", "pruned", "selected", "co_designed"]
            assert variants["dense"] > 0 and variants["co_designed"] > 0
    assert summary["answer"].startswith(f"Across the {len(list_hwconfigs())} accelerators")
    for hw_name in list_hwconfigs():
        for variant, trace in traces.items():
            totals = simulate(trace, load_hwconfig(hw_name)).totals
            for metric in ("energy_pj", "latency_s"):
                assert summary[metric][hw_name][variant] == pytest.approx(totals[metric],
                                                                          rel=1e-12)
    dense_macs = traces["dense"].layers["dense_macs"].sum()
    assert summary["dense_gflops"] == pytest.approx(dense_macs / 1e9, rel=1e-9)


def test_every_stage_left_its_outputs(demo_run):
    config, summary = demo_run
    out = config.out_dir
    for name, _ in STAGES:
        assert config.stage_path(name).is_file(), name
    for variant in ("dense", "pruned", "selected", "co_designed"):
        assert (out / "traces" / variant / "layers.csv").is_file()
    assert summary["sweep_points"] == 2 * 1 * 1 * 2 * 4  # rows x cols x memory x dataflow x traces
    assert (out / "report.html").stat().st_size > 10_000
    assert len(list((out / "plots").glob("*.png"))) >= 5


def test_every_output_follows_the_umask(demo_run):
    config, _ = demo_run
    assert_umask_modes(config.out_dir, 0o077)


def test_report_opens_with_the_answer_and_shows_no_bookkeeping(demo_run):
    config, summary = demo_run
    page = (config.out_dir / "report.html").read_text(encoding="utf-8")
    # Embedded PNGs are base64 and may spell "e+0" by chance: check only the text.
    page = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "data:image", page)
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    assert titles[0] == "Co-designed vs dense: the answer"
    assert "stages/" not in page  # stage files are bookkeeping, never results
    assert "{&#x27;" not in page and "{'" not in page  # no dict dumped into a cell
    dense = summary["dense_accuracy"]
    assert f"({dense['correct']}/{DIGITS_TEST_IMAGES}; 95 % CI" in page
    assert "e+0" not in page.split("<h2>")[2]  # energies in µJ, not 1.692e+07 pJ


def test_rerun_reuses_finished_stages(demo_run):
    config, summary = demo_run
    stamps = {name: config.stage_path(name).stat().st_mtime_ns for name, _ in STAGES}
    assert run_demo(config) == summary
    assert {name: config.stage_path(name).stat().st_mtime_ns for name, _ in STAGES} == stamps

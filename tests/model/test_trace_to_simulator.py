"""A recorded digits trace through every bundled accelerator config (model -> trace -> sim)."""

import pytest
from active_model import add_selectors, images, prune_randomly, small_model

from sparsespikformer.hwconfigs import list_hwconfigs
from sparsespikformer.model import gflops
from sparsespikformer.model.tracing.record import record_trace
from sparsespikformer.simulator import load_hwconfig, simulate

E_MAC_PJ, E_AC_PJ = 4.6, 0.9  # docs/references.md: the papers' Horowitz 45 nm fp32 constants


@pytest.fixture(scope="module")
def models():
    return {
        "dense": small_model(),
        "co_designed": add_selectors(prune_randomly(small_model()), keep_ratio=0.7,
                                     scorer="firing_rate"),
    }


@pytest.fixture(scope="module")
def traces(models):
    return {name: record_trace(model, images()) for name, model in models.items()}


def test_every_bundled_config_simulates_a_recorded_trace(models, traces):
    names = list_hwconfigs()
    assert {"paper_fp32_45nm", "sparse_int8_45nm", "loihi_like", "sata_like",
            "dense_systolic"} <= set(names)
    # dense GFLOPs from the module graph (model/nn/flops.py), not from the trace's columns
    model_gflops = {name: gflops(model, (1, 16, 16)) for name, model in models.items()}
    for name in names:
        hw = load_hwconfig(name)
        for variant, trace in traces.items():
            totals = simulate(trace, hw).totals
            assert totals["energy_pj"] > 0 and totals["latency_s"] > 0, (name, variant)
            assert totals["dense_gflops"] == pytest.approx(model_gflops[variant], rel=1e-12)


def test_paper_config_is_the_papers_formula_on_a_real_trace(traces):
    layers = traces["dense"].layers
    first_conv = layers.layer == "patch_embed.proj_conv"
    real_macs = (layers.in_value_kind == "real") & (layers.dense_macs > 0)
    assert list(layers.index[real_macs]) == list(layers.index[first_conv])
    oracle = E_MAC_PJ * layers.dense_macs[first_conv].sum() + \
        E_AC_PJ * layers.sops[~first_conv].sum()
    energy = simulate(traces["dense"], load_hwconfig("paper_fp32_45nm")).totals["energy_pj"]
    assert energy == pytest.approx(oracle, rel=1e-12)


def test_co_design_saves_energy_and_time_on_the_sparse_accelerator(traces):
    hw = load_hwconfig("sparse_int8_45nm")
    dense, co = (simulate(traces[v], hw).totals for v in ("dense", "co_designed"))
    assert co["energy_pj"] < dense["energy_pj"]
    assert co["cycles"] < dense["cycles"]
    assert co["dense_gflops"] < dense["dense_gflops"]  # fewer tokens reach the blocks

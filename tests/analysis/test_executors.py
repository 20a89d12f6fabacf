"""Executors: the process pool and Dask return exactly what the in-process run returns."""

from __future__ import annotations

import sys

import pytest
from sweep_fakes import FAKE, evaluate_chunk, tiny_layer_shapes, write_spec

from sparsespikformer.analysis.sweeps.executors import InlineExecutor, LocalExecutor, make_executor
from sparsespikformer.analysis.sweeps.run import make_chunks, plan_sweep, run_sweep
from sparsespikformer.analysis.sweeps.spec import load_sweep_spec


def by_index(results):
    return dict(results)


def test_pool_returns_every_chunk_like_the_inline_run(tmp_path):
    plan = plan_sweep(load_sweep_spec(write_spec(tmp_path)), FAKE)
    chunks = make_chunks(plan.points, 5)
    assert [len(points) for _, points in chunks] == [5, 5, 2, 5, 5, 2]  # never across traces
    expected = by_index(InlineExecutor().run(evaluate_chunk, plan.context, chunks))
    with LocalExecutor(workers=2) as pool:
        got = by_index(pool.run(evaluate_chunk, plan.context, chunks))
    assert got == expected and sorted(got) == list(range(len(chunks)))


def simulator_spec(tmp_path):
    """Real hw configs and the real simulator on tiny traces: 2 bases x 6 combinations x 2
    traces = 24 points; the config's cross-checks reject `multiply` with no multipliers."""
    return load_sweep_spec(write_spec(
        tmp_path, base=["sparse_int8_45nm", "loihi_like"],
        axes={"pe_array.rows": [8, 32], "pe_array.multiply_units_per_pe": [0, 1],
              "policies.integer_inputs": ["replay", "multiply"]},
        constraints=["pe_array.rows == 32 or policies.integer_inputs == 'multiply'"],
        traces=[{"name": "dense", "accuracy": 0.9,
                 "synthetic": {"layer_shapes": tiny_layer_shapes(), "firing_rate": 0.2}},
                {"name": "pruned", "accuracy": 0.8,
                 "synthetic": {"layer_shapes": tiny_layer_shapes(), "firing_rate": 0.2,
                               "weight_density": 0.1, "keep_ratio": 0.5}}]))


def test_dask_local_cluster_returns_exactly_the_local_results(tmp_path):
    pytest.importorskip("dask.distributed")
    spec = simulator_spec(tmp_path)
    inline = run_sweep(spec, tmp_path / "inline", workers=1, progress=False)
    pool = run_sweep(spec, tmp_path / "pool", workers=2, chunk_size=3, progress=False)
    dask = run_sweep(spec, tmp_path / "dask", executor="dask", workers=2, chunk_size=3,
                     progress=False, dask_processes=True)
    assert inline.total_points == 2 * 2 * 6 == len(inline.results)
    assert pool.results.equals(inline.results)
    assert dask.results.equals(inline.results)
    assert ((tmp_path / "dask" / "results.csv").read_bytes()
            == (tmp_path / "inline" / "results.csv").read_bytes())
    # the invalid combination is recorded as an error row, not a crash
    errors = inline.results[inline.results["status"] == "error"]
    # per base and trace, both row counts with `multiply` and 0 multipliers
    assert len(errors) == 2 * 2 * 2
    assert errors["error"].str.contains("multiply_units_per_pe").all()
    assert errors["energy_pj"].isna().all()
    assert inline.results.loc[inline.results["status"] == "ok", "energy_pj"].gt(0).all()


def test_make_executor_checks_its_arguments():
    with pytest.raises(ValueError, match="--executor"):
        make_executor("slurm")
    with pytest.raises(ValueError, match="--workers"):
        make_executor("local", workers=0)
    with pytest.raises(ValueError, match="--scheduler"):
        make_executor("local", scheduler="tcp://localhost:8786")
    assert isinstance(make_executor("local", workers=1), InlineExecutor)
    assert isinstance(make_executor("local", workers=3), LocalExecutor)


def test_dask_missing_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import now fails
    with pytest.raises(ValueError, match=r"needs dask\[distributed\]"):
        make_executor("dask", workers=2)


def test_pool_errors_reach_the_caller(tmp_path):
    plan = plan_sweep(load_sweep_spec(write_spec(tmp_path)), FAKE)
    broken = [("no such trace", ())]
    with LocalExecutor(workers=2) as pool:
        with pytest.raises(KeyError):
            list(pool.run(evaluate_chunk, plan.context, broken))


def test_dask_with_a_scheduler_address(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    spec = load_sweep_spec(write_spec(tmp_path))
    inline = run_sweep(spec, tmp_path / "inline", workers=1, progress=False, evaluator=FAKE)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        remote = run_sweep(spec, tmp_path / "remote", executor="dask",
                           scheduler=cluster.scheduler_address, chunk_size=4,
                           progress=False, evaluator=FAKE)
    assert remote.results.equals(inline.results) and remote.evaluated == 24

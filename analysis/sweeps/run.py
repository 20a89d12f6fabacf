"""Run a sweep: plan the points, skip the finished ones, evaluate the rest in chunks.

```python
outcome = run_sweep("pe_memory_sweep", "runs/sweep", executor="local", workers=2)
outcome.results  # tidy DataFrame, one row per point, in the spec's order
```

Planning happens once, in this process: each base config is loaded and validated, each
trace built or loaded, every point expanded and keyed by `point_key`. Points already in
the directory's store are skipped; the rest go to the executor in chunks of one trace, and
every finished chunk is appended to the store before its progress is counted. The tidy
table `results.csv` is rewritten at the end, also after an interruption.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from sparsespikformer.analysis.sweeps import evaluate as sweep_eval
from sparsespikformer.analysis.sweeps.evaluate import (
    METRIC_COLUMNS,
    STATUS_ERROR,
    ChunkTask,
    SweepContext,
)
from sparsespikformer.analysis.sweeps.executors import check_executor_args, make_executor
from sparsespikformer.analysis.sweeps.spec import (
    SweepPoint,
    SweepSpec,
    expand_points,
    load_sweep_spec,
    point_key,
)
from sparsespikformer.analysis.sweeps.store import SweepStore
from sparsespikformer.analysis.sweeps.traces import build_trace, trace_content_hash, trace_metadata
from sparsespikformer.simulator.atomic import atomic_write_text
from sparsespikformer.simulator.errors import InputError, SweepSpecError

SWEEP_META = "sweep.json"
SPEC_COPY = "spec.yaml"
TRACE_COLUMNS = ("preset", "trace_source", "accuracy", "weight_sparsity", "keep_ratio",
                 "selector_scorer", "mean_in_nonzero_fraction", "timesteps")
_MAX_CHUNK = 256  # ~0.3 s of simulator work: amortises the pool round trip
_CHUNKS_PER_WORKER = 8
# Without --workers, sweeps this small run in-process: ~0.4 ms a point (a 73-layer trace)
# against ~1 s to start a pool and ship it the traces.
_INLINE_BELOW = 2000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluator:
    """How points are evaluated: the simulator by default, a fake in tests.

    `evaluate_chunk(context, task)` must be a module-level function (workers import it) and
    return one dict per point with its `key`. `check_axis_key(base, key)` lets the plan
    reject an unknown axis key once, naming the spec, before any point runs.
    """

    load_base: Callable[[str], Any] = sweep_eval.load_base
    base_identity: Callable[[Any], str] = sweep_eval.base_identity
    base_value: Callable[[Any, str], Any] = sweep_eval.base_value
    check_axis_key: Callable[[Any, str], None] = sweep_eval.check_axis_key
    evaluate_chunk: Callable[[SweepContext, ChunkTask], list[dict[str, Any]]] = \
        sweep_eval.evaluate_chunk


SIMULATOR = Evaluator()


@dataclass(frozen=True)
class PlannedPoint:
    key: str
    point: SweepPoint


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    points: tuple[PlannedPoint, ...]
    context: SweepContext
    trace_info: Mapping[str, Mapping[str, Any]]  # trace name -> metadata columns

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.points]

    @property
    def columns(self) -> list[str]:
        """The results table's leading columns, in order."""
        return ["key", "trace", "base", *self.spec.axis_keys, *TRACE_COLUMNS,
                *METRIC_COLUMNS, "status", "error"]

    def row_prefix(self, planned: PlannedPoint) -> dict[str, Any]:
        point = planned.point
        return {"key": planned.key, "trace": point.trace, "base": point.base,
                **point.overrides_dict(), **self.trace_info[point.trace]}


@dataclass(frozen=True)
class SweepOutcome:
    out_dir: Path
    total_points: int
    already_done: int
    evaluated: int
    errors: int
    elapsed_s: float  # evaluation only: planning and table writing excluded
    results: pd.DataFrame = field(repr=False)

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.elapsed_s if self.elapsed_s > 0 else math.nan


# ----------------------------------------------------------------------------- planning


def plan_sweep(spec: SweepSpec, evaluator: Evaluator = SIMULATOR) -> SweepPlan:
    """Load every base and trace once, expand the points and key them."""
    bases = {}
    for base in spec.bases:
        try:
            bases[base] = evaluator.load_base(base)
        except (InputError, OSError) as err:
            raise type(err)(f"{spec.source}: base: {err}") from None
    _check_axes(spec, bases, evaluator)
    traces = {entry.name: build_trace(entry) for entry in spec.traces}
    base_ids = {name: evaluator.base_identity(base) for name, base in bases.items()}
    trace_ids = {name: trace_content_hash(trace) for name, trace in traces.items()}
    points = expand_points(spec, lambda base, key: evaluator.base_value(bases[base], key))
    planned = tuple(
        PlannedPoint(key=point_key(base=p.base, base_identity=base_ids[p.base],
                                   overrides=p.overrides, trace_identity=trace_ids[p.trace]),
                     point=p)
        for p in points)
    return SweepPlan(spec=spec, points=planned,
                     context=SweepContext(bases=bases, traces=traces),
                     trace_info={name: trace_metadata(t) for name, t in traces.items()})


def _check_axes(spec: SweepSpec, bases: Mapping[str, Any], evaluator: Evaluator) -> None:
    for axis in spec.axes:
        for base_name, base in bases.items():
            try:
                evaluator.check_axis_key(base, axis.key)
            except InputError as err:
                raise SweepSpecError(f"{spec.source}: axes.{axis.key}: unknown to base "
                                 f"{base_name} ({err})") from None


def make_chunks(points: Sequence[PlannedPoint], chunk_size: int) -> list[ChunkTask]:
    """Consecutive points of the same trace, at most `chunk_size` per chunk."""
    chunks: list[ChunkTask] = []
    current: list = []
    current_trace = None
    for planned in points:
        point = planned.point
        if current and (point.trace != current_trace or len(current) == chunk_size):
            chunks.append((current_trace, tuple(current)))
            current = []
        current_trace = point.trace
        current.append((planned.key, point.base, point.overrides))
    if current:
        chunks.append((current_trace, tuple(current)))
    return chunks


def auto_chunk_size(pending: int, workers: int) -> int:
    """Big enough to amortise task overhead, small enough for load balance and progress."""
    return max(1, min(_MAX_CHUNK, math.ceil(pending / (workers * _CHUNKS_PER_WORKER))))


# ----------------------------------------------------------------------------- running


def run_sweep(spec: SweepSpec | str | Path, out_dir: str | Path, *, executor: str = "local",
              workers: int | None = None, scheduler: str | None = None,
              chunk_size: int | None = None, progress: bool = True,
              evaluator: Evaluator = SIMULATOR, dask_processes: bool = True) -> SweepOutcome:
    """Evaluate every point of `spec` not yet in `out_dir`; return the whole table."""
    check_executor_args(executor, workers, scheduler)
    if not isinstance(spec, SweepSpec):
        spec = load_sweep_spec(spec)
    if chunk_size is not None and (isinstance(chunk_size, bool) or chunk_size < 1):
        raise SweepSpecError(f"--chunk-size: expected an integer >= 1, got {chunk_size!r}")
    plan = plan_sweep(spec, evaluator)
    out_dir = Path(out_dir)
    with SweepStore(out_dir) as store:
        _write_spec_copy(spec, out_dir)
        pending = [p for p in plan.points if p.key not in store]
        already_done = len(plan.points) - len(pending)
        log.info("%s: %d points, %d already done, %d to run", spec.name, len(plan.points),
                 already_done, len(pending))
        evaluated, elapsed_s = 0, 0.0
        try:
            if pending:
                evaluated, elapsed_s = _evaluate_pending(
                    plan, pending, store, executor=executor, workers=workers,
                    scheduler=scheduler, chunk_size=chunk_size, progress=progress,
                    evaluator=evaluator, dask_processes=dask_processes)
        finally:
            results = store.table(plan.keys, plan.columns)
            store.write_table(plan.keys, plan.columns)
            outcome = SweepOutcome(
                out_dir=out_dir, total_points=len(plan.points), already_done=already_done,
                evaluated=evaluated, errors=_count_errors(results), elapsed_s=elapsed_s,
                results=results)
            _write_meta(outcome, spec, executor=executor, workers=workers)
    return outcome


def _evaluate_pending(plan: SweepPlan, pending: Sequence[PlannedPoint], store: SweepStore, *,
                      executor: str, workers: int | None, scheduler: str | None,
                      chunk_size: int | None, progress: bool, evaluator: Evaluator,
                      dask_processes: bool) -> tuple[int, float]:
    by_key = {p.key: p for p in pending}
    evaluated = 0
    bar = tqdm(total=len(plan.points), initial=len(plan.points) - len(pending), unit="pt",
               desc=plan.spec.name, disable=not progress, file=sys.stderr, dynamic_ncols=True,
               smoothing=0.05)
    start = time.perf_counter()
    try:
        if executor == "local" and workers is None and len(pending) < _INLINE_BELOW:
            workers = 1  # starting a pool costs more than evaluating this few points
        with make_executor(executor, workers=workers, scheduler=scheduler,
                           dask_processes=dask_processes) as pool:
            size = chunk_size or auto_chunk_size(len(pending), pool.workers)
            chunks = make_chunks(pending, size)
            for _, rows in pool.run(evaluator.evaluate_chunk, plan.context, chunks):
                complete = [{**plan.row_prefix(by_key[row["key"]]), **row} for row in rows]
                store.append(complete)
                evaluated += len(complete)
                bar.update(len(complete))
    finally:
        bar.close()
    return evaluated, time.perf_counter() - start


def _count_errors(results: pd.DataFrame) -> int:
    if "status" not in results:
        return 0
    return int((results["status"] == STATUS_ERROR).sum())


def _write_spec_copy(spec: SweepSpec, out_dir: Path) -> None:
    """The spec next to its results, so a report can say what was swept."""
    try:
        atomic_write_text(out_dir / SPEC_COPY, spec.source.read_text(encoding="utf-8"))
    except OSError as err:
        log.warning("%s: could not copy the spec (%s)", spec.source, err)


def _write_meta(outcome: SweepOutcome, spec: SweepSpec, *, executor: str,
                workers: int | None) -> None:
    meta = {
        "spec_name": spec.name,
        "spec_file": str(spec.source),
        "description": spec.description,
        "mode": spec.mode,
        "axes": {axis.key: list(axis.values) for axis in spec.axes},
        "bases": list(spec.bases),
        "traces": [entry.name for entry in spec.traces],
        "total_points": outcome.total_points,
        "done_points": len(outcome.results),
        "error_points": outcome.errors,
        "evaluated_this_run": outcome.evaluated,
        "executor": executor,
        "workers": workers,
        "elapsed_s": round(outcome.elapsed_s, 6),
        "points_per_s": None if math.isnan(outcome.points_per_s)
        else round(outcome.points_per_s, 3),
    }
    atomic_write_text(outcome.out_dir / SWEEP_META, json.dumps(meta, indent=2) + "\n")


__all__ = ["Evaluator", "SIMULATOR", "PlannedPoint", "SweepPlan", "SweepOutcome", "plan_sweep",
           "make_chunks", "auto_chunk_size", "run_sweep", "SWEEP_META", "TRACE_COLUMNS"]

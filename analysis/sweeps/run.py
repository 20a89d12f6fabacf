"""Run a sweep: plan the points, skip the finished ones, evaluate the rest in chunks.

```python
outcome = run_sweep("pe_memory_sweep", "runs/sweep", executor="local", workers=2)
outcome.results  # tidy DataFrame, one row per point, in the spec's order
```

Planning happens once, in this process: each base config is loaded and validated, each
trace built or loaded, every point expanded and keyed by its hardware and trace
(`identity.py`: two spellings of one hardware point share a key and run once). Points
already in the directory's store are skipped; the rest go to the executor in chunks of one
trace, and every finished chunk is appended to the store before its progress is counted.
The tidy table `results.csv` is rewritten at the end, also after an interruption.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from sparsespikformer.analysis.sweeps import evaluate as sweep_eval
from sparsespikformer.analysis.sweeps.evaluate import (
    STATUS_ERROR,
    ChunkTask,
    SweepContext,
)
from sparsespikformer.analysis.sweeps.executors import check_executor_args, make_executor
from sparsespikformer.analysis.sweeps.identity import (
    POINT_KEY_VERSION,
    ValueNormaliser,
    hardware_config,
    hardware_identity,
    legacy_key_map,
    legacy_point_key,
    point_key,
)
from sparsespikformer.analysis.sweeps.meta import (
    SPEC_COPY,
    SWEEP_META,
    TRACE_COLUMNS,
    lowest_energy_text,
    read_sweep_meta,
    results_columns,
)
from sparsespikformer.analysis.sweeps.spec import (
    SweepPoint,
    SweepSpec,
    expand_points,
    load_sweep_spec,
)
from sparsespikformer.analysis.sweeps.store import SweepStore
from sparsespikformer.analysis.sweeps.traces import build_trace, trace_content_hash, trace_metadata
from sparsespikformer.simulator.atomic import atomic_write_text
from sparsespikformer.simulator.errors import InputError, SweepSpecError

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
    hardware_values: Callable[[Any], Any] = sweep_eval.hardware_values
    normalise_value: Callable[[Any, str, Any], Any] = sweep_eval.normalise_value


SIMULATOR = Evaluator()


@dataclass(frozen=True)
class PlannedPoint:
    key: str
    point: SweepPoint  # its overrides normalised (as the validated config holds them)
    written: tuple[tuple[str, Any], ...]  # the overrides as the spec wrote them


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    points: tuple[PlannedPoint, ...]
    context: SweepContext
    trace_info: Mapping[str, Mapping[str, Any]]  # trace name -> metadata columns
    trace_identities: Mapping[str, str]  # trace name -> content hash

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.points]

    @property
    def columns(self) -> list[str]:
        """The results table's leading columns, in order."""
        return results_columns(self.spec.axis_keys)

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
    axis_keys: tuple[str, ...] = ()  # the spec's axes, in order

    def best_point_text(self) -> str:
        """`trace on base: axis=value, ...` of the lowest-energy ok row ('' if none)."""
        return lowest_energy_text(self.results, self.axis_keys)

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.elapsed_s if self.elapsed_s > 0 else math.nan


# ----------------------------------------------------------------------------- planning


def plan_sweep(spec: SweepSpec, evaluator: Evaluator = SIMULATOR) -> SweepPlan:
    """Load every base and trace once, expand the points and key them; a point that is the
    same hardware and trace as an earlier one is planned once."""
    bases = {}
    for base in spec.bases:
        try:
            bases[base] = evaluator.load_base(base)
        except (InputError, OSError) as err:
            raise type(err)(f"{spec.source}: base: {err}") from None
    _check_axes(spec, bases, evaluator)
    traces = {entry.name: build_trace(entry) for entry in spec.traces}
    trace_ids = {name: trace_content_hash(trace) for name, trace in traces.items()}
    points = expand_points(spec, lambda base, key: evaluator.base_value(bases[base], key))
    planned = _key_points(spec, points, bases, trace_ids, evaluator)
    return SweepPlan(spec=spec, points=planned,
                     context=SweepContext(bases=bases, traces=traces),
                     trace_info={entry.name: trace_metadata(
                         traces[entry.name], accuracy_given=entry.accuracy is not None)
                         for entry in spec.traces},
                     trace_identities=trace_ids)


def _key_points(spec: SweepSpec, points: Sequence[SweepPoint], bases: Mapping[str, Any],
                trace_ids: Mapping[str, str], evaluator: Evaluator
                ) -> tuple[PlannedPoint, ...]:
    normalise = ValueNormaliser(evaluator.normalise_value, bases)
    hardware: dict[tuple, tuple[str, tuple]] = {}  # (base, overrides) -> (identity, normalised)
    planned: dict[str, PlannedPoint] = {}
    repeats: list[tuple[SweepPoint, SweepPoint]] = []
    for point in points:
        combination = (point.base, point.overrides)
        if combination not in hardware:
            values = tuple((key, normalise(point.base, key, value))
                           for key, value in point.overrides)
            config = hardware_config(evaluator.hardware_values(bases[point.base]), values)
            hardware[combination] = (hardware_identity(config), values)
        identity, values = hardware[combination]
        key = point_key(hardware=identity, trace_identity=trace_ids[point.trace])
        if key in planned:
            repeats.append((planned[key].point, point))
            continue
        planned[key] = PlannedPoint(key=key, point=replace(point, overrides=values),
                                    written=point.overrides)
    if repeats:
        first, again = repeats[0]
        log.warning("%s: %d point(s) are the same hardware and trace as an earlier point "
                    "(e.g. %s on %s %s = %s %s); each runs once", spec.source, len(repeats),
                    again.trace, again.base, dict(again.overrides), first.base,
                    dict(first.overrides))
    return tuple(planned.values())


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
        _check_resumed_folder(plan, store, out_dir, evaluator)
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
                results=results, axis_keys=spec.axis_keys)
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


def _check_resumed_folder(plan: SweepPlan, store: SweepStore, out_dir: Path,
                          evaluator: Evaluator) -> None:
    """Resuming: say when the folder's earlier sweep had other axes, and re-key rows stored
    under version-1 keys (see `identity.py`) so they are not run again."""
    if not len(store):
        return
    meta = read_sweep_meta(out_dir) or {}
    earlier = list(meta.get("axes") or {})
    if meta and earlier != list(plan.spec.axis_keys):
        log.warning("%s: the sweep stored here swept %s, this spec sweeps %s; results.csv "
                    "and reports show this spec's points, results.jsonl keeps every point",
                    out_dir, earlier or "no axes", list(plan.spec.axis_keys) or "no axes")
    if meta.get("point_key_version") == POINT_KEY_VERSION:
        return
    base_ids = {name: evaluator.base_identity(base)
                for name, base in plan.context.bases.items()}
    pairs = ((legacy_point_key(base=p.point.base, base_identity=base_ids[p.point.base],
                               overrides=p.written,
                               trace_identity=plan.trace_identities[p.point.trace]), p)
             for p in plan.points)
    by_legacy = {legacy: planned for legacy, planned in pairs}
    mapping = legacy_key_map(((legacy, p.key) for legacy, p in by_legacy.items()),
                             store.keys())
    if mapping:
        store.rekey({old: (by_legacy[old].key, plan.row_prefix(by_legacy[old]))
                     for old in mapping})
        log.info("%s: %d results stored under version-1 point keys re-keyed; they are not "
                 "run again", out_dir, len(mapping))


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
        "point_key_version": POINT_KEY_VERSION,
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
           "make_chunks", "auto_chunk_size", "run_sweep",
           "SWEEP_META", "SPEC_COPY", "TRACE_COLUMNS"]

"""The end-to-end demo: the whole co-design story on the bundled digits data.

train dense -> lottery-ticket rounds to >= 90 % weight sparsity (+ the random re-init
baseline at the last round) -> token selectors (learned, on the dense model and on the
pruned ticket; parameter-free scorers evaluated at every keep ratio) -> traces of the
variants -> simulation on every bundled hw config -> a hardware sweep -> summary.json -> plots
and the HTML report (which opens with the summary's answer).

Every stage writes its result file last, atomically, under `out/stages/`; a re-run with the
same `out` skips finished stages (training and pruning also resume inside a stage). The
summary and the report are rebuilt on every run, from the stages' results.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sparsespikformer.analysis.demo_summary import VARIANT_ORDER, build_summary
from sparsespikformer.simulator.atomic import atomic_write_text

log = logging.getLogger(__name__)

VARIANTS = VARIANT_ORDER
KEEP_RATIOS = (0.9, 0.8, 0.7, 0.6, 0.5)


@dataclass(frozen=True)
class DemoConfig:
    out_dir: Path
    preset: str = "spikformer_4_64_digits"
    selector_preset: str = "sparsespikformer_4_64_digits"
    data: str = "digits"
    timesteps: int | None = 2  # T=2 (preset: 4) halves the cost: the 10-minute budget
    lth_rounds: int = 9          # 1 - 0.75^9 = 92.5 % sparsity (8 rounds give 89.99 %)
    dense_epochs: int = 6        # round 0, the dense model (the digits recipe's 6 epochs)
    lth_epochs: int = 3          # per retraining round: the 10-minute budget
    rewind_epoch: int = 1
    keep_ratio: float = 0.7
    selector_epochs: int = 2
    trace_samples: int = 256
    sweep_rows: tuple[int, ...] = (4, 8, 16, 32, 64)
    sweep_cols: tuple[int, ...] = (4, 8, 16, 32, 64)
    sweep_weight_kib: tuple[int, ...] = (16, 64, 256)
    seed: int = 0
    progress: bool = True
    device: str = "auto"         # --device: where the stages train, evaluate and trace

    def stage_path(self, stage: str) -> Path:
        return self.out_dir / "stages" / f"{stage}.json"


@dataclass
class DemoContext:
    """Lazily built pieces shared by the stages (datasets, the lottery task)."""

    config: DemoConfig
    _datasets: tuple | None = None

    @property
    def datasets(self):
        if self._datasets is None:
            from sparsespikformer.model.data import load_dataset

            self._datasets = (load_dataset(self.config.data, "train"),
                              load_dataset(self.config.data, "test"))
        return self._datasets


# ----------------------------------------------------------------------------- stages


def _train_config(epochs: int, seed: int):
    from sparsespikformer.model.training.recipes import digits_recipe

    recipe = digits_recipe()
    return replace(recipe, epochs=epochs, warmup_epochs=min(recipe.warmup_epochs, epochs),
                   seed=seed)


def _lottery(ctx: DemoContext, baseline: str = "none"):
    import torch

    from sparsespikformer.model import create_model
    from sparsespikformer.model.pruning.lottery import LotteryConfig, LotteryTask

    config = ctx.config

    def build_model(seed: int):
        torch.manual_seed(seed)
        return create_model(config.preset, **_model_overrides(config))

    train_set, test_set = ctx.datasets
    lottery = LotteryConfig(rounds=config.lth_rounds, rewind_epoch=config.rewind_epoch,
                            seed=config.seed, baseline=baseline,
                            baseline_rounds=None if baseline == "none" else (config.lth_rounds,))
    task = LotteryTask(build_model=build_model, train_set=train_set, test_set=test_set,
                       train_config=_train_config(config.lth_epochs, config.seed),
                       dense_train_config=_train_config(config.dense_epochs, config.seed),
                       progress=config.progress, runtime=_runtime(config),
                       metadata={"preset": config.preset, "data": config.data})
    return lottery, task


def stage_lth(ctx: DemoContext) -> dict:
    from sparsespikformer.model.pruning.lottery import run_lottery

    lottery, task = _lottery(ctx)
    rounds = run_lottery(lottery, task, ctx.config.out_dir / "lth")
    dense, last = rounds.iloc[0], rounds.iloc[-1]
    return {"dense_accuracy": float(dense.test_accuracy),
            "pruned_accuracy": float(last.test_accuracy),
            "weight_sparsity": float(last.weight_sparsity), "rounds": int(last["round"])}


def stage_lth_reinit(ctx: DemoContext) -> dict:
    from sparsespikformer.model.pruning.lottery import run_lottery

    lottery, task = _lottery(ctx, baseline="reinit")
    rounds = run_lottery(lottery, task, ctx.config.out_dir / "lth")
    last = rounds.iloc[-1]
    return {"reinit_accuracy": float(last.test_accuracy),
            "reinit_weight_sparsity": float(last.weight_sparsity)}


def _ticket(ctx: DemoContext, round_index: int):
    from sparsespikformer.model.pruning.lottery import trained_model

    lottery, task = _lottery(ctx)
    return trained_model(ctx.config.out_dir / "lth", round_index, lottery, task)


def _ticket_masks(ctx: DemoContext):
    from sparsespikformer.model.pruning.lottery_store import MASK_NAME, round_dir
    from sparsespikformer.model.pruning.masks import load_masks

    return load_masks(round_dir(ctx.config.out_dir / "lth", ctx.config.lth_rounds) / MASK_NAME)


def _student(ctx: DemoContext, scorer: str = "learned", keep_ratio: float | None = None):
    import torch

    from sparsespikformer.model import create_model

    torch.manual_seed(ctx.config.seed)
    return create_model(ctx.config.selector_preset, scorer=scorer,
                        keep_ratio=ctx.config.keep_ratio if keep_ratio is None else keep_ratio,
                        **_model_overrides(ctx.config))


def _runtime(config: DemoConfig):
    from sparsespikformer.model.training.devices import Runtime

    return Runtime(device=config.device)


def _model_overrides(config: DemoConfig) -> dict:
    return {} if config.timesteps is None else {"timesteps": config.timesteps}


def _train_student(ctx: DemoContext, teacher, name: str, masks=None):
    from sparsespikformer.model.pruning.masks import MaskEnforcer
    from sparsespikformer.model.training.loop import evaluate
    from sparsespikformer.model.training.selector_training import train_selector

    config = ctx.config
    student = _student(ctx)
    enforcer = MaskEnforcer(masks) if masks is not None else None
    train_set, test_set = ctx.datasets
    train_selector(student, teacher.eval(), train_set, test_set,
                   _train_config(config.selector_epochs, config.seed), config.out_dir / name,
                   progress=config.progress,
                   after_backward=enforcer.after_backward if enforcer else None,
                   after_optimizer_step=enforcer.after_optimizer_step if enforcer else None,
                   metadata={"preset": config.selector_preset, "data": config.data,
                             "keep_ratio": config.keep_ratio}, runtime=_runtime(config))
    return student, float(evaluate(student, test_set)["accuracy"])


def _load_student(ctx: DemoContext, name: str):
    from sparsespikformer.model.training.weights import load_model_weights

    student = _student(ctx)
    load_model_weights(student, ctx.config.out_dir / name / "checkpoint.pt")
    return student.eval()


def stage_selector(ctx: DemoContext) -> dict:
    _, accuracy = _train_student(ctx, _ticket(ctx, 0), "selector")
    return {"selector_accuracy": accuracy, "keep_ratio": ctx.config.keep_ratio}


def stage_co_design(ctx: DemoContext) -> dict:
    from sparsespikformer.model.pruning.masks import model_weight_sparsity

    student, accuracy = _train_student(ctx, _ticket(ctx, ctx.config.lth_rounds), "co_design",
                                       masks=_ticket_masks(ctx))
    return {"co_designed_accuracy": accuracy,
            "co_designed_weight_sparsity": model_weight_sparsity(student)}


def stage_keep_ratios(ctx: DemoContext) -> dict:
    """Accuracy and GFLOPs vs keep ratio: parameter-free scorers on the dense model at every
    ratio (no training needed), and the trained learned selector at its ratio."""
    from sparsespikformer.model import gflops
    from sparsespikformer.model.training.loop import evaluate

    config = ctx.config
    dense = _ticket(ctx, 0).eval()
    _, test_set = ctx.datasets
    input_shape = tuple(test_set.info.input_shape)
    rows = [{"scorer": "dense", "keep_ratio": 1.0,
             "accuracy": evaluate(dense, test_set)["accuracy"],
             "gflops": gflops(dense, input_shape)}]
    for scorer in ("firing_rate", "random"):
        for ratio in KEEP_RATIOS:
            student = _student(ctx, scorer=scorer, keep_ratio=ratio)
            student.load_state_dict(dense.state_dict(), strict=False)
            rows.append({"scorer": scorer, "keep_ratio": ratio,
                         "accuracy": evaluate(student.eval(), test_set)["accuracy"],
                         "gflops": gflops(student, input_shape)})
    learned = _load_student(ctx, "selector")
    rows.append({"scorer": "learned", "keep_ratio": config.keep_ratio,
                 "accuracy": evaluate(learned, test_set)["accuracy"],
                 "gflops": gflops(learned, input_shape)})
    table = pd.DataFrame(rows).assign(test_samples=len(test_set))  # n behind each accuracy
    _write_csv(table, config.out_dir / "keep_ratio.csv")
    return {"dense_gflops": float(rows[0]["gflops"]),
            "selected_gflops": float(rows[-1]["gflops"])}


def _variant_models(ctx: DemoContext) -> dict[str, Any]:
    return {"dense": _ticket(ctx, 0), "pruned": _ticket(ctx, ctx.config.lth_rounds),
            "selected": _load_student(ctx, "selector"),
            "co_designed": _load_student(ctx, "co_design")}


def stage_traces(ctx: DemoContext) -> dict:
    import torch

    from sparsespikformer.model.tracing.record import record_trace

    config = ctx.config
    _, test_set = ctx.datasets
    count = min(config.trace_samples, len(test_set))
    images, labels = test_set.get_batch(torch.arange(count))
    accuracies = {}
    for name, model in _variant_models(ctx).items():
        preset = config.selector_preset if name in ("selected", "co_designed") else config.preset
        trace = record_trace(model.to(_runtime(config).torch_device()), images, labels,
                             preset=preset, dataset=config.data, seed=config.seed)
        trace.save(config.out_dir / "traces" / name)
        accuracies[name] = trace.manifest["accuracy"]
        if name == "selected":
            _write_kept_tokens(model, images[:6], config.out_dir / "kept_tokens.npz")
    return {"trace_accuracy": accuracies}


def _write_kept_tokens(model, images, path: Path) -> None:
    import torch

    from sparsespikformer.analysis.reporting.result_files import write_kept_tokens
    from sparsespikformer.model.nn.token_selector import token_selectors_of

    with torch.no_grad():
        model.eval().cpu()(images)
    kept = {f"selector {s.ordinal} (block {block})": s.last_kept_indices.numpy()
            for block, s in zip(sorted(model.token_selectors, key=int),
                                token_selectors_of(model))}
    write_kept_tokens(path, images[:, 0].numpy(), kept, model.config.num_tokens)


def stage_simulate(ctx: DemoContext) -> dict:
    from sparsespikformer.hwconfigs import list_hwconfigs
    from sparsespikformer.simulator import load_hwconfig, simulate
    from sparsespikformer.simulator.trace import Trace

    out = ctx.config.out_dir
    traces = {name: Trace.load(out / "traces" / name) for name in VARIANTS}
    rows, energy, latency, gflops = [], {}, {}, {}
    for hw_name in list_hwconfigs():
        hw = load_hwconfig(hw_name)
        for variant, trace in traces.items():
            result = simulate(trace, hw)
            totals = result.totals
            rows.append({"hw": f"{hw_name}/{variant}", "hwconfig": hw_name, "variant": variant,
                         **{k: v for k, v in totals.items() if isinstance(v, (int, float))}})
            energy.setdefault(hw_name, {})[variant] = float(totals["energy_pj"])
            latency.setdefault(hw_name, {})[variant] = float(totals["latency_s"])
            if hw_name == "sparse_int8_45nm":  # the default accelerator's view of the work
                gflops[variant] = {"dense": float(totals["dense_gflops"]),
                                   "effective": float(totals["effective_gflops"])}
                if variant in ("dense", "co_designed"):
                    _write_csv(result.layers, out / "simulation" / f"layers_{variant}.csv")
    _write_csv(pd.DataFrame(rows), out / "simulation" / "totals.csv")
    return {"energy_pj": energy, "latency_s": latency, "gflops": gflops}


def stage_sweep(ctx: DemoContext) -> dict:
    from sparsespikformer.analysis.sweeps.run import run_sweep

    config = ctx.config
    spec_path = config.out_dir / "sweep_spec.yaml"
    atomic_write_text(spec_path, yaml.safe_dump(_sweep_spec(ctx), sort_keys=False))
    outcome = run_sweep(spec_path, config.out_dir / "sweep", progress=config.progress)
    return {"sweep_points": int(outcome.total_points), "sweep_errors": int(outcome.errors)}


def _sweep_spec(ctx: DemoContext) -> dict:
    """PE array shape x weight memory x dataflow on sparse_int8_45nm, for the four traces."""
    config = ctx.config
    return {
        "version": 1, "name": "demo_sweep",
        "description": "PE array x weight memory x dataflow for the demo's four model variants",
        "base": "sparse_int8_45nm", "mode": "grid",
        "axes": {"pe_array.rows": list(config.sweep_rows),
                 "pe_array.cols": list(config.sweep_cols),
                 "weight_memory.size_kib": list(config.sweep_weight_kib),
                 "pe_array.dataflow": ["weight_stationary", "output_stationary"]},
        "traces": [{"name": name, "path": str((config.out_dir / "traces" / name).resolve())}
                   for name in VARIANTS],
    }


def write_report(config: DemoConfig) -> Path:
    """The HTML report, built last (not a cached stage): it opens with summary.json's answer,
    so it is rebuilt whenever the summary is."""
    from sparsespikformer.analysis.reporting.report import build_report

    out = config.out_dir
    return build_report(out, out / "report.html",
                        title="SparseSpikformer co-design demo (digits)",
                        figures_dir=out / "plots")


# ----------------------------------------------------------------------------- running

STAGES: tuple[tuple[str, Callable[[DemoContext], dict]], ...] = (
    ("lth", stage_lth),
    ("lth_reinit", stage_lth_reinit),
    ("selector", stage_selector),
    ("co_design", stage_co_design),
    ("keep_ratios", stage_keep_ratios),
    ("traces", stage_traces),
    ("simulate", stage_simulate),
    ("sweep", stage_sweep),
)


def run_demo(config: DemoConfig) -> dict:
    """Run (or resume) every stage; returns and writes the summary."""
    ctx = DemoContext(config)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name, stage in STAGES:
        path = config.stage_path(name)
        if path.is_file():
            log.info("stage %s: done earlier, reusing %s", name, path)
            results.update(json.loads(path.read_text()))
            continue
        log.info("stage %s: running", name)
        start = time.perf_counter()
        outcome = stage(ctx)
        outcome[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
        atomic_write_text(path, json.dumps(outcome, indent=2, sort_keys=True))
        results.update(outcome)
    summary = build_summary(config, results, test_samples=len(ctx.datasets[1]))
    atomic_write_text(config.out_dir / "summary.json", json.dumps(summary, indent=2))
    write_report(config)
    return summary


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n"))

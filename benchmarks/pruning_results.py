"""Pruning results on the embedded digits data (issue 3): prints the tables, writes CSVs.

Stages (each resumable: finished trainings are reused, an interrupted one resumes):

  lth      dense model + IMP rounds (25% of survivors per round, late rewinding to
           epoch 1) up to >= 90% weight sparsity, and the random re-initialisation
           baseline at the final round (the same masks on a fresh initialisation)
  select   token selection, keep ratio 0.9 ... 0.5 x scorers learned / firing_rate /
           random: each selector model starts from the dense model of `lth` round 0
           and trains with CE + 2.0 ratio MSE + 0.5 KL to it
  both     the >= 90%-sparse ticket with learned selectors at ρ = 0.7: the student
           starts from the ticket's trained weights, keeps its mask (selector MLPs
           dense), trains with the selector loss, teacher = the dense model
  extra    one-shot magnitude pruning and random pruning at the final sparsity
  report   tables only (also printed after every other stage)

Files under --out (default runs/pruning_digits):
  lth/..., lth_curve.csv       rounds.csv-style, with a `baseline` column (imp, reinit, ...)
  select/..., keep_ratio.csv   scorer, keep_ratio, accuracy, gflops, ... (dense row: ρ = 1)
  both/..., both.csv           weight sparsity, ρ, accuracy, gflops

Runs on 2 shared CPU cores in a long while; start it in the background:
  nohup python benchmarks/pruning_results.py > runs/pruning_digits.log 2>&1 &
Two stages may run side by side once `lth` round 0 exists (e.g. `--stage select`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from sparsespikformer.model import create_model, get_preset_config, gflops
from sparsespikformer.model.data import load_dataset
from sparsespikformer.model.data.base import InMemoryDataset
from sparsespikformer.model.pruning.lottery import (
    LotteryConfig,
    LotteryTask,
    baseline_dir,
    is_round_finished,
    round_dir,
    run_lottery,
    trained_model,
)
from sparsespikformer.model.pruning.masks import (
    MaskEnforcer,
    apply_masks_to_weights,
    full_masks,
    load_masks,
    model_weight_sparsity,
    weight_sparsity,
)
from sparsespikformer.model.training.loop import evaluate
from sparsespikformer.model.training.recipes import digits_recipe
from sparsespikformer.model.training.seeding import seed_everything
from sparsespikformer.model.training.selector_training import (
    init_student_from_teacher,
    train_selector,
)
from sparsespikformer.simulator.atomic import atomic_write_text

DENSE_PRESET = "spikformer_4_64_digits"
SPARSE_PRESET = "sparsespikformer_4_64_digits"
INPUT_SHAPE = (1, 16, 16)
TARGET_SPARSITY = 0.90
BOTH_KEEP_RATIO = 0.7

log = logging.getLogger("pruning_results")


@dataclasses.dataclass(frozen=True)
class Settings:
    out: Path
    rounds: int
    rate: float
    epochs: int
    select_epochs: int
    select_lr: float
    keep_ratios: tuple[float, ...]
    scorers: tuple[str, ...]
    threads: int
    progress: bool
    subset: int | None


def parse_args(argv: list[str] | None = None) -> tuple[str, Settings]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pruning_digits"))
    parser.add_argument("--stage", choices=("all", "lth", "select", "both", "extra", "report"),
                        default="all")
    parser.add_argument("--rounds", type=int, default=9, help="IMP rounds (9: 92.5%% sparse)")
    parser.add_argument("--rate", type=float, default=0.25,
                        help="fraction of survivors pruned per round")
    parser.add_argument("--epochs", type=int, default=digits_recipe().epochs,
                        help="epochs of the dense model and of every IMP round")
    parser.add_argument("--select-epochs", type=int, default=4,
                        help="epochs of selector training from the teacher")
    parser.add_argument("--select-lr", type=float, default=3e-3)
    parser.add_argument("--keep-ratios", type=float, nargs="+", default=[0.9, 0.8, 0.7, 0.6, 0.5])
    parser.add_argument("--scorers", nargs="+", default=["learned", "firing_rate", "random"])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: several processes share 2 cores without "
                             "oversubscription)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--subset", type=int,
                        help="smoke test: first N training and N/4 test images only")
    args = parser.parse_args(argv)
    # ρ = 0.7 first: the headline numbers are ready before the rest of the sweep
    ratios = sorted(args.keep_ratios, key=lambda r: (abs(r - BOTH_KEEP_RATIO) > 1e-9, -r))
    return args.stage, Settings(out=args.out, rounds=args.rounds, rate=args.rate,
                                epochs=args.epochs, subset=args.subset,
                                select_epochs=args.select_epochs, select_lr=args.select_lr,
                                keep_ratios=tuple(ratios), scorers=tuple(args.scorers),
                                threads=args.threads, progress=not args.no_progress)


# ---------------------------------------------------------------- shared pieces


def _head(dataset, count: int) -> InMemoryDataset:
    images, labels = dataset.get_batch(torch.arange(min(count, len(dataset))))
    return InMemoryDataset(images, labels, dataset.info)


def data(settings: Settings):
    train_set, test_set = load_dataset("digits", "train"), load_dataset("digits", "test")
    if settings.subset is None:
        return train_set, test_set
    return _head(train_set, settings.subset), _head(test_set, max(1, settings.subset // 4))


def train_config(settings: Settings, epochs: int, lr: float | None = None):
    config = dataclasses.replace(digits_recipe(), epochs=epochs, num_threads=settings.threads)
    return config if lr is None else dataclasses.replace(config, lr=lr, warmup_epochs=0)


def build_dense(seed: int) -> torch.nn.Module:
    seed_everything(seed)
    return create_model(DENSE_PRESET)


def lth_task(settings: Settings) -> LotteryTask:
    train_set, test_set = data(settings)
    return LotteryTask(build_model=build_dense, train_set=train_set, test_set=test_set,
                       train_config=train_config(settings, settings.epochs),
                       progress=settings.progress,
                       metadata={"preset": DENSE_PRESET, "data": "digits"})


def lth_config(settings: Settings, baseline: str = "none") -> LotteryConfig:
    final = (settings.rounds,) if baseline in ("reinit", "random") else None
    return LotteryConfig(rounds=settings.rounds, rate=settings.rate, rewind_epoch=1, scope="global",
                         baseline=baseline, seed=0, baseline_rounds=final)


def lth_dir(settings: Settings) -> Path:
    return settings.out / "lth"


def dense_teacher(settings: Settings) -> torch.nn.Module:
    """The trained dense model of IMP round 0 (trained first if missing)."""
    config = dataclasses.replace(lth_config(settings), rounds=0)
    run_lottery(config, lth_task(settings), lth_dir(settings))
    return trained_model(lth_dir(settings), 0, config, lth_task(settings)).eval()


def ticket_round(settings: Settings) -> int:
    """First IMP round at >= 90% weight sparsity."""
    for k in range(settings.rounds + 1):
        if lth_config(settings).sparsity_after(k) >= TARGET_SPARSITY - 1e-12:
            return k
    raise ValueError(f"--rounds {settings.rounds} never reaches {TARGET_SPARSITY:.0%} sparsity")


def write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def dense_gflops() -> float:
    return gflops(create_model(DENSE_PRESET), INPUT_SHAPE)


# ---------------------------------------------------------------- stages


def stage_lth(settings: Settings) -> None:
    task = lth_task(settings)
    run_lottery(lth_config(settings), task, lth_dir(settings))
    run_lottery(lth_config(settings, "reinit"), task, lth_dir(settings))


def stage_extra(settings: Settings) -> None:
    task = lth_task(settings)
    run_lottery(lth_config(settings, "oneshot"), task, lth_dir(settings))
    run_lottery(lth_config(settings, "random"), task, lth_dir(settings))


def _selector_run(settings: Settings, teacher: torch.nn.Module, scorer: str,
                  keep_ratio: float) -> dict:
    out = settings.out / "select" / f"{scorer}_rho{keep_ratio:.2f}"
    done = read_json(out / "result.json")
    if done is not None:
        return done
    train_set, test_set = data(settings)
    seed_everything(0)
    student = create_model(SPARSE_PRESET, keep_ratio=keep_ratio, scorer=scorer)
    init_student_from_teacher(student, teacher.state_dict())
    untrained = evaluate(student, test_set)["accuracy"]          # selection on the teacher as is
    started = time.perf_counter()
    history = train_selector(student, teacher, train_set, test_set,
                             train_config(settings, settings.select_epochs, settings.select_lr),
                             out / "train", progress=settings.progress,
                             metadata={"preset": SPARSE_PRESET, "data": "digits",
                                       "overrides": {"keep_ratio": keep_ratio,
                                                     "scorer": scorer}})
    result = {"scorer": scorer, "keep_ratio": keep_ratio,
              "accuracy": float(history["test_accuracy"].iloc[-1]),
              "gflops": gflops(student, INPUT_SHAPE),
              "accuracy_untrained": untrained, "seconds": time.perf_counter() - started}
    write_json(out / "result.json", result)
    log.info("selector %s ρ=%.2f: accuracy %.4f, %.5f GFLOPs", scorer, keep_ratio,
             result["accuracy"], result["gflops"])
    return result


def _dense_finetune_control(settings: Settings, teacher: torch.nn.Module) -> dict:
    """The dense model trained exactly like the selector models (same loss, epochs, lr):
    separates the effect of dropping tokens from that of the extra epochs."""
    out = settings.out / "select" / "dense_finetuned_rho1.00"
    done = read_json(out / "result.json")
    if done is not None:
        return done
    train_set, test_set = data(settings)
    student = build_dense(0)
    started = time.perf_counter()
    history = train_selector(student, teacher, train_set, test_set,
                             train_config(settings, settings.select_epochs, settings.select_lr),
                             out / "train", progress=settings.progress,
                             metadata={"preset": DENSE_PRESET, "data": "digits"})
    accuracy = float(history["test_accuracy"].iloc[-1])
    result = {"scorer": "dense_finetuned", "keep_ratio": 1.0, "accuracy": accuracy,
              "gflops": gflops(student, INPUT_SHAPE), "accuracy_untrained": teacher_accuracy(
                  settings), "seconds": time.perf_counter() - started}
    write_json(out / "result.json", result)
    return result


def teacher_accuracy(settings: Settings) -> float:
    return read_json(round_dir(lth_dir(settings), 0) / "result.json")["test_accuracy"]


def stage_select(settings: Settings) -> None:
    teacher = dense_teacher(settings)
    for keep_ratio in settings.keep_ratios:
        for scorer in settings.scorers:
            _selector_run(settings, teacher, scorer, keep_ratio)
    _dense_finetune_control(settings, teacher)


def stage_both(settings: Settings) -> None:
    out = settings.out / "both"
    if read_json(out / "result.json") is not None:
        return
    k = ticket_round(settings)
    if not is_round_finished(lth_dir(settings), k):
        log.warning("the ticket (IMP round %d) is not trained yet: run --stage lth first", k)
        return
    teacher = dense_teacher(settings)
    ticket_state = torch.load(round_dir(lth_dir(settings), k) / "weights.pt", weights_only=True)
    ticket_masks = load_masks(round_dir(lth_dir(settings), k) / "mask.pt")
    seed_everything(0)
    student = create_model(SPARSE_PRESET, keep_ratio=BOTH_KEEP_RATIO, scorer="learned")
    init_student_from_teacher(student, ticket_state)
    masks = {**full_masks(student), **ticket_masks}          # selector MLPs stay dense
    apply_masks_to_weights(student, masks)
    enforcer = MaskEnforcer(masks)
    train_set, test_set = data(settings)
    started = time.perf_counter()
    history = train_selector(student, teacher, train_set, test_set,
                             train_config(settings, settings.select_epochs, settings.select_lr),
                             out / "train", progress=settings.progress,
                             after_backward=enforcer.after_backward,
                             after_optimizer_step=enforcer.after_optimizer_step,
                             metadata={"preset": SPARSE_PRESET, "data": "digits"})
    result = {"ticket_round": k, "weight_sparsity": weight_sparsity(masks),
              "measured_zero_fraction": model_weight_sparsity(student),
              "keep_ratio": BOTH_KEEP_RATIO, "scorer": "learned",
              "accuracy": float(history["test_accuracy"].iloc[-1]),
              "gflops": gflops(student, INPUT_SHAPE), "seconds": time.perf_counter() - started}
    write_json(out / "result.json", result)


# ---------------------------------------------------------------- tables


def lth_curve(settings: Settings) -> pd.DataFrame | None:
    tables = []
    for baseline in ("none", "reinit", "oneshot", "random"):
        path = baseline_dir(lth_dir(settings), baseline) / "rounds.csv"
        if path.is_file():
            tables.append(pd.read_csv(path))
    if not tables:
        return None
    curve = pd.concat(tables, ignore_index=True)
    atomic_write_text(settings.out / "lth_curve.csv", curve.to_csv(index=False))
    return curve


def keep_ratio_table(settings: Settings) -> pd.DataFrame | None:
    rows = [read_json(p) for p in sorted((settings.out / "select").glob("*/result.json"))]
    if not rows:
        return None
    dense = read_json(round_dir(lth_dir(settings), 0) / "result.json")
    if dense is not None:
        rows.append({"scorer": "dense", "keep_ratio": 1.0, "accuracy": dense["test_accuracy"],
                     "gflops": dense_gflops(), "accuracy_untrained": dense["test_accuracy"],
                     "seconds": dense["seconds"]})
    table = pd.DataFrame(rows).sort_values(["scorer", "keep_ratio"], ascending=[True, False])
    table["gflops_saving"] = 1.0 - table["gflops"] / dense_gflops()
    atomic_write_text(settings.out / "keep_ratio.csv", table.to_csv(index=False))
    return table


def both_table(settings: Settings) -> pd.DataFrame | None:
    result = read_json(settings.out / "both" / "result.json")
    if result is None:
        return None
    table = pd.DataFrame([result])
    atomic_write_text(settings.out / "both.csv", table.to_csv(index=False))
    return table


def _check(label: str, ok: bool, detail: str) -> None:
    print(f"  [{'PASS' if ok else 'FAIL'}] {label}: {detail}")


def report(settings: Settings) -> None:
    pd.set_option("display.width", 140)
    fmt = {"float_format": lambda v: f"{v:.4f}"}
    dense = read_json(round_dir(lth_dir(settings), 0) / "result.json")
    curve, select, both = lth_curve(settings), keep_ratio_table(settings), both_table(settings)
    if curve is not None:
        print("\nLottery-ticket curve (digits, IMP 25%/round, rewind to epoch 1):")
        print(curve.to_string(index=False, **fmt))
    if select is not None:
        print("\nToken selection (keep ratio × scorer):")
        print(select.to_string(index=False, **fmt))
    if both is not None:
        print("\nWeights + tokens:")
        print(both.to_string(index=False, **fmt))
    if dense is None:
        return
    dense_acc = dense["test_accuracy"]
    print(f"\nTargets (dense accuracy {dense_acc:.2%}, {dense_gflops():.5f} GFLOPs):")
    k = ticket_round(settings)
    if curve is not None:
        imp = curve[(curve["baseline"] == "imp") & (curve["round"] == k)]
        reinit = curve[(curve["baseline"] == "reinit") & (curve["round"] == k)]
        if len(imp):
            acc = float(imp["test_accuracy"].iloc[0])
            _check("ticket within 1 point of dense", acc >= dense_acc - 0.01,
                   f"round {k}, sparsity {float(imp['weight_sparsity'].iloc[0]):.2%}, "
                   f"accuracy {acc:.2%}")
            if len(reinit):
                r_acc = float(reinit["test_accuracy"].iloc[0])
                _check("ticket beats random re-init", acc > r_acc,
                       f"{acc:.2%} vs {r_acc:.2%}")
    if select is not None:
        at = select[(select["keep_ratio"].sub(BOTH_KEEP_RATIO).abs() < 1e-9)]
        for _, row in at.iterrows():
            _check(f"ρ=0.7 {row['scorer']}: >= 18% fewer GFLOPs within 1 point",
                   row["gflops_saving"] >= 0.18 and row["accuracy"] >= dense_acc - 0.01,
                   f"{row['gflops_saving']:.1%} fewer GFLOPs, accuracy {row['accuracy']:.2%}")
    if both is not None:
        row = both.iloc[0]
        _check("both within 1.5 points", row["weight_sparsity"] >= TARGET_SPARSITY
               and row["accuracy"] >= dense_acc - 0.015,
               f"sparsity {row['weight_sparsity']:.2%}, ρ=0.7, accuracy {row['accuracy']:.2%}, "
               f"{1 - row['gflops'] / dense_gflops():.1%} fewer GFLOPs")


def check_manifest(settings: Settings) -> None:
    """Refuse to mix results of different presets or recipes in one folder: the preset
    and recipe are library defaults and may change between runs."""
    manifest = {"dense_preset": get_preset_config(DENSE_PRESET).to_dict(),
                "sparse_preset": get_preset_config(SPARSE_PRESET).to_dict(),
                "recipe": dataclasses.asdict(digits_recipe()),
                "rounds": settings.rounds, "rate": settings.rate, "epochs": settings.epochs,
                "select_epochs": settings.select_epochs, "select_lr": settings.select_lr,
                "subset": settings.subset}
    path = settings.out / "manifest.json"
    saved = read_json(path)
    if saved is None:
        write_json(path, manifest)
        return
    changed = sorted(k for k in manifest if saved.get(k) != manifest[k])
    if changed:
        raise ValueError(f"{path}: this folder holds results made with other settings "
                         f"({', '.join(changed)}); use another --out")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    stage, settings = parse_args(argv)
    torch.set_num_threads(settings.threads)
    check_manifest(settings)
    stages = {"lth": [stage_lth], "select": [stage_select], "both": [stage_both],
              "extra": [stage_extra], "report": [],
              "all": [stage_lth, stage_select, stage_both, stage_extra]}[stage]
    for run_stage in stages:
        run_stage(settings)
        report(settings)
    if not stages:
        report(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

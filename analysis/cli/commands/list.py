"""`sparsespikformer list`: model presets, bundled hardware configs and sweep specs."""

from __future__ import annotations

import argparse

from sparsespikformer.simulator.errors import InputError

HELP = "list model presets, bundled hardware configs and sweep specs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=("all", "presets", "hwconfigs", "sweeps"),
                        default="all", help="what to list (default: all)")


def _presets() -> list[str]:
    try:
        from sparsespikformer.model import list_models
        return list_models()
    except ImportError as err:  # the model package needs torch
        return [f"(model presets unavailable: {err})"]


def _hwconfigs() -> list[str]:
    from sparsespikformer.hwconfigs import hwconfig_path, list_hwconfigs
    from sparsespikformer.simulator.config import load_hwconfig

    lines = []
    for name in list_hwconfigs():
        try:
            description = load_hwconfig(hwconfig_path(name)).description
        except InputError as err:
            description = f"(invalid: {err})"
        lines.append(f"{name:<22} {description}")
    return lines


def _sweeps() -> list[str]:
    from sparsespikformer.analysis.sweeps import evaluate as sweep_eval
    from sparsespikformer.analysis.sweeps.spec import count_points, load_sweep_spec
    from sparsespikformer.hwconfigs import list_sweeps

    lines = []
    for name in list_sweeps():
        try:
            spec = load_sweep_spec(name)
            bases = {base: sweep_eval.load_base(base) for base in spec.bases}
            points = count_points(
                spec, lambda b, k, bases=bases: sweep_eval.base_value(bases[b], k))
            lines.append(f"{name:<22} {spec.mode}, {points} points: {spec.description}")
        except (InputError, OSError) as err:
            lines.append(f"{name:<22} (invalid: {err})")
    return lines


def run(args: argparse.Namespace) -> int:
    sections = {"presets": ("Model presets", _presets),
                "hwconfigs": ("Hardware configs (--hw NAME)", _hwconfigs),
                "sweeps": ("Sweep specs (sparsespikformer sweep NAME --out DIR)", _sweeps)}
    chosen = sections if args.what == "all" else {args.what: sections[args.what]}
    for index, (title, lines) in enumerate(chosen.values()):
        if index:
            print()
        print(f"{title}:")
        for line in lines():
            print(f"  {line}")
    return 0

"""Simulator speed and its SCALE-Sim anchor.

Prints three tables:
1. the time to simulate a full Spikformer-8-512 ImageNet trace (135 layers) on one config;
2. (layer, config) pairs per second over the bundled pe_memory_sweep's hardware points on
   one core (configs built beforehand, as a sweep worker holds them), and the config-build
   rate with dotted overrides;
3. a few GEMMs: this simulator's cycles on `dense_systolic`, SCALE-Sim v2's closed form, and
   the `scalesim` package from PyPI (v3, CALC bandwidth) with its run time, if it can be run:
   importable here, or an interpreter that has it named by SCALESIM_PYTHON. (scalesim 3.0.0
   needs numpy < 2.4: it calls int() on 1-element arrays.)

Run: python benchmarks/simulator_speed.py [--configs N] [--repeats N] [--passes N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import pandas as pd

from sparsespikformer.simulator import gemm_trace, load_hwconfig, simulate, synthetic_trace
from sparsespikformer.simulator.mapping import scalesim_cycles
from sparsespikformer.simulator.scalesim_config import SCALESIM_CONFIG, SCALESIM_DATAFLOWS

GEMMS = [(100, 50, 30, 8, 16), (64, 64, 64, 4, 4), (33, 129, 65, 16, 8),
         (196, 512, 512, 32, 32)]  # the last is one Spikformer-8-512 Q projection
# ----------------------------------------------------------------------------- workload


def imagenet_8_512_shapes() -> pd.DataFrame:
    """Layer shapes of spikformer_8_512_imagenet: the model's own helper when torch is here."""
    try:
        from sparsespikformer.model import create_model
        from sparsespikformer.model.tracing.record import layer_shapes

        return layer_shapes(create_model("spikformer_8_512_imagenet"), (3, 224, 224))
    except ImportError:
        return hand_built_shapes(depth=8, dim=512, heads=8, image=224, classes=1000)


def hand_built_shapes(*, depth, dim, heads, image, classes, mlp_ratio=4):
    """The same rows by hand: SPS (4 conv-LIF-pool stages, RPE), blocks, head."""
    rows, side, channels = [], image, 3

    def row(layer, kind, block, tokens, in_numel, out_numel, m=0, n=0, k=0, groups=0,
            weight_numel=0, value_kind="spike", **extra):
        return {"layer": layer, "kind": kind, "block": block, "tokens_in": tokens,
                "tokens_out": extra.pop("tokens_out", tokens), "in_numel": in_numel,
                "out_numel": out_numel, "gemm_m": m, "gemm_n": n, "gemm_k": k,
                "gemm_groups": groups, "weight_numel": weight_numel,
                "in_value_kind": value_kind, **extra}

    for i, width in enumerate([dim // 8, dim // 4, dim // 2, dim]):
        s, t = ("" if i == 0 else str(i)), side * side
        rows.append(row(f"patch_embed.proj_conv{s}", "conv", -1, t, channels * t, width * t,
                        t, width, channels * 9, 1, width * channels * 9,
                        "real" if i == 0 else "spike"))
        rows.append(row(f"patch_embed.proj_lif{s}", "lif", -1, t, width * t, width * t,
                        value_kind="real"))
        rows.append(row(f"patch_embed.maxpool{s}", "pool", -1, t, width * t,
                        width * t // 4, tokens_out=t // 4))
        side, channels = side // 2, width
    t, hidden = side * side, dim * mlp_ratio
    rows.append(row("patch_embed.rpe_conv", "conv", -1, t, dim * t, dim * t, t, dim, dim * 9,
                    1, dim * dim * 9))
    rows.append(row("patch_embed.rpe_lif", "lif", -1, t, dim * t, dim * t, value_kind="real"))
    for b in range(depth):
        p = f"block.{b}"
        for name in ("q", "k", "v"):
            rows.append(row(f"{p}.attn.{name}_conv", "linear", b, t, t * dim, t * dim, t, dim,
                            dim, 1, dim * dim, "integer"))
            rows.append(row(f"{p}.attn.{name}_lif", "lif", b, t, t * dim, t * dim,
                            value_kind="real"))
        rows.append(row(f"{p}.attn.qk_matmul", "attn_qk", b, t, t * dim, heads * t * t, t, t,
                        dim // heads, heads))
        rows.append(row(f"{p}.attn.av_matmul", "attn_v", b, t, heads * t * t, t * dim, t,
                        dim // heads, t, heads, value_kind="integer"))
        rows.append(row(f"{p}.attn.attn_lif", "lif", b, t, t * dim, t * dim, value_kind="real"))
        rows.append(row(f"{p}.attn.proj_conv", "linear", b, t, t * dim, t * dim, t, dim, dim, 1,
                        dim * dim))
        rows.append(row(f"{p}.attn.proj_lif", "lif", b, t, t * dim, t * dim, value_kind="real"))
        rows.append(row(f"{p}.mlp.fc1_conv", "linear", b, t, t * dim, t * hidden, t, hidden,
                        dim, 1, dim * hidden, "integer"))
        rows.append(row(f"{p}.mlp.fc1_lif", "lif", b, t, t * hidden, t * hidden,
                        value_kind="real"))
        rows.append(row(f"{p}.mlp.fc2_conv", "linear", b, t, t * hidden, t * dim, t, dim,
                        hidden, 1, dim * hidden))
        rows.append(row(f"{p}.mlp.fc2_lif", "lif", b, t, t * dim, t * dim, value_kind="real"))
    rows.append(row("head", "head", -1, 1, dim, classes, 1, classes, dim, 1, dim * classes,
                    "rate", timesteps=1))
    return pd.DataFrame(rows)


def sweep_configs(limit: int):
    """The bundled sweep's hardware points as built configs (or a small grid without it)."""
    try:
        from sparsespikformer.analysis.sweeps.spec import expand_points, load_sweep_spec

        spec = load_sweep_spec("pe_memory_sweep")
        points = expand_points(spec)[:limit]
        overrides = [(p.base, p.overrides_dict()) for p in points]
    except ImportError:
        overrides = [("sparse_int8_45nm", {"pe_array.rows": r, "pe_array.cols": c,
                                           "weight_memory.size_kib": s})
                     for r in (8, 16, 32, 64) for c in (8, 16, 32, 64)
                     for s in (64, 128, 256, 512, 1024)][:limit]
    start = time.perf_counter()
    configs = [load_hwconfig(base, values) for base, values in overrides]
    return configs, time.perf_counter() - start


# ----------------------------------------------------------------------------- timings


def time_full_trace(trace, repeats: int) -> dict[str, float]:
    hw = load_hwconfig("sparse_int8_45nm")
    start = time.perf_counter()
    simulate(trace, hw)  # builds and caches the trace's layer table
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        simulate(trace, hw)
        warm.append(time.perf_counter() - start)
    start = time.perf_counter()
    result = simulate(trace, hw)
    _ = result.layers, result.per_layer
    with_frames = time.perf_counter() - start
    return {"first call (builds layer table) s": cold,
            "median warm call s": statistics.median(warm),
            "warm call + both DataFrames s": with_frames}


def time_pairs(trace, configs) -> tuple[float, float]:
    start = time.perf_counter()
    for hw in configs:
        simulate(trace, hw).totals["energy_pj"]
    elapsed = time.perf_counter() - start
    return len(trace.layers) * len(configs) / elapsed, elapsed


# ----------------------------------------------------------------------------- SCALE-Sim

SCALESIM_DRIVER = r'''
import contextlib, io, json, sys, tempfile, time
from pathlib import Path
from scalesim.scale_sim import scalesim
cases, config_text = json.loads(sys.stdin.read())
out = []
for m, n, k, rows, cols, df in cases:
    d = Path(tempfile.mkdtemp())
    (d / "c.cfg").write_text(config_text.format(rows=rows, cols=cols, dataflow=df))
    (d / "t.csv").write_text(f"Layer,M,N,K,\ngemm,{m},{n},{k},\n")
    (d / "l.csv").write_text("Layer name,unused,\n")
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(d / "c.cfg"),
                       topology=str(d / "t.csv"), layout=str(d / "l.csv"), input_type_gemm=True)
        sim.run_scale(top_path=str(d / "out"))
    elapsed = time.perf_counter() - start
    row = (d / "out" / "gemm_check" / "COMPUTE_REPORT.csv").read_text().splitlines()[1]
    fields = [f.strip() for f in row.split(",")]
    out.append({"cycles": int(fields[2]), "with_prefetch": int(fields[1]), "seconds": elapsed})
print(json.dumps(out))
'''


def scalesim_python() -> str | None:
    if os.environ.get("SCALESIM_PYTHON"):
        return os.environ["SCALESIM_PYTHON"]
    return sys.executable if importlib.util.find_spec("scalesim") else None


def run_scalesim(cases) -> list[dict] | str:
    python = scalesim_python()
    if python is None:
        return "scalesim not installed (pip install scalesim, or set SCALESIM_PYTHON)"
    payload = json.dumps([cases, SCALESIM_CONFIG])
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([python, "-c", SCALESIM_DRIVER], input=payload, text=True,
                              capture_output=True, cwd=scratch)
    if done.returncode != 0:
        return "scalesim failed: " + done.stderr.strip().splitlines()[-1]
    return json.loads(done.stdout)


def gemm_table() -> pd.DataFrame:
    rows, cases = [], []
    for m, n, k, r, c in GEMMS:
        for dataflow, short in SCALESIM_DATAFLOWS.items():
            hw = load_hwconfig("dense_systolic", {"pe_array.rows": r, "pe_array.cols": c,
                                                  "pe_array.dataflow": dataflow})
            trace = gemm_trace(m, n, k)
            start = time.perf_counter()
            ours = simulate(trace, hw).totals["cycles"]
            ours_s = time.perf_counter() - start
            rows.append({"gemm m,n,k": f"{m},{n},{k}", "array": f"{r}x{c}", "dataflow": short,
                         "this simulator": int(ours), "v2 closed form":
                         scalesim_cycles(m, n, k, r, c, dataflow), "ours s": ours_s})
            cases.append((m, n, k, r, c, short))
    table = pd.DataFrame(rows)
    measured = run_scalesim(cases)
    if isinstance(measured, str):
        print(f"SCALE-Sim package: {measured}")
    else:
        table["scalesim v3"] = [m["cycles"] for m in measured]
        table["v3 incl. prefetch"] = [m["with_prefetch"] for m in measured]
        table["scalesim s"] = [m["seconds"] for m in measured]
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1440, help="sweep points to time")
    parser.add_argument("--repeats", type=int, default=50, help="warm full-trace repeats")
    parser.add_argument("--passes", type=int, default=3, help="passes over the configs")
    parser.add_argument("--no-scalesim", action="store_true", help="skip the GEMM table")
    args = parser.parse_args()
    pd.set_option("display.width", 160)

    shapes = imagenet_8_512_shapes()
    trace = synthetic_trace(shapes, firing_rate=0.15, weight_density=0.1,
                            preset="spikformer_8_512_imagenet")
    print(f"== spikformer_8_512_imagenet synthetic trace: {len(trace.layers)} layers, "
          f"sparse_int8_45nm ==")
    for name, seconds in time_full_trace(trace, args.repeats).items():
        print(f"  {name:<34} {seconds * 1e3:9.3f} ms")

    configs, build_s = sweep_configs(args.configs)
    # pass 1 pays each config's first use; a sweep simulates every config on several traces.
    # This VM's speed drifts 10-30 % between runs: the best pass is the stable figure.
    passes = [time_pairs(trace, configs) for _ in range(args.passes)]
    pairs_per_s, elapsed = max(passes)
    print(f"\n== (layer, config) pairs, one core: {len(configs)} configs x "
          f"{len(trace.layers)} layers ==")
    print(f"  pairs per second, first pass       {passes[0][0]:12,.0f}")
    print(f"  pairs per second, best of {len(passes)}         {pairs_per_s:12,.0f}   "
          f"(target >= 100,000)")
    print(f"  configs simulated per second       {len(configs) / elapsed:12,.1f}")
    print(f"  configs built per second (overrides) {len(configs) / build_s:10,.1f}")

    if not args.no_scalesim:
        print("\n== GEMM cycles on dense_systolic vs SCALE-Sim ==")
        table = gemm_table()
        agree = (table["this simulator"] == table["v2 closed form"]).all()
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"  this simulator == v2 closed form on every row: {agree}")
        if "scalesim v3" in table:
            same = (table["scalesim v3"] == table["v2 closed form"]).all()
            print(f"  scalesim v3 'Total Cycles' == v2 closed form on every row: {same}")
            speedup = table["scalesim s"].sum() / table["ours s"].sum()
            print(f"  wall time: scalesim {table['scalesim s'].sum():.2f} s, "
                  f"this simulator {table['ours s'].sum() * 1e3:.2f} ms "
                  f"({speedup:,.0f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

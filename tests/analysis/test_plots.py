"""Every plot renders to a valid PNG and PDF, with a title, units and a legend."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from sweep_fakes import tiny_layer_shapes
from test_plot_data import energy_rows, rounds_table

from sparsespikformer.analysis.reporting import plot_data, plots
from sparsespikformer.simulator.synthetic import synthetic_trace


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG, after checking its signature and every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, size, chunks = 8, None, []
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        chunks.append(kind)
        offset += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    return size


def figures():
    rng = np.random.default_rng(0)
    sweep = pd.DataFrame({"energy_pj": rng.lognormal(20, 1, 60),
                          "accuracy": rng.uniform(0.9, 0.95, 60),
                          "trace": rng.choice(["dense", "pruned"], 60)})
    keep = pd.DataFrame([(s, r, 0.95 - (1 - r) * k, 3.7 * r) for s, k in
                         (("learned", 0.01), ("firing_rate", 0.03), ("random", 0.08))
                         for r in (1.0, 0.8, 0.6)],
                        columns=["scorer", "keep_ratio", "accuracy", "gflops"])
    kept = plot_data.kept_tokens_data(rng.uniform(size=(2, 16, 16)),
                                      {"s1": np.array([[0, 5, 9], [1, 2, 3]]),
                                       "s2": np.array([[5], [2]])}, 16)
    return {
        "layer_energy": plots.draw_layer_energy(
            plot_data.layer_energy_by_component(energy_rows())),
        "pareto": plots.draw_pareto(plot_data.pareto_plot_data(sweep)),
        "lth": plots.draw_lth(plot_data.lth_curve_data(pd.concat([
            rounds_table("imp", [0.9, 0.91, 0.9, 0.88]),
            rounds_table("reinit", [0.9, 0.86, 0.82, 0.8])]))),
        "keep_ratio": plots.draw_keep_ratio(plot_data.keep_ratio_data(keep)),
        "firing_rate": plots.draw_input_events(plot_data.input_events_matrix(
            synthetic_trace(tiny_layer_shapes(), firing_rate=0.3))),
        "kept_tokens": plots.draw_kept_tokens(kept),
        "bars": plots.draw_bar_summary(["a", "b"], [1e6, 3e6], column="energy_pj",
                                       title="Energy per config"),
        "grouped": plots.draw_grouped_bars(
            pd.DataFrame({"dense": [2e6, 3e6], "codesigned": [1e6, 1.5e6]}, index=["a", "b"]),
            column="energy_pj", title="Energy: dense vs codesigned"),
    }


@pytest.fixture(scope="module")
def drawn():
    return figures()


@pytest.mark.parametrize("name", ["layer_energy", "pareto", "lth", "keep_ratio",
                                  "firing_rate", "kept_tokens", "bars", "grouped"])
def test_each_plot_writes_a_valid_png_and_pdf(drawn, tmp_path, name):
    written = plots.save_figure(drawn[name], tmp_path / f"{name}.png")
    assert [p.name for p in written] == [f"{name}.png", f"{name}.pdf"]
    width, height = png_size(written[0].read_bytes())
    assert width >= 400 and height >= 200
    pdf = written[1].read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary left behind


@pytest.mark.parametrize("name", ["layer_energy", "pareto", "lth", "keep_ratio",
                                  "firing_rate", "kept_tokens", "bars", "grouped"])
def test_each_plot_has_a_title_and_labelled_axes(drawn, name):
    figure = drawn[name]
    titles = [figure._suptitle.get_text() if figure._suptitle else ""]
    titles += [axes.get_title() for axes in figure.axes]
    assert any(titles), "no title"
    if name == "kept_tokens":
        return  # image grid: column titles say what each shows
    main = figure.axes[0]
    assert main.get_xlabel() and (main.get_ylabel() or name in ("bars", "grouped"))
    has_legend = bool(figure.legends) or any(axes.get_legend() for axes in figure.axes)
    assert has_legend or name in ("firing_rate", "bars")


def test_units_are_in_the_axis_labels(drawn):
    assert "µJ" in drawn["pareto"].axes[0].get_xlabel()
    assert "%" in drawn["pareto"].axes[0].get_ylabel()
    # the unit follows the data: these layers hold 1 to 130 pJ
    assert drawn["layer_energy"].axes[0].get_xlabel() == "Energy per image (pJ)"
    assert "%" in drawn["lth"].axes[0].get_xlabel()


def test_png_bytes_are_reproducible():
    first = plots.png_bytes(figures()["pareto"])
    assert first == plots.png_bytes(figures()["pareto"])

"""Event-camera data in the layouts researchers have: per-sample frame folders (the reference
DVS pipeline) and raw event recordings, on small files written here in each format.

The binning oracle is spikingjelly's `cal_fixed_frames_number_segment_index` and
`integrate_events_segment_to_frame` written out with loops, one event at a time.
"""

from __future__ import annotations

import math
import re
import struct
import sys

import numpy as np
import pytest
import torch

from sparsespikformer.model.data import load_dataset
from sparsespikformer.model.data.event_binning import events_to_frames
from sparsespikformer.simulator.errors import DataError

# ---------------------------------------------------------------- binning


def spikingjelly_frames(t, x, y, p, frames, split_by, height, width):
    """The reference binning, as spikingjelly's loop version computes it."""
    n = t.size
    j_l, j_r = np.zeros(frames, int), np.zeros(frames, int)
    if split_by == "number":
        di = n // frames
        for i in range(frames):
            j_l[i], j_r[i] = i * di, i * di + di
    else:
        dt = (int(t[-1]) - int(t[0])) // frames
        for i in range(frames):
            t_l = dt * i + int(t[0])
            inside = [k for k in range(n) if t_l <= t[k] < t_l + dt]
            if inside:
                j_l[i], j_r[i] = inside[0], inside[-1] + 1
            else:   # spikingjelly: IndexError; here an empty frame (the last one runs on)
                j_l[i] = j_r[i] = min([k for k in range(n) if t[k] >= t_l], default=n)
    j_r[-1] = n
    out = np.zeros((frames, 2, height, width))
    for i in range(frames):
        for k in range(j_l[i], j_r[i]):
            out[i, 0 if p[k] == 0 else 1, y[k], x[k]] += 1
    return out


def _stream(n, seed, height=6, width=5):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 10_000, n))
    return t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n)


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize("n, frames", [(1000, 16), (997, 10), (50, 3), (16, 16)])
def test_binning_is_spikingjellys(split_by, n, frames):
    t, x, y, p = _stream(n, seed=n)
    ours = events_to_frames(t, x, y, p, frames, split_by, 6, 5)
    np.testing.assert_array_equal(ours, spikingjelly_frames(t, x, y, p, frames, split_by, 6, 5))
    assert ours.sum() == n                       # every event lands in exactly one frame


def test_time_bins_without_events_are_empty_frames():
    t, x, y, p = np.array([0, 1, 2, 100]), np.zeros(4, int), np.zeros(4, int), np.ones(4, int)
    frames = events_to_frames(t, x, y, p, 4, "time", 1, 1)     # ΔT = 25: bins 1, 2 empty
    assert frames[:, 1, 0, 0].tolist() == [3, 0, 0, 1]


def test_unsorted_streams_are_sorted_first():
    t, x, y, p = _stream(200, seed=1)
    order = np.random.default_rng(2).permutation(200)
    shuffled = events_to_frames(t[order], x[order], y[order], p[order], 5, "number", 6, 5)
    np.testing.assert_array_equal(shuffled, events_to_frames(t, x, y, p, 5, "number", 6, 5))


# ---------------------------------------------------------------- per-sample frame folders


def _write_frame_tree(root, counts, steps=3, side=4, split_folders=True, seed=0):
    """{split: {class: [frames, ...]}} written as spikingjelly does (savez_compressed, float64)."""
    rng = np.random.default_rng(seed)
    written = {}
    splits = ("train", "test") if split_folders else (None,)
    for split in splits:
        for name, count in counts.items():
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                frames = rng.integers(0, 4, (steps, 2, side, side)).astype(np.float64)
                np.savez_compressed(folder / f"{name}_{i:03d}.npz", frames=frames)
                written.setdefault(split, {}).setdefault(name, []).append(frames)
    return written


def test_reference_frame_folders_with_split_folders(tmp_path):
    written = _write_frame_tree(tmp_path, {"hand_clap": 2, "arm_roll": 3})
    for split in ("train", "test"):
        dataset = load_dataset(f"frames:{tmp_path}", split)
        assert dataset.info.class_names == ("arm_roll", "hand_clap")     # sorted
        assert dataset.info.input_shape == (3, 2, 4, 4) and len(dataset) == 5
        images, labels = dataset.get_batch(torch.arange(5))
        expected = written[split]["arm_roll"] + written[split]["hand_clap"]
        np.testing.assert_array_equal(images.numpy(), np.stack(expected).astype(np.float32))
        assert labels.tolist() == [0, 0, 0, 1, 1]


def test_flat_class_tree_is_split_as_the_reference_does(tmp_path):
    """cifar10dvs/train.py: split_to_train_test_set(0.9): the first ceil(0.9 n) of each class."""
    counts = {"airplane": 10, "bird": 20, "cat": 11}
    written = _write_frame_tree(tmp_path, counts, split_folders=False)[None]
    train = load_dataset(f"frames:{tmp_path}", "train")
    test = load_dataset(f"frames:{tmp_path}", "test")
    assert len(train) == 9 + 18 + 10 and len(test) == 1 + 2 + 1
    cut = {name: math.ceil(0.9 * n) for name, n in counts.items()}
    images, labels = test.get_batch(torch.arange(len(test)))
    expected = [f for name in sorted(counts) for f in written[name][cut[name]:]]
    np.testing.assert_array_equal(images.numpy(), np.stack(expected))
    assert labels.tolist() == [0, 1, 1, 2]


def test_frame_folders_resize_by_area(tmp_path):
    written = _write_frame_tree(tmp_path, {"a": 1})
    images, _ = load_dataset(f"frames:{tmp_path}", "test", img_size=2).get_batch(
        torch.arange(1))
    blocks = written["test"]["a"][0].reshape(3, 2, 2, 2, 2, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(images[0].numpy(), blocks, atol=1e-6)


@pytest.mark.parametrize("damage, message", [
    (lambda r: np.savez(r / "test" / "a" / "a_000.npz", spikes=np.zeros(2)),
     "a_000.npz: no array 'frames'"),
    (lambda r: (r / "test" / "a" / "a_000.npz").write_bytes(b"not a zip"),
     "a_000.npz: not a readable .npz file"),
    (lambda r: np.savez(r / "test" / "a" / "a_001.npz", frames=np.zeros((2, 2, 4, 4))),
     "a_001.npz: shape (2, 2, 4, 4), but the first sample a_000.npz is (3, 2, 4, 4)"),
    (lambda r: (r / "train" / "c").mkdir(), "the train and test folders name different"),
], ids=["key", "unreadable", "shape", "classes"])
def test_frame_folder_errors_name_the_file(tmp_path, damage, message):
    _write_frame_tree(tmp_path, {"a": 2, "b": 1})
    damage(tmp_path)
    with pytest.raises(DataError, match=re.escape(message)):
        dataset = load_dataset(f"frames:{tmp_path}", "test")
        dataset.get_batch(torch.arange(len(dataset)))


def test_missing_frames_are_one_line_data_errors(tmp_path):
    with pytest.raises(DataError, match=f"frames folder not found: {tmp_path / 'none'}"):
        load_dataset(f"frames:{tmp_path / 'none'}", "train")
    np.savez(tmp_path / "train.npz", frames=np.zeros((2, 1, 2, 4, 4)), labels=[0, 1])
    with pytest.raises(DataError, match=f"frames file not found: {tmp_path / 'test.npz'}"):
        load_dataset(f"frames:{tmp_path}", "test")
    (tmp_path / "train.npz").unlink()
    with pytest.raises(DataError, match="neither train.npz / test.npz"):
        load_dataset(f"frames:{tmp_path}", "test")


# ---------------------------------------------------------------- raw event files

H = W = 8
EVENTS = {   # class -> (t, x, y, p) of its one recording
    "left": (np.arange(0, 600, 10), np.arange(60) % W, (np.arange(60) * 3) % H,
             np.arange(60) % 2),
    "right": (np.arange(40) * 7, (np.arange(40) * 5) % W, np.arange(40) % H,
              (np.arange(40) // 3) % 2),
}


def _aedat2(path, t, x, y, p):
    """jAER DVS128 AEDAT 2.0: text header, then big-endian (address, timestamp) records
    with x in address bits 8-14, y in bits 1-7, polarity in bit 0 (tonic's read_dvs_128)."""
    records = np.zeros(len(t), dtype=[("address", ">u4"), ("timeStamp", ">u4")])
    records["address"] = (x << 8) | (y << 1) | p
    records["timeStamp"] = t
    path.write_bytes(b"#!AER-DAT2.0\r\n# small test file\r\n" + records.tobytes())


def _aedat31(path, t, x, y, p):
    """AEDAT 3.1 (DVS128 Gesture): one packet, a 28-byte header (event count at bytes
    16-20), then little-endian records: x bits 17-29, y bits 2-14, polarity bit 1."""
    records = np.zeros(len(t), dtype=[("address", "<u4"), ("timeStamp", "<u4")])
    records["address"] = (x << 17) | (y << 2) | (p << 1)
    records["timeStamp"] = t
    header = bytes(16) + struct.pack("<I", len(t)) + bytes(8)
    path.write_bytes(b"#!AER-DAT3.1\r\n" + header + records.tobytes())


def _nmnist(path, t, x, y, p):
    """N-MNIST .bin: 5 bytes per event: x, y, polarity bit 7 + timestamp bits 16-22, ..."""
    raw = np.zeros((len(t), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.write_bytes(raw.tobytes())


def _spikingjelly_npz(path, t, x, y, p):
    np.savez(path, t=t, x=x, y=y, p=p)


def _structured_npy(path, t, x, y, p):
    array = np.zeros(len(t), dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
    array["x"], array["y"], array["t"], array["p"] = x, y, t, p
    np.save(path, array)


def _gesture_npy(path, t, x, y, p):
    """tonic's DVS Gesture files: (N, 4) x, y, p, t in ms (tonic multiplies t by 1000)."""
    np.save(path, np.stack([x, y, p, t / 1000.0], axis=1))


WRITERS = {".aedat": _aedat2, "_v31.aedat": _aedat31, ".bin": _nmnist,
           ".npz": _spikingjelly_npz, ".npy": _structured_npy, "_gesture.npy": _gesture_npy}
NEEDS_TONIC = {".aedat", "_v31.aedat", ".bin"}


@pytest.mark.parametrize("suffix", WRITERS)
@pytest.mark.parametrize("split_by", ["number", "time"])
def test_event_recordings_are_read_and_binned(tmp_path, suffix, split_by):
    if suffix in NEEDS_TONIC:
        pytest.importorskip("tonic.io")
    for split in ("train", "test"):
        for name, events in EVENTS.items():
            (tmp_path / split / name).mkdir(parents=True)
            WRITERS[suffix](tmp_path / split / name / f"rec{suffix}", *events)
    dataset = load_dataset(f"events:{tmp_path}?frames=4&split_by={split_by}&size={H}x{W}",
                           "test")
    assert dataset.info.input_shape == (4, 2, H, W) and dataset.info.name == "events"
    images, labels = dataset.get_batch(torch.arange(2))
    for i, name in enumerate(sorted(EVENTS)):
        expected = spikingjelly_frames(*EVENTS[name], 4, split_by, H, W)
        np.testing.assert_array_equal(images[i].numpy(), expected, err_msg=name)
    assert labels.tolist() == [0, 1]


def test_event_options_and_sensor_bounds(tmp_path):
    (tmp_path / "a").mkdir()
    _spikingjelly_npz(tmp_path / "a" / "r.npz", *EVENTS["left"])
    with pytest.raises(DataError, match=r"outside the 4x4 sensor \(set size=HxW\)"):
        load_dataset(f"events:{tmp_path}?size=4x4", "train")
    default = load_dataset(f"events:{tmp_path}", "train")
    assert default.info.input_shape == (16, 2, 128, 128)        # the reference's T, DVS128
    for options, message in [("frames=0", "frames must be a positive integer"),
                             ("split_by=count", "split_by must be one of"),
                             ("bins=4", "unknown option 'bins=4'")]:
        with pytest.raises(DataError, match=message):
            load_dataset(f"events:{tmp_path}?{options}", "train")


def test_event_file_errors_name_the_file(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "r.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="r.npz: not a readable .npz file"):
        load_dataset(f"events:{tmp_path}", "train")
    np.savez(tmp_path / "a" / "r.npz", t=np.zeros(2), x=np.zeros(2))
    with pytest.raises(DataError, match="r.npz: no array\\(s\\) 'y', 'p'"):
        load_dataset(f"events:{tmp_path}", "train")
    (tmp_path / "a" / "r.npz").unlink()
    (tmp_path / "a" / "r.aedat").write_bytes(b"#!AER-DAT2.0\r\n" + bytes(3))
    monkeypatch.setitem(sys.modules, "tonic.io", None)        # the extra not installed
    with pytest.raises(DataError, match=r"r.aedat: reading this file type needs tonic: "
                                        r"pip install 'sparsespikformer\[events\]'"):
        load_dataset(f"events:{tmp_path}", "train")
    with pytest.raises(DataError, match=f"data folder not found: {tmp_path / 'none'}"):
        load_dataset(f"events:{tmp_path / 'none'}", "train")


def test_aedat4_without_the_aedat_package_says_what_to_install(tmp_path):
    pytest.importorskip("tonic.io")
    try:
        import aedat  # noqa: F401
        pytest.skip("the aedat package is installed")
    except ImportError:
        pass
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "r.aedat4").write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(DataError, match=r"r.aedat4: reading .aedat4 needs the aedat package"):
        load_dataset(f"events:{tmp_path}", "train")

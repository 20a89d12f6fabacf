"""Every loader, on small files written in the real on-disk formats."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from sparsespikformer.model.data import load_dataset, parse_data_spec
from sparsespikformer.model.data.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from sparsespikformer.model.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD
from sparsespikformer.simulator.errors import DataError

# ---------------------------------------------------------------- digits


def test_digits_shapes_values_and_split_sizes():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797            # sklearn's digits set
    assert len(test) == 360                          # ceil(0.2 * 1797)
    images, labels = train.get_batch(torch.arange(len(train)))
    assert images.shape == (1437, 1, 16, 16) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert train.info.num_classes == 10 and train.info.input_shape == (1, 16, 16)
    assert train.info.name == "digits"


def _original_index_of(images_16: torch.Tensor) -> list[int]:
    """Match each 16x16 image back to sklearn's 8x8 original (exact equality)."""
    originals = load_digits().images / 16.0                        # (1797, 8, 8)
    lookup = {}
    for index, image in enumerate(originals):
        lookup.setdefault(image.astype(np.float32).tobytes(), []).append(index)
    found = []
    for image in images_16[:, 0].numpy():
        blocks = image.reshape(8, 2, 8, 2)
        # Nearest upscaling: every 2x2 block holds one value.
        assert (blocks == blocks[:, :1, :, :1]).all()
        found.append(lookup[image[::2, ::2].astype(np.float32).tobytes()])
    return found


def test_digits_are_exact_nearest_upscaled_originals_and_splits_partition():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    targets = load_digits().target
    used = set()
    for dataset in (train, test):
        candidates = _original_index_of(dataset.samples)
        for options, label in zip(candidates, dataset.labels.tolist()):
            # Duplicated images exist in the digits set; any with the same label will do.
            match = [i for i in options if targets[i] == label and i not in used]
            assert match, "image/label pair not in sklearn's digits"
            used.add(match[0])
    assert len(used) == 1797


def test_digits_split_is_stratified_and_deterministic():
    test = load_dataset("digits", "test")
    per_class_test = np.bincount(test.labels.numpy(), minlength=10)
    per_class_all = np.bincount(load_digits().target, minlength=10)
    assert np.all(np.abs(per_class_test - 0.2 * per_class_all) <= 1)
    again = load_dataset("digits", "test")
    assert torch.equal(test.samples, again.samples) and torch.equal(test.labels, again.labels)


def test_digits_other_sizes():
    big = load_dataset("digits", "test", img_size=24)
    assert big.info.input_shape == (1, 24, 24)
    small = load_dataset("digits", "test")
    assert torch.equal(big.samples[:, :, ::3, ::3], small.samples[:, :, ::2, ::2])
    with pytest.raises(ValueError, match="multiple of 8"):
        load_dataset("digits", "test", img_size=12)


# ---------------------------------------------------------------- specs


@pytest.mark.parametrize("spec, message", [
    ("mnist:/data", "unknown data spec 'mnist:/data'"),
    ("cifar10", "cifar10 needs a folder"),
    ("cifar10:", "cifar10 needs a folder"),
    ("digits:/x", "'digits' takes no path"),
])
def test_bad_specs_name_the_spec(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_data_spec(spec)


def test_bad_split_and_size():
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("digits", "val")
    with pytest.raises(ValueError, match="img_size"):
        load_dataset("digits", "test", img_size=0)


# ---------------------------------------------------------------- CIFAR


def _cifar_arrays(count: int, seed: int, num_classes: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, num_classes, size=count)]
    return data, labels


def _dump(path, obj) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def _write_cifar10(root, per_batch: int = 3, test_count: int = 4) -> dict:
    """The official layout: bytes keys, uint8 (N, 3072) data, list labels."""
    root.mkdir(parents=True, exist_ok=True)
    written = {"train": [], "test": None}
    for i in range(1, 6):
        data, labels = _cifar_arrays(per_batch, seed=i, num_classes=10)
        _dump(root / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 5".encode(), b"labels": labels,
            b"data": data, b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)],
        })
        written["train"].append((data, labels))
    data, labels = _cifar_arrays(test_count, seed=99, num_classes=10)
    _dump(root / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": labels,
                                b"data": data, b"filenames": [b"t.png"] * test_count})
    written["test"] = (data, labels)
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                  "frog", "horse", "ship", "truck")]
    _dump(root / "batches.meta", {b"num_cases_per_batch": per_batch, b"label_names": names,
                                  b"num_vis": 3072})
    return written


def _expected_pixels(data: np.ndarray, mean, std) -> np.ndarray:
    """Independent decoding: index c*1024 + y*32 + x, scaled and normalised."""
    count = data.shape[0]
    out = np.empty((count, 3, 32, 32), dtype=np.float64)
    for c in range(3):
        for y in range(32):
            row = data[:, c * 1024 + y * 32: c * 1024 + y * 32 + 32] / 255.0
            out[:, c, y, :] = (row - mean[c]) / std[c]
    return out


def test_cifar10_decodes_official_layout(tmp_path):
    written = _write_cifar10(tmp_path / "c10")
    train = load_dataset(f"cifar10:{tmp_path / 'c10'}", "train")
    test = load_dataset(f"cifar10:{tmp_path / 'c10'}", "test")
    assert len(train) == 15 and len(test) == 4
    assert train.info.num_classes == 10 and train.info.class_names[9] == "truck"
    assert train.info.input_shape == (3, 32, 32)
    all_data = np.concatenate([d for d, _ in written["train"]])
    all_labels = [v for _, labels in written["train"] for v in labels]
    images, labels = train.get_batch(torch.arange(15))
    assert labels.tolist() == all_labels
    np.testing.assert_allclose(images.numpy(), _expected_pixels(all_data, CIFAR10_MEAN,
                                                                CIFAR10_STD), atol=1e-5)
    test_images, test_labels = test.get_batch(torch.arange(4))
    assert test_labels.tolist() == written["test"][1]
    np.testing.assert_allclose(test_images.numpy(), _expected_pixels(
        written["test"][0], CIFAR10_MEAN, CIFAR10_STD), atol=1e-5)


def _py2_pickle(obj) -> bytes:
    """Protocol-2 bytes as Python 2 + numpy 1.x wrote the official CIFAR files
    (str as BINSTRING, arrays via numpy.core.multiarray._reconstruct)."""
    def string(value: bytes) -> bytes:
        if len(value) < 256:
            return b"U" + bytes([len(value)]) + value
        return b"T" + struct.pack("<i", len(value)) + value

    def integer(value: int) -> bytes:
        return b"J" + struct.pack("<i", value)

    def encode(value) -> bytes:
        if isinstance(value, bytes):
            return string(value)
        if isinstance(value, int):
            return integer(value)
        if isinstance(value, list):
            return b"](" + b"".join(encode(v) for v in value) + b"e"
        if isinstance(value, dict):
            return b"}(" + b"".join(encode(k) + encode(v) for k, v in value.items()) + b"u"
        if isinstance(value, np.ndarray):
            assert value.dtype == np.uint8 and value.ndim == 2
            shape = integer(value.shape[0]) + integer(value.shape[1]) + b"\x86"
            dtype = (b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
                     + b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1)
                     + integer(0) + b"tb")
            return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0)
                    + b"\x85" + string(b"b") + b"\x87R(" + integer(1) + shape + dtype
                    + b"\x89" + string(value.tobytes()) + b"tb")
        raise TypeError(type(value))

    return b"\x80\x02" + encode(obj) + b"."


def test_cifar10_reads_python2_protocol2_files(tmp_path):
    root = _write_cifar10(tmp_path / "c10") and tmp_path / "c10"
    data, labels = _cifar_arrays(2, seed=7, num_classes=10)
    (root / "test_batch").write_bytes(_py2_pickle(
        {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data}))
    test = load_dataset(f"cifar10:{root}", "test")
    images, got_labels = test.get_batch(torch.arange(2))
    assert got_labels.tolist() == labels
    np.testing.assert_allclose(images.numpy(), _expected_pixels(data, CIFAR10_MEAN,
                                                                CIFAR10_STD), atol=1e-5)


def test_cifar100_fine_labels(tmp_path):
    root = tmp_path / "c100"
    root.mkdir()
    for split, count, seed in (("train", 5, 1), ("test", 3, 2)):
        data, fine = _cifar_arrays(count, seed=seed, num_classes=100)
        _dump(root / split, {b"filenames": [b"x.png"] * count, b"batch_label": b"b",
                             b"fine_labels": fine, b"coarse_labels": [0] * count,
                             b"data": data})
        if split == "test":
            expected = (data, fine)
    _dump(root / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                          b"coarse_label_names": [f"s{i}".encode() for i in range(20)]})
    test = load_dataset(f"cifar100:{root}", "test")
    assert test.info.num_classes == 100 and test.info.class_names[42] == "c42"
    images, labels = test.get_batch(torch.arange(3))
    assert labels.tolist() == expected[1]
    np.testing.assert_allclose(images.numpy(), _expected_pixels(expected[0], CIFAR100_MEAN,
                                                                CIFAR100_STD), atol=1e-5)
    assert len(load_dataset(f"cifar100:{root}", "train")) == 5


class _Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_cifar_refuses_arbitrary_classes(tmp_path):
    root = tmp_path / "c10"
    _write_cifar10(root)
    _dump(root / "test_batch", {b"data": _Exploit(), b"labels": []})
    with pytest.raises(ValueError, match=r"test_batch.*refusing to load global"):
        load_dataset(f"cifar10:{root}", "test")


def test_cifar_errors_name_the_file(tmp_path):
    root = tmp_path / "c10"
    _write_cifar10(root)
    with pytest.raises(FileNotFoundError, match="cifar10 folder not found"):
        load_dataset(f"cifar10:{tmp_path / 'nowhere'}", "train")
    (root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_dataset(f"cifar10:{root}", "train")
    full = (root / "test_batch").read_bytes()
    (root / "test_batch").write_bytes(full[: len(full) // 2])          # truncated download
    with pytest.raises(ValueError, match="test_batch: not a readable CIFAR pickle"):
        load_dataset(f"cifar10:{root}", "test")
    _dump(root / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(ValueError, match=r"test_batch: 'data' must be uint8 of shape \(N, 3072\)"):
        load_dataset(f"cifar10:{root}", "test")
    _dump(root / "test_batch", {b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(ValueError, match="test_batch: missing key 'labels'"):
        load_dataset(f"cifar10:{root}", "test")


def test_cifar_resize_and_training_flips(tmp_path):
    _write_cifar10(tmp_path / "c10")
    train = load_dataset(f"cifar10:{tmp_path / 'c10'}", "train", img_size=16)
    assert train.info.input_shape == (3, 16, 16)
    plain, _ = train.get_batch(torch.arange(15))
    assert plain.shape == (15, 3, 16, 16)
    flipped, _ = train.get_batch(torch.arange(15), torch.Generator().manual_seed(0))
    same = [torch.equal(a, b) for a, b in zip(flipped, plain)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, plain)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert any(same) and any(mirrored)


# ---------------------------------------------------------------- image folders

_RED, _BLUE = (255, 0, 0), (0, 0, 255)


def _png(path, colour, size=(8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _expected_colour(colour) -> torch.Tensor:
    return torch.tensor([(c / 255.0 - m) / s for c, m, s in
                         zip(colour, IMAGENET_MEAN, IMAGENET_STD)])


def test_imagefolder_train_val_tree(tmp_path):
    for split in ("train", "val"):
        _png(tmp_path / split / "cat" / "a.png", _RED)
        _png(tmp_path / split / "cat" / "b.jpg", _RED)
        _png(tmp_path / split / "dog" / "c.PNG", _BLUE, size=(10, 6))
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    train = load_dataset(f"imagefolder:{tmp_path}", "train", img_size=4)
    test = load_dataset(f"imagefolder:{tmp_path}", "test", img_size=4)
    assert len(train) == 3 and len(test) == 3
    assert train.info.class_names == ("cat", "dog") and train.info.input_shape == (3, 4, 4)
    images, labels = train.get_batch(torch.arange(3))
    assert images.shape == (3, 3, 4, 4) and labels.tolist() == [0, 0, 1]
    expected_red = _expected_colour(_RED).view(3, 1, 1).expand(3, 4, 4)
    expected_blue = _expected_colour(_BLUE).view(3, 1, 1).expand(3, 4, 4)
    torch.testing.assert_close(images[0], expected_red, atol=0.02, rtol=0)   # jpeg is lossy
    torch.testing.assert_close(images[2], expected_blue, atol=1e-5, rtol=0)


def test_imagefolder_flat_tree_is_test_only(tmp_path):
    _png(tmp_path / "cat" / "a.png", _RED)
    _png(tmp_path / "dog" / "b.png", _BLUE)
    test = load_dataset(f"imagefolder:{tmp_path}", "test", img_size=8)
    assert len(test) == 2 and test.info.num_classes == 2
    with pytest.raises(ValueError, match="has no train/ folder"):
        load_dataset(f"imagefolder:{tmp_path}", "train")


def test_imagefolder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}", "train")
    _png(tmp_path / "train" / "cat" / "a.png", _RED)
    with pytest.raises(FileNotFoundError, match="no val/ or test/ folder"):
        load_dataset(f"imagefolder:{tmp_path}", "test")
    _png(tmp_path / "val" / "bird" / "a.png", _RED)
    with pytest.raises(ValueError, match="name different classes"):
        load_dataset(f"imagefolder:{tmp_path}", "test")
    (tmp_path / "train" / "bird").mkdir()
    (tmp_path / "train" / "bird" / "broken.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "val" / "cat").mkdir()
    dataset = load_dataset(f"imagefolder:{tmp_path}", "train", img_size=4)
    with pytest.raises(ValueError, match="cannot decode image .*broken.png"):
        dataset.get_batch(torch.arange(len(dataset)))


def test_imagefolder_empty_tree(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .png.* images under"):
        load_dataset(f"imagefolder:{tmp_path}", "train")


# ---------------------------------------------------------------- frames


def _write_frames(root, count=4, steps=3, side=4, seed=0, **extra) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {"frames": rng.integers(0, 5, size=(count, steps, 2, side, side), dtype=np.uint8),
              "labels": rng.integers(0, 3, size=count).astype(np.int64), **extra}
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "train.npz", **arrays)
    np.savez_compressed(root / "test.npz", **arrays)
    return arrays


def test_frames_roundtrip(tmp_path):
    arrays = _write_frames(tmp_path, class_names=np.array(["a", "b", "c"]))
    for split in ("train", "test"):
        dataset = load_dataset(f"frames:{tmp_path}", split)
        assert dataset.info.input_shape == (3, 2, 4, 4)
        assert dataset.info.class_names == ("a", "b", "c")
        images, labels = dataset.get_batch(torch.arange(4))
        assert images.dtype == torch.float32 and images.shape == (4, 3, 2, 4, 4)
        np.testing.assert_array_equal(images.numpy(), arrays["frames"].astype(np.float32))
        np.testing.assert_array_equal(labels.numpy(), arrays["labels"])


def test_frames_area_resize_averages_blocks(tmp_path):
    arrays = _write_frames(tmp_path)
    dataset = load_dataset(f"frames:{tmp_path}", "test", img_size=2)
    assert dataset.info.input_shape == (3, 2, 2, 2)
    images, _ = dataset.get_batch(torch.arange(4))
    blocks = arrays["frames"].astype(np.float64).reshape(4, 3, 2, 2, 2, 2, 2).mean(axis=(4, 6))
    np.testing.assert_allclose(images.numpy(), blocks, atol=1e-6)


def test_frames_errors(tmp_path):
    with pytest.raises(DataError, match="frames folder not found"):
        load_dataset(f"frames:{tmp_path / 'none'}", "train")
    tmp_path.joinpath("train.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="train.npz: not a readable .npz"):
        load_dataset(f"frames:{tmp_path}", "train")
    with pytest.raises(DataError, match="frames file not found: .*test.npz"):
        load_dataset(f"frames:{tmp_path}", "test")
    np.savez(tmp_path / "train.npz", frames=np.zeros((2, 3, 2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="missing array 'labels'"):
        load_dataset(f"frames:{tmp_path}", "train")
    np.savez(tmp_path / "train.npz", frames=np.zeros((2, 2, 4, 4), np.uint8), labels=[0, 1])
    with pytest.raises(ValueError, match=r"must be \(N, T, C, H, W\)"):
        load_dataset(f"frames:{tmp_path}", "train")
    np.savez(tmp_path / "train.npz", frames=np.zeros((2, 3, 2, 4, 4), np.uint8), labels=[0])
    with pytest.raises(ValueError, match="'labels' must be"):
        load_dataset(f"frames:{tmp_path}", "train")


def test_frames_class_count_agrees_across_splits(tmp_path):
    frames = np.zeros((2, 1, 2, 4, 4), np.uint8)
    np.savez(tmp_path / "train.npz", frames=frames, labels=np.array([0, 1]))
    np.savez(tmp_path / "test.npz", frames=frames, labels=np.array([0, 4]))
    assert load_dataset(f"frames:{tmp_path}", "train").info.num_classes == 5
    assert load_dataset(f"frames:{tmp_path}", "test").info.num_classes == 5

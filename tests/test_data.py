"""Offline data: the Shapeset-3×2 generator, the IDX reader, digits and the train/val/test split."""

import gzip
import math

import numpy as np
import pytest
import torch

from signalprop.data import (SHAPESET_CLASSES, digits, fashion_mnist, fashion_mnist_available, idx_dataset,
                             read_idx, shapeset, split)
from signalprop.data import _shapeset

from .conftest import Z


def _write_idx(path, array: np.ndarray, code: int, compress: bool = False) -> None:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


# --- Shapeset-3×2 ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes():
    return shapeset(3000, seed=3)


def test_shapeset_shapes_ranges_and_determinism(shapes):
    x, y = shapes
    assert x.shape == (3000, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert set(y.tolist()) == set(range(9)) and len(SHAPESET_CLASSES) == 9
    again = shapeset(100, seed=3, chunk=37)  # chunking changes the draw order, so compare the same chunking
    assert torch.equal(again[0], shapeset(100, seed=3, chunk=37)[0])
    assert not torch.equal(shapeset(50, seed=4)[0], shapeset(50, seed=3)[0])


def test_shapeset_class_frequencies_and_majority_error(shapes):
    # 1 or 2 shapes with p = 1/2, types uniform: singles 1/6, mixed pairs 1/9, same-type pairs 1/18
    _, y = shapes
    n = len(y)
    expected = [1 / 6] * 3 + [1 / 9] * 3 + [1 / 18] * 3
    counts = torch.bincount(y, minlength=9).double() / n
    for p, f in zip(expected, counts.tolist()):
        assert abs(f - p) < Z * math.sqrt(p * (1 - p) / n)
    assert 1 - max(expected) == pytest.approx(5 / 6)  # the 83.3% majority-class error


def test_shapeset_grey_levels_and_inversion(shapes):
    x, _ = shapes
    flat = x.reshape(len(x), -1)
    background = torch.mode(flat, dim=1).values  # pixels no shape covers share the background level
    dark = background <= 0.45
    assert torch.all(dark | (background >= 0.55))  # background in [0, 0.45], or 1 − that when inverted
    n = len(x)
    assert abs(float(dark.double().mean()) - 0.5) < Z * math.sqrt(0.25 / n)
    # foreground levels lie on the other side of 0.5 from the background
    assert torch.all(torch.where(dark, flat.max(1).values >= 0.55, flat.min(1).values <= 0.45))


def test_shapeset_overlap_at_most_half_the_smaller_shape():
    rng = np.random.default_rng(0)
    gx, gy = _shapeset._grid(32)
    first = _shapeset._masks(_shapeset._draw_shapes(400, rng), gx, gy)
    _, second = _shapeset._second_shapes(first, gx, gy, rng)
    inter = (first & second).sum((1, 2))
    smaller = np.minimum(first.sum((1, 2)), second.sum((1, 2)))
    assert np.all(inter <= 0.5 * smaller) and np.any(inter > 0)


def test_shapeset_canonical_shapes_have_their_areas():
    # on a fine grid the canonical masks cover the unit square by 1/2 (triangle, parallelogram) and π/4
    ticks = (np.arange(600) + 0.5) / 600 - 0.5
    u, v = np.meshgrid(ticks, ticks)
    areas = _shapeset._inside(np.arange(3), u[None], v[None]).mean((1, 2))
    assert areas == pytest.approx([0.5, 0.5, math.pi / 4], abs=5e-3)


def test_shapeset_rejects_bad_n():
    with pytest.raises(ValueError, match="n must be"):
        shapeset(0)


# --- IDX ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    ints = np.array([-3, 70000, 2], dtype=np.int32)
    _write_idx(tmp_path / "a", images, 0x08, compress)
    _write_idx(tmp_path / "b", ints, 0x0C, compress)
    assert np.array_equal(read_idx(tmp_path / "a"), images)
    assert np.array_equal(read_idx(tmp_path / "b"), ints)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros(4, dtype=np.uint8), 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="needs"):
        read_idx(tmp_path / "short")


def test_idx_dataset_reads_an_mnist_directory(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.arange(6, dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 0x08, compress=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, 0x08)
    x, y = idx_dataset(tmp_path, "test")
    assert x.shape == (6, 1, 28, 28) and torch.equal(y, torch.arange(6))
    assert torch.allclose(x[:, 0] * 255, torch.from_numpy(images).float())
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        idx_dataset(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        idx_dataset(tmp_path, "validation")


@pytest.mark.skipif(not fashion_mnist_available(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist():
    x, y = fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and torch.equal(torch.bincount(y), torch.full((10,), 1000))


# --- digits and split -----------------------------------------------------------------------------------

def test_digits_and_standardized_split():
    x, y = digits()
    assert x.shape == (1797, 64) and float(x.max()) == 1.0 and int(y.max()) == 9
    s = split("digits", x, y, val=300, test=400, seed=0)
    assert s.sizes() == {"train": 1097, "val": 300, "test": 400} and s.classes == 10 and s.features == 64
    assert torch.allclose(s.x_train.mean(0), torch.zeros(64), atol=1e-5)
    std = s.x_train.std(0)  # 1 for every pixel that varies in the training part, 0 for the constant ones
    assert torch.all(((std - 1).abs() < 1e-4) | (std == 0)) and int((std == 0).sum()) <= 4
    with pytest.raises(ValueError, match="cannot hold out"):
        split("digits", x, y, val=1000, test=1000)

"""Shapeset-3×2 (Glorot & Bengio 2010): grey 32×32 images of one or two shapes, nine classes.

Each image holds 1 or 2 shapes (probability 1/2 each), every shape's type drawn uniformly from
triangle, parallelogram and ellipse; the class is the unordered set of types:

    0 tri   1 par   2 ell   3 tri+par   4 par+ell   5 tri+ell   6 2tri   7 2par   8 2ell

so a single-shape class has probability 1/6, a mixed pair 1/9 and a same-type pair 1/18, and the
majority-class error is 5/6 = 83.3%. A shape is its canonical form in the unit square, scaled by
``s_x, s_y ~ U[0.2, 0.8]`` (fractions of the image side), rotated by ``θ ~ U[0, 2π)`` and placed
uniformly where its bounding box fits. Two shapes overlap by at most half the area of the smaller one
(resampled otherwise). Each shape gets its own grey level in ``[0.55, 1]``, the background one in
``[0, 0.45]``, and with probability 1/2 the whole image is inverted (``x → 1 − x``). Edges are
anti-aliased by 3×3 supersampling.
"""

from __future__ import annotations

import numpy as np
import torch

CLASSES = ("tri", "par", "ell", "tri+par", "par+ell", "tri+ell", "2tri", "2par", "2ell")
_PAIR_CLASS = {(0, 0): 6, (1, 1): 7, (2, 2): 8, (0, 1): 3, (1, 2): 4, (0, 2): 5}
_SUPERSAMPLE = 3
_MAX_OVERLAP = 0.5


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel centres in [0, 1]², shape ``(size·3, size·3)``."""
    n = size * _SUPERSAMPLE
    ticks = (np.arange(n) + 0.5) / n
    return np.meshgrid(ticks, ticks, indexing="xy")


def _inside(kind: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Canonical shapes on ``u, v ∈ [−1/2, 1/2]``: triangle (−½,−½),(½,−½),(0,½); parallelogram
    (−½,−½),(0,−½),(½,½),(0,½); the inscribed ellipse (a circle before scaling)."""
    k = kind[:, None, None]
    ellipse = u * u + v * v <= 0.25
    in_band = np.abs(v) <= 0.5
    triangle = in_band & (np.abs(u) <= (0.5 - v) / 2)
    parallelogram = in_band & (np.abs(u - v / 2) <= 0.25)
    return np.where(k == 0, triangle, np.where(k == 1, parallelogram, ellipse))


def _draw_shapes(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    kind = rng.integers(0, 3, n)
    sx, sy = rng.uniform(0.2, 0.8, n), rng.uniform(0.2, 0.8, n)
    theta = rng.uniform(0.0, 2 * np.pi, n)
    # half-extent of the rotated bounding box of the unit square scaled by (sx, sy)
    hx = 0.5 * (np.abs(sx * np.cos(theta)) + np.abs(sy * np.sin(theta)))
    hy = 0.5 * (np.abs(sx * np.sin(theta)) + np.abs(sy * np.cos(theta)))
    hx, hy = np.minimum(hx, 0.5), np.minimum(hy, 0.5)
    cx = rng.uniform(hx, 1 - hx)
    cy = rng.uniform(hy, 1 - hy)
    return {"kind": kind, "sx": sx, "sy": sy, "theta": theta, "cx": cx, "cy": cy}


def _masks(shapes: dict[str, np.ndarray], gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Boolean sub-pixel masks ``(n, H, W)``: inverse-rotate and unscale the grid into shape space."""
    dx = gx[None] - shapes["cx"][:, None, None]
    dy = gy[None] - shapes["cy"][:, None, None]
    c, s = np.cos(shapes["theta"])[:, None, None], np.sin(shapes["theta"])[:, None, None]
    u = (c * dx + s * dy) / shapes["sx"][:, None, None]
    v = (-s * dx + c * dy) / shapes["sy"][:, None, None]
    return _inside(shapes["kind"], u, v)


def _second_shapes(first: np.ndarray, gx, gy, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """Second shapes overlapping each first one by at most half the smaller area (rejection sampling)."""
    n = len(first)
    shapes = _draw_shapes(n, rng)
    masks = _masks(shapes, gx, gy)
    todo = np.arange(n)
    while True:
        inter = (first[todo] & masks[todo]).sum((1, 2))
        smaller = np.minimum(first[todo].sum((1, 2)), masks[todo].sum((1, 2)))
        todo = todo[inter > _MAX_OVERLAP * smaller]
        if todo.size == 0:
            return shapes, masks
        redo = _draw_shapes(todo.size, rng)
        for key in shapes:
            shapes[key][todo] = redo[key]
        masks[todo] = _masks(redo, gx, gy)


def _pool(masks: np.ndarray, size: int) -> np.ndarray:
    """Sub-pixel masks to pixel coverage in [0, 1]."""
    n = masks.shape[0]
    return masks.reshape(n, size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean((2, 4))


def shapeset(n: int, *, seed: int = 0, size: int = 32, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` Shapeset-3×2 images ``(n, 1, size, size)`` (float32 in [0, 1]) and labels ``(n,)`` in 0…8.

    Deterministic in ``seed``; the images are built ``chunk`` at a time to bound memory.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    rng = np.random.default_rng(seed)
    gx, gy = _grid(size)
    images, labels = [], []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        two = rng.random(m) < 0.5
        first = _draw_shapes(m, rng)
        first_masks = _masks(first, gx, gy)
        second, second_masks = _second_shapes(first_masks, gx, gy, rng)
        background = rng.uniform(0.0, 0.45, m)[:, None, None]
        grey1 = rng.uniform(0.55, 1.0, m)[:, None, None]
        grey2 = rng.uniform(0.55, 1.0, m)[:, None, None]
        cover1 = _pool(first_masks, size)
        cover2 = _pool(second_masks, size) * two[:, None, None]
        # the second shape is painted over the first
        image = background + cover1 * (grey1 - background)
        image = image + cover2 * (grey2 - image)
        invert = rng.random(m) < 0.5
        image[invert] = 1.0 - image[invert]
        a, b = np.minimum(first["kind"], second["kind"]), np.maximum(first["kind"], second["kind"])
        pair = np.array([_PAIR_CLASS[(int(i), int(j))] for i, j in zip(a, b)])
        images.append(image.astype(np.float32))
        labels.append(np.where(two, pair, first["kind"]))
    x = torch.from_numpy(np.concatenate(images))[:, None]
    y = torch.from_numpy(np.concatenate(labels).astype(np.int64))
    return x, y

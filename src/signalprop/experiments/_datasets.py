"""The data sets the training experiments use, split and standardized, cached per process."""

from __future__ import annotations

import functools

from ..data import Split, digits, fashion_mnist, fashion_mnist_available, shapeset, split


@functools.lru_cache(maxsize=8)
def load(name: str, quick: bool, seed: int = 0) -> Split:
    """``shapeset`` (generated: quick 3000 / full 12000 examples, 1000 / 2000 of each held out),
    ``digits`` (scikit-learn, 1797 examples: 300 validation, 400 test), ``fashion-mnist`` (Debian's
    files: quick 6000 train, full 60000 minus 5000 validation; the official 10000 test images)."""
    if name == "shapeset":
        n, held = (3000, 1000) if quick else (12000, 2000)
        x, y = shapeset(n, seed=seed)
        return split("Shapeset-3×2", x, y, val=held, test=held, seed=seed)
    if name == "digits":
        x, y = digits()
        return split("digits", x, y, val=300, test=400, seed=seed)
    if name == "fashion-mnist":
        x, y = fashion_mnist("train")
        test = fashion_mnist("test")
        if quick:
            x, y, test = x[:7000], y[:7000], (test[0][:2000], test[1][:2000])
        return split("Fashion-MNIST", x, y, val=1000 if quick else 5000, test=0, seed=seed, test_set=test)
    raise ValueError(f"unknown data set {name!r}; choose from shapeset, digits, fashion-mnist")


def real_data(quick: bool) -> str:
    """Fashion-MNIST when its files are installed (full runs), otherwise scikit-learn's digits."""
    return "fashion-mnist" if not quick and fashion_mnist_available() else "digits"

"""Data sets for the experiments, all offline: the generated Shapeset-3×2, scikit-learn's digits, and
MNIST-format IDX files (Debian's Fashion-MNIST)."""

from ._digits import digits
from ._idx import FASHION_MNIST_DIR, fashion_mnist, fashion_mnist_available, idx_dataset, read_idx
from ._shapeset import CLASSES as SHAPESET_CLASSES
from ._shapeset import shapeset
from ._split import Split, split

__all__ = ["FASHION_MNIST_DIR", "SHAPESET_CLASSES", "Split", "digits", "fashion_mnist", "fashion_mnist_available",
           "idx_dataset", "read_idx", "shapeset", "split"]

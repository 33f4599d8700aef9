"""matplotlib (an optional dependency) behind two helpers: import it headless, and save a figure."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or a clear error naming the extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install 'signalprop[plot]'") from None
    return plt


def save(fig, path, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` and close it; an unwritable path is a ``ValueError`` naming it."""
    plt = pyplot()
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror}") from None
    finally:
        plt.close(fig)

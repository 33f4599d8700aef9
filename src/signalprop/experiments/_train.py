"""A plain SGD training loop for classifiers, with error rates on held-out data; training stops at the
first non-finite loss, which is recorded, not raised."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data import Split


@dataclass
class History:
    """Per evaluation point: the step, the mean training loss since the last point, and error rates (%)."""

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_error: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    diverged_at: int | None = None

    @property
    def final_test_error(self) -> float:
        return self.test_error[-1] if self.test_error else math.nan

    @property
    def final_val_error(self) -> float:
        return self.val_error[-1] if self.val_error else math.nan

    def to_dict(self) -> dict:
        return {"step": self.step, "train_loss": self.train_loss, "val_error": self.val_error,
                "test_error": self.test_error, "diverged_at": self.diverged_at}


@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> float:
    """Classification error in percent, in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    wrong = 0
    for start in range(0, len(x), batch):
        logits = model(x[start:start + batch])
        wrong += int((logits.argmax(1) != y[start:start + batch]).sum())
    model.train(was_training)
    return 100.0 * wrong / len(x)


def train(
    model: nn.Module,
    data: Split,
    *,
    steps: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    evals: int = 10,
    clip: Callable[[nn.Module], object] | None = None,
    momentum: float = 0.0,
    rmsprop: bool = False,
    on_step: Callable[[int], None] | None = None,
) -> History:
    """``steps`` SGD (or, with ``rmsprop``, RMSProp) updates on minibatches drawn with replacement of epochs (a fresh permutation each
    epoch), cross-entropy loss; ``evals`` evaluation points spread over the run (the last at ``steps``).
    ``clip(model)`` runs between backward and the update; ``on_step(k)`` is told of ``k`` more steps done
    (for a progress bar: a diverged run reports its skipped rest at once)."""
    if rmsprop:
        optimizer = torch.optim.RMSprop(model.parameters(), lr=lr, momentum=momentum)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    marks = {max(1, round(steps * (k + 1) / evals)) for k in range(evals)}
    history = History()
    n = len(data.y_train)
    order = torch.randperm(n, generator=generator)
    cursor, running, counted = 0, 0.0, 0
    model.train()
    for step in range(1, steps + 1):
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            clip(model)
        optimizer.step()
        value = float(loss.detach())  # one sync per step: the loop records the loss curve
        diverged = not math.isfinite(value)
        if on_step is not None:
            on_step(steps - step + 1 if diverged else 1)  # a diverged run skips the rest
        running, counted = running + value, counted + 1
        if step in marks or diverged:
            history.step.append(step)
            history.train_loss.append(running / counted)
            history.val_error.append(error_rate(model, data.x_val, data.y_val))
            history.test_error.append(error_rate(model, data.x_test, data.y_test))
            running, counted = 0.0, 0
        if diverged:
            history.diverged_at = step
            break
    return history

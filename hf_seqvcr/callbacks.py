"""Log per-layer matrix entropy at every evaluation, to watch representation collapse during training.

The callback needs the trainer itself (its model, eval dataloader and `log`), so, as TRL's
completion-logging callbacks do, it takes the trainer in `__init__`:

    trainer = Trainer(...)
    trainer.add_callback(EntropyCallback(trainer))
"""

from __future__ import annotations

import itertools
import statistics

from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .entropy import layerwise_entropy
from .pause import Positions


def entropy_logs(values: list[float], prefix: str = "entropy") -> dict[str, float]:
    """`{prefix}/layer_00 … /layer_NN, {prefix}/mean`: zero-padded so dashboards sort layers in order."""
    logs = {f"{prefix}/layer_{i:02d}": v for i, v in enumerate(values)}
    logs[f"{prefix}/mean"] = statistics.fmean(values)
    return logs


class EntropyCallback(TrainerCallback):
    """At each evaluation, measure `layerwise_entropy` on the first `max_batches` eval batches and log it.

    Runs on every process (under ZeRO-3/FSDP the forward needs all ranks); each logs the entropy of
    its own shard of the eval set, and the reporting integrations only write rank 0's.
    """

    def __init__(self, trainer: Trainer, *, alpha: float = 1.0, positions: Positions = "answer", max_batches: int = 4):
        if max_batches < 1:
            raise ValueError(f"max_batches must be >= 1, got {max_batches!r}.")
        self.trainer = trainer
        self.alpha = alpha
        self.positions = positions
        self.max_batches = max_batches

    def _eval_set_name(self, metrics: dict[str, float]) -> str | None:
        """With a dict of eval sets the Trainer evaluates each under `eval_<name>_…` metric keys."""
        if not isinstance(self.trainer.eval_dataset, dict):
            return None
        for name in self.trainer.eval_dataset:
            if any(key.startswith(f"eval_{name}_") for key in metrics):
                return name
        raise ValueError(
            f"EntropyCallback cannot tell which of the eval sets {list(self.trainer.eval_dataset)} produced "
            f"metrics {sorted(metrics)}; evaluate with the default metric_key_prefix='eval'."
        )

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs,
    ) -> None:
        name = self._eval_set_name(metrics or {})
        batches = itertools.islice(self.trainer.get_eval_dataloader(name), self.max_batches)
        values = layerwise_entropy(self.trainer.model, batches, alpha=self.alpha, positions=self.positions)
        self.trainer.log(entropy_logs(values, "entropy" if name is None else f"entropy/{name}"))

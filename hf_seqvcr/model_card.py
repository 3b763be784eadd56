"""The model card of a checkpoint trained with hf-seqvcr, rendered from plain values into `templates/model_card.md`.

A pure function so the trainer's `create_model_card` and tests can call it alike. The card must let
someone reproduce the run and use the model with plain transformers: every Seq-VCR hyperparameter,
the exact prompt layout (question, eos, pause tokens), the dataset revision, the final metrics, the
framework versions, and the papers to cite for the method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .citations import METHOD_CITATIONS, bibtex
from .looped import LoopLayout
from .methods import METHOD_DESCRIPTIONS, METHODS, uses_pauses, uses_seqvcr

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card.md"
LIBRARY_TAGS = ["seq-vcr", "pause-tokens"]
LOOPED_TAG = "looped-transformer"
TIMING_SUFFIXES = ("_runtime", "_per_second")  # logged with every evaluation, but not results
FRAMEWORKS = {
    "hf-seqvcr": "hf-seqvcr",
    "Transformers": "transformers",
    "Pytorch": "torch",
    "Datasets": "datasets",
    "Tokenizers": "tokenizers",
    "Accelerate": "accelerate",
    "PEFT": "peft",
}  # card name -> distribution


def final_metrics(log_history: Sequence[Mapping[str, object]]) -> dict[str, float]:
    """The last logged value of every scalar `eval_*` / `test_*` score in a Trainer's `state.log_history`."""
    metrics: dict[str, float] = {}
    for entry in log_history:
        metrics.update(
            (name, float(value))
            for name, value in entry.items()
            if name.startswith(("eval_", "test_"))
            and not name.endswith(TIMING_SUFFIXES)
            and isinstance(value, (int, float))
        )
    return metrics


def framework_versions(peft: bool = False) -> dict[str, str]:
    """Installed versions of what trains a model (peft only when it did), named as transformers' and peft's own
    cards name them: peft appends `- PEFT <version>` to a card unless that line is already there."""
    return {name: version(dist) for name, dist in FRAMEWORKS.items() if peft or dist != "peft"}


def prompt_layout(pause_tokens: Sequence[str]) -> str:
    """The training prompt in words, with the pause count and whether the pauses share one token."""
    layout = "the model's BOS if its tokenizer adds one, the question, the end-of-sequence token"
    if not pause_tokens:
        return layout + " (no pause tokens)"
    shared = len(set(pause_tokens)) == 1
    listed = " ".join(f"`{token}`" for token in pause_tokens)
    kind = f"one shared token `{pause_tokens[0]}`" if shared else f"distinct tokens {listed}"
    return f"{layout}, then {len(pause_tokens)} pause token{'s' if len(pause_tokens) > 1 else ''} ({kind})"


def render_model_card(
    *,
    method: str,
    seqvcr_hparams: Mapping[str, object],
    pause_tokens: Sequence[str],
    dataset_id: str | None,
    dataset_revision: str | None,
    eval_metrics: Mapping[str, float],
    base_model: str | None,
    model_id: str,
    dataset_config: str | None = None,
    license: str | None = None,
    versions: Mapping[str, str] | None = None,
    loop_layout: LoopLayout | None = None,
    loopreg: Mapping[str, object] | None = None,
) -> ModelCard:
    """Card for `model_id`; `pause_tokens` are the tokens appended after each question, in order.

    `seqvcr_hparams` holds every Seq-VCR setting (only rendered for the seqvcr methods, where it must
    not be empty); `base_model` is the Hub id fine-tuned, or None for a model trained from scratch;
    `dataset_id` is the Hub dataset trained on, or None for local data (the metrics then stay out of the
    YAML `model-index`, which needs a dataset, and appear in the text only); `versions` are the framework
    versions to record, by default `framework_versions()`; `loop_layout` is the layout of a looped model, and
    `loopreg` the loop regularizer's settings when it was on.
    """
    if method not in METHOD_DESCRIPTIONS:
        raise ValueError(f"method={method!r} is not one of {list(METHODS)}.")
    if uses_pauses(method) != bool(pause_tokens):
        raise ValueError(
            f"pause_tokens={list(pause_tokens)!r} does not fit method={method!r}: "
            "give the pause tokens for 'pause' and 'seqvcr_pause', and none for the other methods."
        )
    if uses_seqvcr(method) and not seqvcr_hparams:
        raise ValueError(f"method={method!r} needs seqvcr_hparams, the Seq-VCR settings used in training.")

    data = ModelCardData(
        model_name=model_id,
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        library_name="transformers",
        pipeline_tag="text-generation",
        license=license,
        tags=[*LIBRARY_TAGS, method, *([LOOPED_TAG] if loop_layout or loopreg else [])],
        eval_results=[
            EvalResult(
                task_type="text-generation",
                dataset_type=dataset_id,
                dataset_name=dataset_id,
                dataset_config=dataset_config,
                dataset_revision=dataset_revision,
                metric_type=name,
                metric_value=value,
            )
            for name, value in (eval_metrics.items() if dataset_id else ())
        ]
        or None,
    )
    return ModelCard.from_template(
        data,
        template_path=str(TEMPLATE_PATH),
        model_id=model_id,
        method=method,
        method_description=METHOD_DESCRIPTIONS[method],
        dataset_id=dataset_id,
        dataset_config=dataset_config,
        dataset_revision=dataset_revision,
        seqvcr_hparams={name: repr(value) for name, value in seqvcr_hparams.items()} if uses_seqvcr(method) else {},
        pause_tokens=list(pause_tokens),
        prompt_layout=prompt_layout(pause_tokens),
        framework_versions=dict(framework_versions() if versions is None else versions),
        eval_metrics={name: f"{value:.6g}" for name, value in eval_metrics.items()},
        loop_layout=loop_layout,
        loopreg={name: repr(value) for name, value in (loopreg or {}).items()},
        citations=bibtex([*METHOD_CITATIONS[method], *(["saunshi2025reasoning"] if loop_layout or loopreg else [])]),
    )

"""The model card of a checkpoint trained with hf-seqvcr, rendered from plain values.

A pure function so the trainer's `create_model_card` and tests can call it alike. The card must let
someone reproduce the run and use the model with plain transformers: every Seq-VCR hyperparameter,
the exact prompt layout (question, eos, pause tokens), the dataset revision and the final metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .methods import METHOD_DESCRIPTIONS, METHODS, uses_pauses, uses_seqvcr

LIBRARY_TAGS = ["seq-vcr", "pause-tokens"]
TIMING_SUFFIXES = ("_runtime", "_per_second")  # logged with every evaluation, but not results


def final_metrics(log_history: Sequence[Mapping[str, object]]) -> dict[str, float]:
    """The last logged value of every scalar `eval_*` / `test_*` score in a Trainer's `state.log_history`."""
    metrics: dict[str, float] = {}
    for entry in log_history:
        metrics.update(
            (name, float(value))
            for name, value in entry.items()
            if name.startswith(("eval_", "test_")) and not name.endswith(TIMING_SUFFIXES)
            and isinstance(value, (int, float))
        )  # fmt: skip
    return metrics


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
) -> ModelCard:
    """Card for `model_id`; `pause_tokens` are the tokens appended after each question, in order.

    `seqvcr_hparams` holds every Seq-VCR setting (only rendered for the seqvcr methods, where it must
    not be empty); `base_model` is the Hub id fine-tuned, or None for a model trained from scratch;
    `dataset_id` is the Hub dataset trained on, or None for local data (the metrics then stay out of the
    YAML `model-index`, which needs a dataset, and appear in the text only).
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
        tags=[*LIBRARY_TAGS, method],
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
    sections = [
        _summary(model_id, method, base_model, dataset_id, dataset_config, dataset_revision),
        _seqvcr_section(seqvcr_hparams) if uses_seqvcr(method) else "",
        _pause_section(pause_tokens) if uses_pauses(method) else "",
        _table("Evaluation", "Final evaluation metrics.", "metric", {k: f"{v:.6g}" for k, v in eval_metrics.items()})
        if eval_metrics
        else "",
        _usage_section(model_id, pause_tokens),
    ]
    body = "\n".join(s for s in sections if s)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _summary(model_id: str, method: str, base_model: str | None, dataset_id: str | None, config: str | None,
             revision: str | None) -> str:
    start = f"Fine-tuned from [{base_model}](/{base_model})" if base_model else "Trained from scratch"
    dataset = f"[{dataset_id}](/datasets/{dataset_id})" if dataset_id else "a local dataset (not on the Hub)"
    dataset += f", config `{config}`" if config else ""
    dataset += f", revision `{revision}`" if revision else ""
    return (
        f"# {model_id}\n\n{start} with hf-seqvcr: "
        f"{METHOD_DESCRIPTIONS[method]} (method `{method}`).\n\nTraining data: {dataset}.\n"
    )


def _table(title: str, intro: str, key: str, rows: Mapping[str, str]) -> str:
    lines = [f"## {title}\n", intro, "", f"| {key} | value |", "|---|---|"]
    lines += [f"| `{name}` | {value} |" for name, value in rows.items()]
    return "\n".join(lines) + "\n"


def _seqvcr_section(hparams: Mapping[str, object]) -> str:
    intro = ("The Seq-VCR loss (variance and covariance terms on a projection of one layer's hidden states) "
             "was added to the cross-entropy during training only; the projection is not part of this model.")
    return _table("Seq-VCR hyperparameters", intro, "setting", {k: f"`{v!r}`" for k, v in hparams.items()})


def _pause_section(pause_tokens: Sequence[str]) -> str:
    tokens = " ".join(f"`{t}`" for t in pause_tokens)
    return (
        "## Pause tokens\n\n"
        f"{len(pause_tokens)} tokens were inserted between each question and its answer: {tokens}. "
        "At inference append the same tokens, in this order, after the question and its end-of-sequence "
        "token (as token ids, see below); the model writes the answer after the last one.\n"
    )


def _usage_section(model_id: str, pause_tokens: Sequence[str]) -> str:
    """A snippet that needs only transformers, so the card stays useful without hf-seqvcr.

    It builds the prompt exactly as `PauseDataCollator.prompt_ids` does: question, eos, pauses.
    """
    pause_lines = (
        f"pause_tokens = {list(pause_tokens)!r}\n"
        "prompt_ids += tokenizer.convert_tokens_to_ids(pause_tokens)  # the pauses follow the separator\n"
        if pause_tokens
        else ""
    )
    return (
        "## How to use (plain transformers)\n\n"
        "```python\n"
        "import torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{model_id}")\n'
        f'model = AutoModelForCausalLM.from_pretrained("{model_id}")\n\n'
        'question = "..."  # formatted as in the training data\n'
        "# eos separates the question from what follows, as in training\n"
        "prompt_ids = tokenizer(question, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]\n"
        f"{pause_lines}"
        "input_ids = torch.tensor([prompt_ids])\n"
        "output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=64)\n"
        "print(tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True))\n"
        "```\n\n"
        "With hf-seqvcr installed, `model, tokenizer, collator = hf_seqvcr.load_pretrained"
        f'("{model_id}")` restores these settings from the config, and '
        "`hf_seqvcr.evaluate_exact_match(model, collator, rows)` scores rows with `question` and `answer`.\n"
    )

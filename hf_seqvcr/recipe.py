"""The pipeline every recipe runs: data → model + pauses → train → exact match on test → save (and push)."""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import asdict, dataclass, field
from importlib import import_module
from pathlib import Path

from datasets import DatasetDict

from .config import SeqVCRConfig
from .methods import METHODS, apply_method
from .model_config import ModelArguments, load_model_and_tokenizer
from .parser import SeqVCRParser
from .pause import PauseDataCollator, add_pause_tokens
from .trainer import SeqVCRTrainer

logger = logging.getLogger(__name__)

BUILDERS = ("multiplication", "arithmetic", "lis", "gsm8k")


@dataclass
class ScriptArguments:
    method: str = field(
        default="seqvcr_pause",
        metadata={"help": "vanilla | cot (train on question→cot→answer) | pause (pause tokens, no CoT) | seqvcr "
                  "(regularizer) | seqvcr_pause (both).", "choices": list(METHODS)},
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A local builder directory or a Hub dataset id (loaded with load_dataset)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config name inside the dataset."})
    build_dataset: str | None = field(
        default=None,
        metadata={"help": "Build the data instead: a builder invocation such as 'multiplication --digits 4 "
                  "--train-size 20000'. Written to <output_dir>/dataset and reused by a rerun of the same command."},
    )
    eval_split: str = field(default="validation", metadata={"help": "Split evaluated during training."})
    test_split: str = field(default="test", metadata={"help": "Split scored by exact match after training."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N evaluation rows."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Score the first N test rows."})

    def __post_init__(self) -> None:
        if (self.dataset_name is None) == (self.build_dataset is None):
            raise ValueError("Pass exactly one of `--dataset_name` (a builder directory or Hub id) or "
                             "`--build_dataset` (e.g. 'multiplication --digits 4').")  # fmt: skip
        if self.build_dataset is not None and shlex.split(self.build_dataset)[0] not in BUILDERS:
            raise ValueError(f"`--build_dataset` must start with a builder, one of {list(BUILDERS)}; "
                             f"got {self.build_dataset!r}.")  # fmt: skip
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"`--{name}` must be >= 1, got {getattr(self, name)}.")


def parse(default_config: str | Path, argv: list[str] | None = None):
    """Script, model and training arguments: `default_config` unless `--config` names another, flags override."""
    parser = SeqVCRParser((ScriptArguments, ModelArguments, SeqVCRConfig))
    try:
        return parser.parse_args_and_config(argv, default_config=default_config)
    except ValueError as error:  # a dataclass's own validation: report it like any bad flag
        parser.error(str(error))


def load_data(script_args: ScriptArguments, output_dir: str) -> DatasetDict:
    from data_builders import load_task_dataset

    if script_args.dataset_name is not None:
        return load_task_dataset(script_args.dataset_name, script_args.dataset_config)
    target = Path(output_dir) / "dataset"
    command_file = target / "BUILD_COMMAND"
    if target.exists():
        if not command_file.is_file() or command_file.read_text() != script_args.build_dataset:
            raise ValueError(f"{target} holds data from another build; pass another `--output_dir`, or "
                             f"`--dataset_name {target}` to train on it.")  # fmt: skip
    else:
        builder, *builder_args = shlex.split(script_args.build_dataset)
        status = import_module(f"data_builders.{builder}").main([*builder_args, "--output-dir", str(target)])
        if status:
            raise RuntimeError(f"`--build_dataset {script_args.build_dataset!r}` failed (exit {status}).")
        command_file.write_text(script_args.build_dataset)
    return load_task_dataset(target)


def _first(dataset, limit: int | None):
    return dataset if limit is None else dataset.select(range(min(limit, len(dataset))))


def run(script_args: ScriptArguments, model_args: ModelArguments, training_args: SeqVCRConfig) -> dict:
    """Train one method and score it; cheap checks (method, data, splits, Hub id) come before the model loads."""
    training_args, use_cot = apply_method(training_args, script_args.method)
    if training_args.push_to_hub:
        from .hub import validate_repo_id

        validate_repo_id(training_args.hub_model_id or "")
    data = load_data(script_args, training_args.output_dir)
    for split in ("train", script_args.test_split):
        if split not in data:
            raise ValueError(f"The dataset has no {split!r} split (splits: {list(data)}); pass `--test_split`.")
    eval_dataset = None
    if training_args.eval_strategy != "no":
        if script_args.eval_split not in data:
            raise ValueError(f"The dataset has no {script_args.eval_split!r} split for evaluation during "
                             f"training (splits: {list(data)}); pass `--eval_split` or `--eval_strategy no`.")  # fmt: skip
        eval_dataset = _first(data[script_args.eval_split], script_args.max_eval_samples)
    model, tokenizer = load_model_and_tokenizer(model_args)
    tokenizer, model = add_pause_tokens(
        tokenizer, model, training_args.num_pause_tokens, distinct=training_args.distinct_pause_embeddings
    )
    model.config.seqvcr_method = script_args.method
    collator = PauseDataCollator(tokenizer, num_pause_tokens=training_args.num_pause_tokens, use_cot=use_cot)
    trainer = SeqVCRTrainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=_first(data["train"], script_args.max_train_samples),
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    scores = trainer.exact_match(_first(data[script_args.test_split], script_args.max_test_samples))
    trainer.log({f"test_{k}": v for k, v in scores.items() if not isinstance(v, list)})
    results = {
        "method": script_args.method,
        "dataset": script_args.dataset_name or script_args.build_dataset,
        "model": model_args.model_name_or_path or f"scratch:{model_args.model_config}",
        "num_test_examples": min(len(data[script_args.test_split]), script_args.max_test_samples or 10**12),
        **{f"test_{k}": v for k, v in scores.items()},
        **train_result.metrics,
    }
    trainer.save_model(training_args.output_dir)  # also pushes when --push_to_hub
    if trainer.is_world_process_zero():
        results_file = Path(training_args.output_dir) / "results.json"
        results_file.write_text(json.dumps(results, indent=2) + "\n")
        print(summary(results, training_args.output_dir))
    return results


def summary(results: dict, output_dir: str) -> str:
    return (
        f"\n{results['method']}: exact match {results['test_exact_match']:.1%}, digit accuracy "
        f"{results['test_digit_accuracy']:.1%} on {results['num_test_examples']} test examples\n"
        f"model + tokenizer (with pause tokens): {output_dir}\nresults: {Path(output_dir) / 'results.json'}\n"
    )


def main(default_config: str | Path, argv: list[str] | None = None) -> dict:
    script_args, model_args, training_args = parse(default_config, argv)
    logger.info("script arguments: %s", asdict(script_args))
    return run(script_args, model_args, training_args)

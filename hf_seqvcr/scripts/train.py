"""The pipeline every recipe runs: data → model + pauses → train → exact match on test → save (and push).

Every run ends with the model card (`SeqVCRMixin.create_model_card`, with the test scores) in `--output_dir`.
`--push_to_hub` uses the Trainer's own Hub support (`--hub_model_id`, `--hub_strategy`, `--hub_private_repo`,
`--hub_revision`); the final push carries that card.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import shlex
import sys
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import transformers
from datasets import DatasetDict
from transformers import set_seed

from data_builders import BUILDERS, build_once, is_hub_dataset, load_task_dataset

from ..callbacks import EntropyCallback
from ..config import SeqVCRConfig
from ..evaluation import greedy_generation_config
from ..hub import HubPublishError, publish_errors, push_token, validate_repo_id
from ..lora import get_lora_model, lora_config
from ..methods import METHODS, apply_method, uses_cot
from ..pause import PauseDataCollator, add_pause_tokens, max_positions
from ..projection import attach_projector
from ..trainer import SeqVCRTrainer, resolve_checkpoint
from .models import ModelArguments, load_model_and_tokenizer
from .parser import SeqVCRParser

logger = logging.getLogger(__name__)

DATA_SOURCES = ("dataset_name", "build_dataset")  # a flag naming one replaces the config file's choice
MODEL_SOURCES = ("model_name_or_path", "model_config")  # likewise: a pretrained model or one from scratch
RESULTS_FILE = "results.json"  # written once training and scoring are done: it marks a finished run
TRAINERS = ("trainer", "sft")  # --trainer: SeqVCRTrainer, or SeqVCRSFTTrainer over TRL's SFTTrainer


@dataclass
class ScriptArguments:
    method: str = field(
        default="seqvcr_pause",
        metadata={
            "help": "vanilla | cot (train on question→cot→answer) | pause (pause tokens, no CoT) | seqvcr "
            "(regularizer) | seqvcr_pause (both).",
            "choices": list(METHODS),
        },
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A local builder directory or a Hub dataset id (loaded with load_dataset)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config name inside the dataset."})
    dataset_revision: str | None = field(
        default=None,
        metadata={"help": "Branch, tag or commit of a Hub `--dataset_name` (default: main); recorded in the card."},
    )
    build_dataset: str | None = field(
        default=None,
        metadata={
            "help": "Build the data instead: a builder invocation such as 'multiplication --digits 4 "
            "--train-size 20000'. Written to <output_dir>/_dataset (never pushed) and reused by a rerun of the "
            "same command."
        },
    )
    eval_split: str = field(default="validation", metadata={"help": "Split evaluated during training."})
    test_split: str = field(default="test", metadata={"help": "Split scored by exact match after training."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N evaluation rows."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Score the first N test rows."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an --output_dir that already holds a finished run (its results.json), "
            "replacing that run's model and results. Without it such a directory is refused."
        },
    )
    log_entropy: bool = field(
        default=False,
        metadata={
            "help": "Log the matrix entropy of every layer (entropy/layer_NN) at each evaluation, to the "
            "loggers of --report_to; needs --eval_strategy steps or epoch."
        },
    )
    trainer: str = field(
        default="trainer",
        metadata={
            "help": "trainer: SeqVCRTrainer (transformers' Trainer) | sft: SeqVCRSFTTrainer (TRL's SFTTrainer, "
            '`pip install "hf-seqvcr[trl]"`), with the same settings and the same question/answer layout.',
            "choices": list(TRAINERS),
        },
    )

    def __post_init__(self) -> None:
        if (self.dataset_name is None) == (self.build_dataset is None):
            raise ValueError(
                "Pass exactly one of `--dataset_name` (a builder directory or Hub id) or "
                "`--build_dataset` (e.g. 'multiplication --digits 4')."
            )
        if self.build_dataset is not None and shlex.split(self.build_dataset)[0] not in BUILDERS:
            raise ValueError(
                f"`--build_dataset` must start with a builder, one of {list(BUILDERS)}; got {self.build_dataset!r}."
            )
        if self.dataset_revision is not None and self.dataset_name is None:
            raise ValueError("`--dataset_revision` applies to a Hub `--dataset_name`; drop it with `--build_dataset`.")
        if self.trainer == "sft" and uses_cot(self.method):
            raise ValueError(
                "`--trainer sft` scores the whole completion, so it cannot train --method cot (scored on "
                "the answer after the chain of thought); use `--trainer trainer` for cot."
            )
        if self.trainer == "sft" and importlib.util.find_spec("trl") is None:
            raise ValueError('`--trainer sft` needs TRL: `pip install "hf-seqvcr[trl]"`, or use `--trainer trainer`.')
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"`--{name}` must be >= 1, got {getattr(self, name)}.")


def parse(default_config: str | Path | None, argv: list[str] | None = None):
    """Script, model and training arguments: `default_config` unless `--config` names another, flags override.

    Everything a run decides from its arguments is settled here, before any data or model work: the method's
    regularizer and pauses, the default `outputs/<task>[-<config>]-<method>` directory (a config other than the
    demo adds its name; the task is the recipe folder of `default_config`, else the data source), and the refusal
    to replace a finished run.
    """
    parser = SeqVCRParser((ScriptArguments, ModelArguments, SeqVCRConfig), alternatives=[DATA_SOURCES, MODEL_SOURCES])
    try:
        script_args, model_args, training_args = parser.parse_args_and_config(argv, default_config=default_config)
        training_args = apply_method(training_args, script_args.method, given=parser.given)
        if "output_dir" not in parser.given:
            name = Path(default_config).parent.name if default_config else _data_name(script_args)
            if parser.config_path is not None and parser.config_path.stem != "demo":
                name += f"-{parser.config_path.stem}"  # recipes/phop/iso_flop.yaml → outputs/phop-iso_flop-<method>
            training_args = dataclasses.replace(training_args, output_dir=f"outputs/{name}-{script_args.method}")
        finished = Path(training_args.output_dir) / RESULTS_FILE
        if finished.is_file() and not script_args.overwrite_output_dir:
            raise ValueError(
                f"--output_dir {training_args.output_dir} holds a finished run ({finished}); pass "
                "another --output_dir, or --overwrite_output_dir true to replace that run."
            )
        resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)  # none there: say so now
        if script_args.log_entropy and training_args.eval_strategy == "no":
            raise ValueError("--log_entropy measures at each evaluation; add --eval_strategy steps (or epoch).")
        if training_args.push_to_hub:
            validate_repo_id(training_args.hub_model_id or "", argument="--hub_model_id")
            if training_args.hub_token:
                raise ValueError(
                    "--hub_token would be saved in training_args.bin and published with the model; "
                    "drop it and set HF_TOKEN or run `hf auth login` instead."
                )
    except ValueError as error:  # a dataclass's own validation: report it like any bad flag
        parser.error(str(error))
    return script_args, model_args, training_args


def _data_name(script_args: ScriptArguments) -> str:
    """What the data is called: the builder of --build_dataset, else the last part of --dataset_name."""
    if script_args.build_dataset is not None:
        return shlex.split(script_args.build_dataset)[0]
    return Path(script_args.dataset_name).name


class DataError(Exception):
    """The data the flags name cannot be used; the message names the flag to change (reported without a traceback)."""


def load_data(script_args: ScriptArguments, output_dir: str) -> DatasetDict:
    """The splits `--dataset_name` names, or those `--build_dataset` builds once into `<output_dir>/_dataset`."""
    target = Path(output_dir) / "_dataset"  # a leading "_" keeps it out of the Trainer's Hub uploads
    try:
        if script_args.dataset_name is not None:
            return load_task_dataset(script_args.dataset_name, script_args.dataset_config, script_args.dataset_revision)
        return load_task_dataset(build_once(script_args.build_dataset, target))
    except FileExistsError as error:  # only build_once raises it: another build already fills `target`
        raise DataError(f"{error}; pass another `--output_dir`, or `--dataset_name {target}` to train on it.") from None
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise DataError(f"--{'dataset_name' if script_args.dataset_name else 'build_dataset'}: {error}") from None


def _first(dataset, limit: int | None):
    return dataset if limit is None else dataset.select(range(min(limit, len(dataset))))


def run(script_args: ScriptArguments, model_args: ModelArguments, training_args: SeqVCRConfig) -> dict:
    """Train one method and score it; cheap checks (method, Hub token, data, splits) come before the model loads.

    With `--push_to_hub` the Trainer creates the repo before training and the final push (on all ranks) carries
    the model card and results.json; if that push fails, the saved model stays in `output_dir`.
    """
    token = push_token(training_args.hub_model_id) if training_args.push_to_hub else None
    with training_args.main_process_first(desc="dataset"):  # one process builds it, the others then load it
        data = load_data(script_args, training_args.output_dir)
    for split in ("train", script_args.test_split):
        if split not in data:
            raise DataError(f"The dataset has no {split!r} split (splits: {list(data)}); pass `--test_split`.")
    eval_dataset = None
    if training_args.eval_strategy != "no":
        if script_args.eval_split not in data:
            raise DataError(
                f"The dataset has no {script_args.eval_split!r} split for evaluation during "
                f"training (splits: {list(data)}); pass `--eval_split` or `--eval_strategy no`."
            )
        eval_dataset = _first(data[script_args.eval_split], script_args.max_eval_samples)
    set_seed(training_args.seed)  # the model's initial weights are drawn here, before the Trainer seeds anything
    model, tokenizer = load_model_and_tokenizer(model_args)
    distinct = training_args.distinct_pause_embeddings
    tokenizer, model = add_pause_tokens(
        tokenizer, model, training_args.num_pause_tokens, distinct=distinct, conversational=False
    )  # the collator's question/answer prompt
    model.config.seqvcr_method = script_args.method
    model.generation_config = greedy_generation_config(tokenizer)  # saved: plain transformers answers as evaluated
    if model_args.use_peft:  # peft must see the pause rows and the projection head to train them (lora.py)
        if training_args.use_seqvcr:
            attach_projector(
                model, training_args.seqvcr_layers, training_args.seqvcr_proj_dim, training_args.seqvcr_proj_type
            )
        adapter = lora_config(
            r=model_args.lora_r,
            alpha=model_args.lora_alpha,
            dropout=model_args.lora_dropout,
            target_modules=model_args.lora_target_modules,
        )
        model = get_lora_model(
            model, tokenizer, adapter, gradient_checkpointing=bool(training_args.activation_checkpointing)
        )
    collator = PauseDataCollator(
        tokenizer,
        num_pause_tokens=training_args.num_pause_tokens,
        use_cot=uses_cot(script_args.method),
        distinct_pause_embeddings=distinct,
    )
    train_dataset = _first(data["train"], script_args.max_train_samples)
    test = _first(data[script_args.test_split], script_args.max_test_samples)
    limit = max_positions(model, tokenizer)
    splits = {"train": train_dataset, script_args.eval_split: eval_dataset, script_args.test_split: test}
    try:  # before training: a row past the model's positions would fail inside a forward, maybe hours in
        for split, rows in splits.items():
            collator.check_lengths(rows if rows is not None else [], limit, argument=f"{split} split")
    except ValueError as error:
        raise DataError(str(error)) from None
    # With --push_to_hub the Trainer creates the repo (and branch) here, before training; errors name the fix.
    with publish_errors(training_args.hub_model_id, token) if token else nullcontext():
        trainer = make_trainer(
            script_args.trainer,
            model=model,
            args=training_args,
            collator=collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            tokenizer=tokenizer,
        )
    if script_args.log_entropy:
        trainer.add_callback(EntropyCallback(trainer))
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_state()  # trainer_state.json: the logged losses and metrics of the whole run
    scores = trainer.exact_match(test)
    trainer.log({f"test_{k}": v for k, v in scores.items() if not isinstance(v, list)})
    results = {
        "method": script_args.method,
        "dataset": script_args.dataset_name or script_args.build_dataset,
        "model": model_args.model_name_or_path or f"scratch:{model_args.model_config}",
        "num_test_examples": len(test),
        **{f"test_{k}": v for k, v in scores.items()},
        **train_result.metrics,
        "failed_checkpoint_pushes": [asdict(failure) for failure in trainer.failed_pushes],
    }
    on_hub = script_args.dataset_name is not None and is_hub_dataset(script_args.dataset_name)
    card = dict(
        dataset=script_args.dataset_name if on_hub else None,
        dataset_args=script_args.dataset_config,
        dataset_revision=script_args.dataset_revision,
    )
    if not token:  # with a push, `push_to_hub` saves the model and writes the card (doing it here would push twice)
        trainer.save_model()
        trainer.create_model_card(**card)  # README.md from the logged test scores, as a push would write it
    if trainer.is_world_process_zero():  # after the local save, before the push (so it is published too)
        (Path(training_args.output_dir) / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
    pushed = None
    if token:
        with publish_errors(training_args.hub_model_id, token, local_path=training_args.output_dir):
            # saves, writes the card from the logged test scores, uploads; every rank must call it
            pushed = trainer.push_to_hub(**card)
    if trainer.is_world_process_zero():
        print(
            summary(
                results, training_args.output_dir, training_args.num_pause_tokens, pushed.repo_url if pushed else None
            )
        )
    trainer.end()  # last, on every rank: a multi-process CPU run then exits 0 (SeqVCRMixin.end)
    return results


def make_trainer(
    kind: str, *, model, args: SeqVCRConfig, collator: PauseDataCollator, train_dataset, eval_dataset, tokenizer
) -> SeqVCRTrainer:
    """`SeqVCRTrainer` with the pipeline's collator, or TRL's `SeqVCRSFTTrainer` on the same rows and settings
    (it tokenizes the question/answer rows in the same layout and builds its own collator)."""
    if kind == "trainer":
        return SeqVCRTrainer(
            model=model,
            args=args,
            data_collator=collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
        )
    from ..sft_trainer import SeqVCRSFTTrainer  # TRL is an optional extra: imported only when asked for

    return SeqVCRSFTTrainer(
        model=model,
        args=sft_arguments(args),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )


def sft_arguments(args: SeqVCRConfig):
    """The run's settings as a `SeqVCRSFTConfig`: every field both classes have, as the recipe set it (TRL's own
    defaults only for SFT's extra fields); the raw text columns are left out of the batches, as TRL does."""
    from ..sft_config import SeqVCRSFTConfig

    fields = {f.name for f in dataclasses.fields(SeqVCRSFTConfig) if f.init}
    settings = {k: v for k, v in args.to_dict().items() if k in fields}
    return SeqVCRSFTConfig(**{**settings, "remove_unused_columns": True})


def summary(results: dict, output_dir: str, num_pause_tokens: int, hub_url: str | None = None) -> str:
    saved = f"model + tokenizer (with {num_pause_tokens} pause tokens)" if num_pause_tokens else "model + tokenizer"
    return (
        f"\n{results['method']}: exact match {results['test_exact_match']:.1%}, digit accuracy "
        f"{results['test_digit_accuracy']:.1%} on {results['num_test_examples']} test examples\n"
        f"{saved}: {output_dir}\nresults: {Path(output_dir) / RESULTS_FILE}\n"
        + (f"pushed to {hub_url}\n" if hub_url else "")
        + "".join(
            f"checkpoint push failed at step {f['step']} ({f['reason']}); it is only in {f['local_checkpoint']}\n"
            for f in results["failed_checkpoint_pushes"]
        )
    )


def setup_logging(training_args: SeqVCRConfig) -> None:
    """Show this pipeline's, transformers' and datasets' log lines, as transformers' examples and TRL's recipes do:
    INFO on the main process unless `--log_level` says otherwise, `--log_level_replica` (warning) on the others."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:  # `--log_level passive` (the default) keeps transformers' verbosity: make it info
        transformers.utils.logging.set_verbosity_info()
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def main(default_config: str | Path | None, argv: list[str] | None = None) -> dict:
    """Parse, run, and turn unusable data or a Hub failure into one message and exit status 1 (no traceback)."""
    script_args, model_args, training_args = parse(default_config, argv)
    setup_logging(training_args)
    logger.info("script arguments: %s", asdict(script_args))
    try:
        return run(script_args, model_args, training_args)
    except (DataError, HubPublishError) as error:
        raise SystemExit(f"error: {error}") from None


def recipe_main(script: str | Path) -> dict:
    """A recipe script `recipes/<task>.py`: its defaults are `recipes/<task>/demo.yaml`, outputs `outputs/<task>-…`."""
    return main(Path(script).with_suffix("") / "demo.yaml")


def cli(argv: list[str] | None = None) -> None:
    """`seqvcr-train`: the same pipeline installed with the package; settings from `--config` and flags only.

    Returns nothing, so the console script exits 0 (a returned dict would be printed and exit 1)."""
    main(None, argv)

"""`SeqVCRSFTTrainer`: TRL's `SFTTrainer` with the Seq-VCR regularizer and pause tokens.

It takes exactly `SFTTrainer`'s arguments, with a `SeqVCRSFTConfig`: a TRL script changes two class names and gains
Seq-VCR (`use_seqvcr`, on by default) and pauses (`num_pause_tokens`). Rows are any of TRL's kinds (prompt/completion,
conversational, `messages`) or this project's `question`/`answer`; the pauses go where `sft_data` says, before TRL
tokenizes, and never carry loss. A `peft_config` gets the projection head and the pause rows added to what it trains.
"""

from __future__ import annotations

from trl import SFTConfig, SFTTrainer

from .config import SeqVCRArguments
from .evaluation import answer_budget, extract_answer, generate_continuations, normalize_answer
from .prompt import prompt_prefix_ids
from .sft_config import SeqVCRSFTConfig
from .sft_data import PauseLabelMask, question_answer_tokens, row_kind, scoring_prompt, with_pauses
from .trainer import SeqVCRMixin, run_pause_ids


class SeqVCRSFTTrainer(SeqVCRMixin, SFTTrainer):
    """`SFTTrainer` + Seq-VCR + pause tokens. Takes a `SeqVCRSFTConfig`."""

    def __init__(self, model, args: SeqVCRSFTConfig | None = None, *posargs, **kwargs):
        if not (isinstance(args, SFTConfig) and isinstance(args, SeqVCRArguments)):
            raise TypeError(
                f"`args` must be a `SeqVCRSFTConfig` (or an `SFTConfig` subclass that lists "
                f"`SeqVCRArguments` first), got {type(args).__name__}: SFTTrainer rebuilds any other "
                "arguments class as a plain `SFTConfig`, which would drop the Seq-VCR settings."
            )
        if isinstance(model, str):
            raise TypeError(
                f"Pass the model loaded (`AutoModelForCausalLM.from_pretrained({model!r})`): the pause "
                "tokens and the projection head are added to it before SFTTrainer wraps it."
            )
        if args.num_pause_tokens and (args.packing or args.padding_free):
            raise ValueError(
                "Pause tokens go between each prompt and its completion, which packing and padding-free "
                "batches merge; set `packing=False` and `padding_free=False`."
            )
        if args.use_seqvcr and args.seqvcr_covariance == "batch" and (args.packing or args.padding_free):
            raise ValueError(
                "Seq-VCR's covariance across the batch compares the rows at each position, which packing "
                "and padding-free batches merge into one row; set `packing=False` and "
                "`padding_free=False`, or `seqvcr_covariance='batch_positions'`."
            )
        super().__init__(model, args, *posargs, **kwargs)
        if args.num_pause_tokens:
            self.data_collator = PauseLabelMask(self.data_collator, run_pause_ids(self._seqvcr_tokenizer, args))

    def _default_collator(self, tokenizer, args):
        return None  # SFTTrainer builds its own from the rows' kind

    def _prepare_seqvcr_data(self, train_dataset, eval_dataset, tokenizer, data_collator, args):
        """Pauses into prompt/completion and conversational rows; question/answer rows tokenized in the project's
        layout (TRL takes rows with `input_ids` as they are)."""

        pause_ids = run_pause_ids(tokenizer, args)

        def convert(dataset):
            if dataset is None or isinstance(dataset, str):
                return dataset
            if isinstance(dataset, dict):
                return {name: convert(split) for name, split in dataset.items()}
            kind = row_kind(next(iter(dataset)))
            if kind == "question_answer":
                layout = {"tokenizer": tokenizer, "pause_ids": pause_ids, "prefix_ids": prompt_prefix_ids(tokenizer)}
                return dataset.map(question_answer_tokens, fn_kwargs=layout)
            if not args.num_pause_tokens:
                return dataset
            if kind == "text":
                raise ValueError(
                    "`num_pause_tokens` puts pauses between a prompt and its answer, which plain `text` "
                    "rows do not have: use prompt/completion, `messages` or question/answer rows."
                )
            pause_text = "".join(tokenizer.convert_ids_to_tokens(pause_ids))
            return dataset.map(with_pauses, fn_kwargs={"pause_text": pause_text})

        return convert(train_dataset), convert(eval_dataset)

    def _predict_answers(self, rows) -> list[tuple[str, str]] | None:
        """Greedy answers to each row's prompt as inference renders it (chat template, generation prompt, pauses)."""
        tokenizer = self._seqvcr_tokenizer
        pause_ids = run_pause_ids(tokenizer, self.args)
        prompts = [scoring_prompt(row, tokenizer, pause_ids) for row in rows]
        if not prompts or any(p is None for p in prompts):
            return None
        budget = self.args.eval_max_new_tokens or answer_budget([reference for _, reference in prompts])
        generated = generate_continuations(
            self.accelerator.unwrap_model(self.model),
            tokenizer,
            [ids for ids, _ in prompts],
            max_new_tokens=budget,
            batch_size=self.args.per_device_eval_batch_size,
        )
        return [
            (extract_answer(text, use_cot=False), normalize_answer(reference))
            for text, (_, reference) in zip(generated, prompts, strict=True)
        ]

"""`seqvcr-probe`: representational collapse against length (Barbero et al. 2024, Fig. 5) and accuracy against
length, for one or several causal LMs side by side.

For each checkpoint, prompt variant, length n and dtype it measures the distance between the final-layer
representations of the last token of a prompt with n digits and of the same prompt one digit longer
(`hf_seqvcr.oversquashing`), next to the bf16 resolution at that scale: below it, a bf16 model cannot tell the
two prompts apart. With `--dataset` (a copying or counting build) it also scores exact match on each
`test_len<L>` split. Every input is checked before any model is loaded.

    seqvcr-probe --checkpoints outputs/counting-vanilla outputs/counting-seqvcr --labels vanilla seqvcr \\
        --lengths 4:256:x2 --prefix "count ones:" --dataset outputs/counting-vanilla/_dataset --output-dir probe
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import AutoConfig, PretrainedConfig, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

from data_builders import is_hub_dataset, load_task_dataset
from data_builders.cli import add_spelling_aliases
from data_builders.length_buckets import bucket_split, bucket_splits

from ..evaluation import exact_match_by_length
from ..oversquashing import VARIANTS, PromptPair, pair_distances, prompt_pairs
from ..pause import PauseDataCollator
from ..pretrained import load_pretrained, load_tokenizer, pretrained_collator
from .diagnose import default_labels
from .output_dir import add_overwrite_argument, earlier_results
from .plotting import plot_lines

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_LENGTHS = ("4:256:x2",)
LENGTHS_HELP = "N, START:STOP (every integer), START:STOP:STEP, or START:STOP:xFACTOR (geometric)"
RESULT_NAME = "probe.json"  # the run's results; the PNGs sit beside it


class UsageError(ValueError):
    """A bad flag found before any work; ``main`` reports it like argparse does (exit status 2)."""


@dataclass
class Checkpoint:
    """One checkpoint, checked and ready: what it is called, its prompts, and the limit they must fit in."""

    source: str
    label: str
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase
    collator: PauseDataCollator
    max_positions: int | None
    pairs: dict[str, list[PromptPair]]


def parse_lengths(tokens: Sequence[str]) -> list[int]:
    """Sorted distinct lengths from ``8 16``, ``1:16``, ``8:64:8`` or ``4:256:x2`` (STOP included if reached)."""
    lengths: set[int] = set()
    for token in tokens:
        parts = token.split(":")
        try:
            if len(parts) == 1:
                lengths.add(int(parts[0]))
                continue
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = int(parts[0]), int(parts[1])
            step = parts[2] if len(parts) == 3 else "1"
            if step.startswith("x"):
                factor = float(step[1:])
                if not factor > 1 or start < 1:
                    raise UsageError(
                        f"--lengths {token}: a geometric range needs START >= 1 and FACTOR > 1, e.g. 4:256:x2"
                    )
                value = float(start)
                while round(value) <= stop:
                    lengths.add(round(value))
                    value *= factor
            else:
                if int(step) < 1:
                    raise UsageError(f"--lengths {token}: STEP must be >= 1, e.g. 8:64:8")
                lengths.update(range(start, stop + 1, int(step)))
        except UsageError:
            raise
        except ValueError:
            raise UsageError(f"--lengths {token!r} is not a length or a range; use {LENGTHS_HELP}") from None
    if not lengths:
        raise UsageError(f"--lengths {' '.join(tokens)} contains no length (is STOP below START?); use {LENGTHS_HELP}")
    if min(lengths) < 1:
        raise UsageError(
            f"--lengths: {min(lengths)} is not a positive length (the digits of the shorter prompt); pass integers "
            ">= 1, e.g. --lengths 8 16 32 or 4:256:x2"
        )
    return sorted(lengths)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="seqvcr-probe",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoints",
        nargs="+",
        required=True,
        metavar="DIR_OR_HUB_ID",
        help="causal LMs (save_pretrained directories or Hub ids), drawn side by side",
    )
    parser.add_argument(
        "--labels", nargs="+", metavar="NAME", help="legend names, one per checkpoint (default: directory names)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="prompt pairs: 'ones' (1…1 vs one more 1, Thm 4.2), 'commas' (a comma after every "
        "--separator-every digits), 'random' (random digits ending in 1 vs 11); default all",
    )
    parser.add_argument(
        "--lengths",
        nargs="+",
        default=list(DEFAULT_LENGTHS),
        metavar="N|RANGE",
        help=f"digits in the shorter prompt: {LENGTHS_HELP}; default {' '.join(DEFAULT_LENGTHS)}",
    )
    parser.add_argument(
        "--prefix", default="", help="text before the digits, e.g. 'count ones:' for our counting models (default none)"
    )
    parser.add_argument(
        "--answer-position",
        action="store_true",
        help="measure at the token a checkpoint answers from: append its <eos> and pause tokens to "
        "both prompts, as its training prompts end (default: at the last digit, the paper's pair)",
    )
    parser.add_argument("--separator-every", type=int, default=3, help="digits between commas (default 3, the paper's)")
    parser.add_argument("--seed", type=int, default=0, help="draws the digits of the 'random' variant")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=list(DTYPES),
        default=["float32", "bfloat16"],
        help="precisions the model computes in (a cast copy each; default float32 bfloat16)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="DIR_OR_HUB_ID",
        help="also score exact match per length on its test_len<L> splits (a copying or counting "
        "build, e.g. a recipe's <output_dir>/_dataset)",
    )
    parser.add_argument("--dataset-config", default=None, help="configuration name inside --dataset")
    parser.add_argument(
        "--num-examples", type=int, default=None, help="score the first N rows of each test_len<L> split (default all)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="generation batch for --dataset")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output-dir", required=True, type=Path, help="where probe.json and the PNGs go")
    add_overwrite_argument(parser)
    add_spelling_aliases(parser)
    args = parser.parse_args(argv)
    try:
        args.lengths = parse_lengths(args.lengths)
    except UsageError as error:
        parser.error(str(error))
    if args.labels is not None and len(set(args.labels)) != len(args.checkpoints):
        parser.error(
            f"--labels needs one distinct name per checkpoint: got {args.labels} "
            f"for {len(args.checkpoints)} checkpoints"
        )
    if args.separator_every < 1:
        parser.error(f"--separator-every must be >= 1, got {args.separator_every}; the paper used 3")
    if args.num_examples is not None and args.num_examples < 1:
        parser.error(f"--num-examples must be >= 1, got {args.num_examples}; drop it to score every row")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.dataset_config is not None and args.dataset is None:
        parser.error("--dataset-config names a configuration of --dataset; pass --dataset too, or drop it")
    args.variants = list(dict.fromkeys(args.variants))
    args.dtypes = list(dict.fromkeys(args.dtypes))
    return parser, args


# --- checks, before any weights are loaded ---------------------------------------------------------------


def max_positions(config: PretrainedConfig) -> int | None:
    """The longest input the model's position embeddings allow (None when the config sets no limit)."""
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_config(source: str) -> PretrainedConfig:
    """The config of a causal LM that AutoModelForCausalLM can load, else a UsageError that says why."""
    path = Path(source).expanduser()
    if path.exists() or not is_hub_dataset(source):  # a path, not a Hub id
        if not path.is_dir():
            what = "is a file" if path.exists() else "does not exist"
            raise UsageError(f"--checkpoints {source} {what}; pass a save_pretrained directory or a Hub id")
        if not (path / "config.json").is_file():
            raise UsageError(
                f"--checkpoints {source} has no config.json, so it is not a causal LM checkpoint; pass "
                "a directory written by save_pretrained (e.g. a recipe's --output_dir)"
            )
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError, KeyError) as error:
        raise UsageError(
            f"--checkpoints {source}: its config cannot be loaded ({error}); pass a causal LM directory or Hub id"
        ) from None
    registered = type(config) in MODEL_FOR_CAUSAL_LM_MAPPING  # with the looped models hf_seqvcr.looped registers
    causal = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)].__name__ if registered else None
    if causal is None:
        raise UsageError(
            f"--checkpoints {source} is a {config.model_type!r} model, which AutoModelForCausalLM "
            "cannot load; pass a decoder-only causal LM (GPT-2, LLaMA, …)"
        )
    saved = config.architectures or []
    if saved and not any(name == causal or name.endswith(("ForCausalLM", "LMHeadModel")) for name in saved):
        raise UsageError(
            f"--checkpoints {source} was saved as {', '.join(saved)}, not as a causal LM "
            f"({causal}): AutoModelForCausalLM would add an untrained head; pass a causal LM "
            "checkpoint"
        )
    return config


def unknown_symbol(tokenizer: PreTrainedTokenizerBase, text: str) -> str | None:
    """The first character of ``text`` the tokenizer maps to its unknown token, if any."""
    for symbol in sorted(set(text)):
        if (
            tokenizer.unk_token_id is not None
            and tokenizer.unk_token_id in tokenizer(symbol, add_special_tokens=False)["input_ids"]
        ):
            return symbol
    return None


def prepare(source: str, label: str, args: argparse.Namespace) -> Checkpoint:
    """Config, tokenizer and prompt pairs of one checkpoint, each checked; a UsageError names the flag and fix."""
    config = load_config(source)
    try:
        tokenizer = load_tokenizer(source)
        collator = pretrained_collator(tokenizer, config)
    except (OSError, ValueError) as error:
        raise UsageError(
            f"--checkpoints {source}: its tokenizer cannot build prompts ({error}); save the "
            "tokenizer with the model (tokenizer.save_pretrained)"
        ) from None
    symbol = unknown_symbol(tokenizer, args.prefix)
    if symbol is not None:
        raise UsageError(
            f"--prefix {args.prefix!r}: the tokenizer of {source} has no token for {symbol!r}; "
            "drop that character from --prefix"
        )
    limit = max_positions(config)
    tail = collator.prompt_ids("") if args.answer_position else []
    pairs = {}
    for variant in args.variants:
        try:
            built = prompt_pairs(
                tokenizer,
                args.lengths,
                variant=variant,
                prefix=args.prefix,
                max_positions=None,
                separator_every=args.separator_every,
                seed=args.seed,
            )
        except ValueError as error:  # the only one left: a symbol that is not one token
            raise UsageError(
                f"--checkpoints {source} cannot probe --variants {variant}: {error}; or drop {variant} from --variants"
            ) from None
        pairs[variant] = [PromptPair(p.length, p.first + tail, p.second + tail) for p in built]
        longest = max(pairs[variant], key=lambda pair: len(pair.second))
        if limit is not None and len(longest.second) > limit:
            fits = [p.length for p in pairs[variant] if len(p.second) <= limit]
            raise UsageError(
                f"--lengths {longest.length}: the {variant!r} prompt of {longest.length} digits is "
                f"{len(longest.second)} tokens, beyond the {limit} positions of {source} (its config's "
                "max_position_embeddings / n_positions); pass --lengths "
                + (f"up to {max(fits)}" if fits else "shorter lengths")
                + " or a shorter --prefix"
            )
    return Checkpoint(source, label, config, tokenizer, collator, limit, pairs)


def load_buckets(args: argparse.Namespace) -> dict[int, Dataset]:
    """``{length: rows}`` from the dataset's test_len<L> splits (the first --num-examples of each)."""
    try:
        buckets = bucket_splits(load_task_dataset(args.dataset, args.dataset_config))
    except (OSError, ValueError) as error:
        raise UsageError(f"--dataset {args.dataset}: {error}") from None
    if args.num_examples is not None:
        buckets = {n: rows.select(range(min(args.num_examples, len(rows)))) for n, rows in buckets.items()}
    empty = [bucket_split(n) for n, rows in buckets.items() if len(rows) == 0]
    if empty:
        raise UsageError(
            f"--dataset {args.dataset}: split(s) {', '.join(empty)} have no rows; rebuild with --bucket-size >= 1"
        )
    return buckets


def check_buckets(checkpoint: Checkpoint, buckets: Mapping[int, Dataset], dataset: str) -> None:
    """Every bucket's question and answer must be writable with the checkpoint's tokenizer and fit its positions."""
    for length, rows in buckets.items():
        text = "".join(rows["question"]) + "".join(rows["answer"])
        symbol = unknown_symbol(checkpoint.tokenizer, text)
        if symbol is not None:
            raise UsageError(
                f"--dataset {dataset}: the tokenizer of {checkpoint.source} has no token for {symbol!r} "
                f"(in {bucket_split(length)}); probe it without --dataset, or use a checkpoint "
                "trained on that task"
            )
        if checkpoint.max_positions is None:
            continue
        collator = checkpoint.collator
        tokens = max(len(collator.prompt_ids(row["question"])) + len(collator.target_ids(row)) for row in rows)
        if tokens > checkpoint.max_positions:
            raise UsageError(
                f"--dataset {dataset}: {bucket_split(length)} needs {tokens} tokens with its answer, "
                f"beyond the {checkpoint.max_positions} positions of {checkpoint.source}; rebuild "
                "it with shorter --test-lengths, or drop --dataset"
            )


# --- the work --------------------------------------------------------------------------------------------


def probe(
    checkpoint: Checkpoint, args: argparse.Namespace, buckets: Mapping[int, Dataset] | None, progress: tqdm
) -> tuple[list[dict], dict[int, float] | None]:
    """Distances per variant, length and dtype (each dtype a cast copy of the fp32 weights), and exact match per
    bucket with the model as loaded in fp32."""
    model = load_pretrained(checkpoint.source, dtype=torch.float32)[0].to(args.device)
    distances = []
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        runner = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        for variant, pairs in checkpoint.pairs.items():
            for pair in pairs:
                progress.set_postfix_str(f"{checkpoint.label} {variant} n={pair.length} {dtype_name}")
                (point,) = pair_distances(runner, [pair], dtypes=[dtype])
                distances.append(
                    {"label": checkpoint.label, "variant": variant, "tokens": len(pair.first), **asdict(point)}
                )
                progress.update()
        del runner
    accuracy = None
    if buckets is not None:
        accuracy = {}
        for length, rows in buckets.items():
            progress.set_postfix_str(f"{checkpoint.label} exact match n={length}")
            accuracy |= exact_match_by_length(model, checkpoint.collator, {length: rows}, batch_size=args.batch_size)
            progress.update()
    return distances, accuracy


def loglog_slope(lengths: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of log(value) against log(length) over the positive values (-1: decays like 1/n);
    None with fewer than two distinct lengths left."""
    points = [(math.log(n), math.log(v)) for n, v in zip(lengths, values, strict=True) if v > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)


def decay_summary(distances: Sequence[Mapping]) -> list[dict]:
    """Per (label, variant, dtype): the log-log slope of the L∞ distance, the first length whose distance is below
    the bf16 resolution (a bf16 model could not tell the pair apart), and the first length at exactly 0."""
    groups: dict[tuple[str, str, str], list[Mapping]] = {}
    for point in distances:
        groups.setdefault((point["label"], point["variant"], point["dtype"]), []).append(point)
    summary = []
    for (label, variant, dtype), points in groups.items():
        points = sorted(points, key=lambda point: point["length"])
        below = [p["length"] for p in points if p["linf"] < p["bf16_resolution"]]
        zero = [p["length"] for p in points if p["linf"] == 0]
        summary.append(
            {
                "label": label,
                "variant": variant,
                "dtype": dtype,
                "loglog_slope": loglog_slope([p["length"] for p in points], [p["linf"] for p in points]),
                "first_below_bf16_resolution": below[0] if below else None,
                "first_zero": zero[0] if zero else None,
            }
        )
    return summary


def plot_distances(distances: Sequence[Mapping], labels: Sequence[str], variant: str, path: Path) -> None:
    """L∞ distance against length on log-log axes: a colour per checkpoint, solid fp32, dotted others, and the
    bf16 resolution at each point's scale dashed in the checkpoint's colour (Fig. 5's threshold)."""
    series, styles, x = {}, {}, None
    for index, label in enumerate(labels):
        points = [p for p in distances if p["label"] == label and p["variant"] == variant]
        for dtype in dict.fromkeys(p["dtype"] for p in points):
            line = sorted((p for p in points if p["dtype"] == dtype), key=lambda p: p["length"])
            x = [p["length"] for p in line]
            zeros = sum(p["linf"] == 0 for p in line)
            name = f"{label} {dtype}" + (f" ({zeros} zero, not drawn)" if zeros else "")
            series[name] = [p["linf"] for p in line]
            styles[name] = {
                "color": f"C{index}",
                "linestyle": "-" if dtype == "float32" else ":",
                "marker": "o" if dtype == "float32" else "s",
            }
        reference = sorted((p for p in points if p["dtype"] == points[0]["dtype"]), key=lambda p: p["length"])
        name = f"{label} bf16 resolution"
        series[name] = [p["bf16_resolution"] for p in reference]
        styles[name] = {"color": f"C{index}", "linestyle": "--", "marker": None, "alpha": 0.6}
    plot_lines(
        series,
        x=x,
        log_x=True,
        log_y=True,
        styles=styles,
        path=path,
        xlabel="n (digits in the shorter prompt)",
        ylabel="L∞ distance of the last-token representations",
        title=f"Representational collapse: {variant!r} prompts, n vs n + 1 digits",
    )


def main(argv: list[str] | None = None) -> None:
    """The console script: returns nothing, so its exit status is 0 (probe.json holds the results)."""
    parser, args = parse_args(argv)
    labels = args.labels or default_labels([Path(source) for source in args.checkpoints])
    if (earlier := earlier_results(args.output_dir, RESULT_NAME, args.overwrite)) is not None:
        parser.error(earlier)
    try:
        checkpoints = [prepare(source, label, args) for source, label in zip(args.checkpoints, labels, strict=True)]
        buckets = load_buckets(args) if args.dataset is not None else None
        for checkpoint in checkpoints if buckets is not None else []:
            check_buckets(checkpoint, buckets, args.dataset)
        args.output_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(args.output_dir, os.W_OK):
            raise UsageError(f"--output-dir {args.output_dir} is not writable; pass another directory")
    except UsageError as error:
        parser.error(str(error))

    steps = sum(len(args.dtypes) * sum(map(len, c.pairs.values())) + len(buckets or {}) for c in checkpoints)
    distances, results = [], []
    with tqdm(total=steps, desc="probe", unit="step") as progress:
        for checkpoint in checkpoints:
            points, accuracy = probe(checkpoint, args, buckets, progress)
            distances += points
            results.append(
                {
                    "label": checkpoint.label,
                    "checkpoint": checkpoint.source,
                    "max_positions": checkpoint.max_positions,
                    "num_pause_tokens": checkpoint.collator.num_pause_tokens,
                    "accuracy": None
                    if accuracy is None
                    else [
                        {"length": n, "exact_match": score, "examples": len(buckets[n])}
                        for n, score in accuracy.items()
                    ],
                }
            )
    report = {
        "variants": args.variants,
        "lengths": args.lengths,
        "dtypes": args.dtypes,
        "prefix": args.prefix,
        "answer_position": args.answer_position,
        "separator_every": args.separator_every,
        "seed": args.seed,
        "dataset": args.dataset,
        "dataset_config": args.dataset_config,
        "checkpoints": results,
        "decay": decay_summary(distances),
        "distances": distances,
    }
    (args.output_dir / RESULT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    for variant in args.variants:
        plot_distances(distances, labels, variant, args.output_dir / f"distance_{variant}.png")
    if buckets is not None:
        plot_lines(
            {r["label"]: [a["exact_match"] for a in r["accuracy"]] for r in results},
            x=list(buckets),
            log_x=True,
            ylim=(-0.02, 1.02),
            xlabel="length (items)",
            ylabel="exact match",
            title=f"Accuracy against length ({args.dataset})",
            path=args.output_dir / "accuracy.png",
        )
    print(summary_table(report))
    print(f"wrote {args.output_dir / RESULT_NAME} and the plots in {args.output_dir}")


def summary_table(report: Mapping) -> str:
    """Slope and collapse length per checkpoint, variant and dtype; accuracy per length when scored."""
    lines = [
        "| checkpoint | variant | dtype | log-log slope | first n below bf16 res. | first n at 0 |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["decay"]:
        slope = "—" if row["loglog_slope"] is None else f"{row['loglog_slope']:.2f}"
        lines.append(
            f"| {row['label']} | {row['variant']} | {row['dtype']} | {slope} | "
            f"{row['first_below_bf16_resolution'] or '—'} | {row['first_zero'] or '—'} |"
        )
    for result in report["checkpoints"]:
        if result["accuracy"] is not None:
            scores = ", ".join(f"{a['length']}: {a['exact_match']:.0%}" for a in result["accuracy"])
            lines.append(f"\n{result['label']} exact match by length: {scores}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""`seqvcr-diagnose`: compare checkpoints by per-layer matrix entropy (and per-position accuracy).

Reproduces the paper's diagnostic figures from saved checkpoints: entropy per layer, one line per
checkpoint (Fig. 2/4: vanilla collapses in the middle layers, CoT and Seq-VCR stay high), and with
`--accuracy` the accuracy per answer position (Fig. 6: which digits the model gets wrong).

    seqvcr-diagnose --checkpoints runs/vanilla runs/seqvcr --dataset data/mult_5x5 --output-dir diag
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from data_builders import load_task_dataset
from data_builders.cli import add_spelling_aliases

from ..entropy import layerwise_entropy
from ..evaluation import evaluate_exact_match
from ..pause import PauseDataCollator
from ..pretrained import load_pretrained
from .output_dir import add_overwrite_argument, earlier_results
from .plotting import plot_lines

RESULT_NAME = "entropy.json"  # the run's results; the PNGs sit beside it


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="seqvcr-diagnose", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoints",
        nargs="+",
        required=True,
        type=Path,
        metavar="DIR",
        help="save_pretrained directories (model + tokenizer), one line per checkpoint in the plots",
    )
    parser.add_argument(
        "--labels", nargs="+", metavar="NAME", help="legend names, one per checkpoint (default: directory names)"
    )
    parser.add_argument("--dataset", required=True, help="dataset directory or Hub id with question/answer columns")
    parser.add_argument("--dataset-config", default=None, help="dataset configuration name, e.g. 5x5")
    parser.add_argument("--split", default="test")
    parser.add_argument("--num-examples", type=int, default=256, help="first N examples of the split")
    parser.add_argument(
        "--num-pause-tokens",
        type=int,
        default=None,
        help="pauses between question and answer (default: the checkpoint config's, else 0)",
    )
    parser.add_argument("--alpha", type=float, default=1.0, help="order of the matrix entropy (1 = Shannon)")
    parser.add_argument(
        "--positions", choices=("answer", "all"), default="answer", help="tokens whose representations are measured"
    )
    parser.add_argument("--max-tokens", type=int, default=None, help="evenly spaced subsample of the pooled tokens")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--accuracy", action="store_true", help="also generate answers and plot per-position accuracy")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="generation budget for --accuracy (default: the longest reference answer)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output-dir", required=True, type=Path)
    add_overwrite_argument(parser)
    add_spelling_aliases(parser)
    args = parser.parse_args(argv)
    if (error := earlier_results(args.output_dir, RESULT_NAME, args.overwrite)) is not None:
        parser.error(error)
    if args.num_examples < 1:
        parser.error(f"--num-examples must be >= 1, got {args.num_examples}")
    if args.labels is not None and len(set(args.labels)) != len(args.checkpoints):
        parser.error(
            f"--labels needs one distinct name per checkpoint: got {args.labels} "
            f"for {len(args.checkpoints)} checkpoints"
        )
    for path in args.checkpoints:
        if not (path / "config.json").is_file():
            parser.error(
                f"--checkpoints: {path} is not a save_pretrained directory (no config.json); pass a run's output dir"
            )
    return args


def load_examples(source: str, config_name: str | None, split: str, num_examples: int) -> Dataset:
    """The first `num_examples` rows of `split`: a fixed prefix so every checkpoint sees the same tokens."""
    splits = load_task_dataset(source, config_name)
    if split not in splits:
        raise ValueError(f"--split {split!r} is not in {source}; available splits: {', '.join(splits)}.")
    dataset = splits[split]
    if len(dataset) == 0:
        raise ValueError(f"--split {split!r} of {source} has no examples.")
    return dataset.select(range(min(num_examples, len(dataset))))


def default_labels(paths: list[Path]) -> list[str]:
    """Directory names, or whole paths when names repeat (runs/a/final vs runs/b/final)."""
    names = [path.name for path in paths]
    return names if len(set(names)) == len(names) else [str(path) for path in paths]


def diagnose_checkpoint(path: Path, examples: Dataset, args: argparse.Namespace, label: str) -> dict:
    """Entropy per layer (and, with --accuracy, exact match per answer position) of one checkpoint."""
    model, tokenizer, collator = load_pretrained(path)  # a CoT checkpoint sees question → cot #### answer
    model.to(args.device)
    if args.num_pause_tokens is not None:
        collator = PauseDataCollator(
            tokenizer,
            num_pause_tokens=args.num_pause_tokens,
            use_cot=collator.use_cot,
            distinct_pause_embeddings=collator.distinct_pause_embeddings,
        )
    num_pause = collator.num_pause_tokens
    collator.check_columns(examples.column_names, argument="--dataset")
    loader = DataLoader(examples, batch_size=args.batch_size, collate_fn=collator)
    batches = tqdm(loader, desc=f"entropy {label}", unit="batch")
    result = {
        "checkpoint": str(path),
        "label": label,
        "num_pause_tokens": num_pause,
        "use_cot": collator.use_cot,
        "entropy": layerwise_entropy(
            model, batches, alpha=args.alpha, positions=args.positions, max_tokens=args.max_tokens
        ),
    }
    if args.accuracy:
        scores = evaluate_exact_match(
            model,
            collator,
            examples,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            show_progress=True,
        )
        result |= {"exact_match": scores["exact_match"], "position_accuracy": scores["position_accuracy"]}
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    examples = load_examples(args.dataset, args.dataset_config, args.split, args.num_examples)
    labels = args.labels or default_labels(args.checkpoints)
    results = [
        diagnose_checkpoint(path, examples, args, label) for path, label in zip(args.checkpoints, labels, strict=True)
    ]

    args.output_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "dataset": args.dataset,
        "dataset_config": args.dataset_config,
        "split": args.split,
        "num_examples": len(examples),
        "alpha": args.alpha,
        "positions": args.positions,
        "checkpoints": results,
    }
    (args.output_dir / RESULT_NAME).write_text(json.dumps(summary, indent=2))
    plot_lines(
        {r["label"]: r["entropy"] for r in results},
        xlabel="layer (0 = embeddings)",
        ylabel="matrix entropy (nats)",
        path=args.output_dir / "entropy.png",
        title=f"Matrix entropy per layer (α={args.alpha:g}, {args.positions} tokens, {args.split})",
    )
    if args.accuracy:
        plot_lines(
            {f"{r['label']} (EM {100 * r['exact_match']:.1f}%)": r["position_accuracy"] for r in results},
            xlabel="answer position (character, spaces removed)",
            ylabel="accuracy",
            ylim=(-0.02, 1.02),
            title=f"Accuracy per answer position ({args.split})",
            path=args.output_dir / "position_accuracy.png",
        )
    for r in results:
        scores = f"exact match {100 * r['exact_match']:.1f} %, " if args.accuracy else ""
        print(f"{r['label']}: {scores}entropy per layer (nats) {' '.join(f'{x:.2f}' for x in r['entropy'])}")
    print(f"wrote {args.output_dir / RESULT_NAME} and the plots in {args.output_dir}")


if __name__ == "__main__":
    main()

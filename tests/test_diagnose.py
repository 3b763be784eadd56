import json
import random
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset, DatasetDict
from transformers import GPT2Config, GPT2LMHeadModel

from data_builders.dataset_dir import write_dataset_dir
from data_builders.layout import config_entry
from hf_seqvcr.pause import add_pause_tokens
from hf_seqvcr.scripts import diagnose
from hf_seqvcr.scripts.diagnose import main
from hf_seqvcr.tokenizer import build_digit_tokenizer

N_LAYER = 2


def digits(n: int, rng: random.Random) -> str:
    return " ".join(str(rng.randrange(10)) for _ in range(n))


def multiplication_rows(count: int, seed: int) -> dict[str, list[str]]:
    """2×2 rows in Deng et al.'s least-significant-first format (the values need not be right for entropy)."""
    rng = random.Random(seed)
    rows = [(f"{digits(2, rng)} * {digits(2, rng)}", digits(4, rng)) for _ in range(count)]
    return {"question": [q for q, _ in rows], "cot": ["" for _ in rows], "answer": [a for _, a in rows]}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    """A builder-style directory (parquet shards + a card listing them), as `data_builders` writes."""
    splits = DatasetDict(
        {"train": Dataset.from_dict(multiplication_rows(8, 0)), "test": Dataset.from_dict(multiplication_rows(6, 1))}
    )
    card = f"---\n{yaml.safe_dump({'configs': [config_entry('default', list(splits))]})}---\n"
    return write_dataset_dir(splits, tmp_path_factory.mktemp("data") / "mult_2x2", config_name="default", card=card)


def save_checkpoint(path: Path, num_pause_tokens: int, seed: int, method: str | None = None) -> Path:
    tokenizer = build_digit_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=16,
        n_layer=N_LAYER,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    tokenizer, model = add_pause_tokens(tokenizer, GPT2LMHeadModel(config), num_pause_tokens)
    model.config.seqvcr_method = method  # what recipes record; `cot` changes the inputs diagnose builds
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    return [save_checkpoint(root / "vanilla", 0, seed=0), save_checkpoint(root / "pause2", 2, seed=1)]


def run(checkpoints, dataset_dir, out: Path, *extra: str) -> dict:
    main(
        [
            "--checkpoints",
            *map(str, checkpoints),
            "--dataset",
            str(dataset_dir),
            "--num-examples",
            "4",
            "--batch-size",
            "2",
            "--output-dir",
            str(out),
            *extra,
        ]
    )
    return json.loads((out / "entropy.json").read_text())


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_entropy_json_and_plot_per_checkpoint(checkpoints, dataset_dir, tmp_path):
    summary = run(checkpoints, dataset_dir, tmp_path)
    assert summary["num_examples"] == 4 and summary["split"] == "test"
    assert [r["label"] for r in summary["checkpoints"]] == ["vanilla", "pause2"]
    assert [r["num_pause_tokens"] for r in summary["checkpoints"]] == [0, 2]
    for result in summary["checkpoints"]:
        assert len(result["entropy"]) == N_LAYER + 1
        assert all(v > 0 for v in result["entropy"])
    assert_png(tmp_path / "entropy.png")
    assert not (tmp_path / "position_accuracy.png").exists()


def test_pause_count_from_the_command_line_overrides_the_config(checkpoints, dataset_dir, tmp_path):
    summary = run(
        checkpoints[1:], dataset_dir, tmp_path, "--num-pause-tokens", "0", "--positions", "all", "--labels", "p"
    )
    assert summary["checkpoints"][0]["num_pause_tokens"] == 0
    assert summary["positions"] == "all"


def test_accuracy_plot(checkpoints, dataset_dir, tmp_path):
    summary = run(checkpoints, dataset_dir, tmp_path, "--accuracy", "--max-new-tokens", "6")
    for result in summary["checkpoints"]:
        assert 0.0 <= result["exact_match"] <= 1.0
        assert all(0.0 <= a <= 1.0 for a in result["position_accuracy"])
    assert_png(tmp_path / "position_accuracy.png")


def test_a_cot_checkpoint_is_measured_on_its_chain_of_thought_inputs(dataset_dir, tmp_path):
    cot = save_checkpoint(tmp_path / "cot", 0, seed=2, method="cot")
    vanilla = save_checkpoint(tmp_path / "vanilla", 0, seed=2, method="vanilla")
    report = run([cot, vanilla], dataset_dir, tmp_path / "out")
    assert [entry["use_cot"] for entry in report["checkpoints"]] == [True, False]
    # the " ####" the CoT target adds changes the answer-position tokens, so the same weights measure differently
    assert report["checkpoints"][0]["entropy"] != report["checkpoints"][1]["entropy"]


def test_missing_checkpoint_is_a_usage_error(dataset_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run([tmp_path / "nope"], dataset_dir, tmp_path)
    assert "--checkpoints" in capsys.readouterr().err


def test_unknown_split_lists_the_available_ones(checkpoints, dataset_dir, tmp_path):
    with pytest.raises(ValueError, match="available splits: train, test"):
        run(checkpoints, dataset_dir, tmp_path, "--split", "validation")


def test_empty_split_is_an_error(checkpoints, dataset_dir, tmp_path, monkeypatch):
    empty = DatasetDict({"test": Dataset.from_dict(multiplication_rows(0, 2))})
    monkeypatch.setattr(diagnose, "load_task_dataset", lambda source, config_name=None: empty)
    with pytest.raises(ValueError, match="no examples"):
        run(checkpoints, dataset_dir, tmp_path)


def test_num_examples_must_be_positive(checkpoints, dataset_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run(checkpoints, dataset_dir, tmp_path, "--num-examples", "0")
    assert "--num-examples" in capsys.readouterr().err


def test_earlier_results_are_replaced_only_with_overwrite(tmp_path, capsys):
    (tmp_path / "entropy.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["--checkpoints", str(tmp_path), "--dataset", str(tmp_path), "--output-dir", str(tmp_path)])
    assert "--overwrite_output_dir to replace them" in capsys.readouterr().err
    assert (tmp_path / "entropy.json").read_text() == "{}"


@pytest.mark.parametrize("output_flag", ["--output-dir", "--output_dir"])
@pytest.mark.parametrize(
    "overwrite, replaces",
    [
        ([], False),
        (["--overwrite"], True),
        (["--overwrite_output_dir"], True),
        (["--overwrite-output-dir", "true"], True),
        (["--overwrite_output_dir", "false"], False),
    ],
)
def test_the_training_spellings_of_output_dir_and_overwrite_are_accepted(
    tmp_path, capsys, output_flag, overwrite, replaces
):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    (tmp_path / "entropy.json").write_text("{}")
    argv = [
        "--checkpoints",
        str(tmp_path / "ckpt"),
        "--dataset",
        str(tmp_path),
        "--num_examples",
        "3",
        output_flag,
        str(tmp_path),
        *overwrite,
    ]
    if replaces:
        args = diagnose.parse_args(argv)
        assert args.output_dir == tmp_path and args.overwrite is True and args.num_examples == 3
    else:
        with pytest.raises(SystemExit):
            diagnose.parse_args(argv)
        assert "holds the results of an earlier run" in capsys.readouterr().err

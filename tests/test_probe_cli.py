"""`seqvcr-probe` on checkpoints our own recipe trains here (2 steps on a tiny counting build): probe.json holds one
distance per checkpoint × variant × length × dtype, the plots exist, two checkpoints go side by side with accuracy
per length, and each bad input exits 2 naming its flag before any model is loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertConfig, PreTrainedTokenizerFast, ViTConfig

from hf_seqvcr import build_digit_tokenizer
from hf_seqvcr.scripts import probe as probe_module
from hf_seqvcr.scripts.probe import main, parse_lengths
from hf_seqvcr.scripts.train import main as train

POSITIONS = 64
TINY_CONFIG = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": POSITIONS}
BUILD = (
    "counting --min-length 1 --max-length 8 --test-lengths 4 8 --bucket-size 4 --train-size 40 "
    "--validation-size 4 --test-size 4"
)
VARIANTS, LENGTHS, DTYPES = ("ones", "commas", "random"), (2, 4, 8), ("float32", "bfloat16")
PREFIX = "count ones:"
PREFIX_TOKENS = len(build_digit_tokenizer()(PREFIX, add_special_tokens=False)["input_ids"])  # " o" is one token


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A vanilla and a Seq-VCR checkpoint from `hf_seqvcr.scripts.train.main`, 2 steps each, same data and seed."""
    root = tmp_path_factory.mktemp("runs")
    (root / "config.json").write_text(json.dumps(TINY_CONFIG))
    for method in ("vanilla", "seqvcr"):
        train(
            None,
            [
                "--model_config",
                str(root / "config.json"),
                "--method",
                method,
                "--build_dataset",
                BUILD,
                "--max_steps",
                "2",
                "--per_device_train_batch_size",
                "8",
                "--seqvcr_proj_dim",
                "16",
                "--report_to",
                "none",
                "--save_strategy",
                "no",
                "--eval_strategy",
                "no",
                "--disable_tqdm",
                "true",
                "--output_dir",
                str(root / method),
            ],
        )
    return {"vanilla": root / "vanilla", "seqvcr": root / "seqvcr"}


def probe(out: Path, *argv: str) -> dict:
    main([*argv, "--lengths", *map(str, LENGTHS), "--prefix", PREFIX, "--output-dir", str(out)])
    return json.loads((out / "probe.json").read_text())


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_one_distance_per_checkpoint_variant_length_and_dtype_and_a_plot_per_variant(runs, tmp_path):
    report = probe(tmp_path, "--checkpoints", str(runs["vanilla"]))
    keys = [(p["label"], p["variant"], p["length"], p["dtype"]) for p in report["distances"]]
    assert sorted(keys) == sorted(("vanilla", v, n, d) for v in VARIANTS for n in LENGTHS for d in DTYPES)
    for point in report["distances"]:
        assert point["linf"] >= 0 and point["l2"] >= point["linf"] and point["bf16_resolution"] > 0
        assert point["tokens"] >= PREFIX_TOKENS + point["length"]  # commas add tokens
        assert point["variant"] == "commas" or point["tokens"] == PREFIX_TOKENS + point["length"]
    assert {(d["variant"], d["dtype"]) for d in report["decay"]} == {(v, d) for v in VARIANTS for d in DTYPES}
    assert report["checkpoints"] == [
        {
            "label": "vanilla",
            "checkpoint": str(runs["vanilla"]),
            "max_positions": POSITIONS,
            "num_pause_tokens": 0,
            "accuracy": None,
        }
    ]
    for variant in VARIANTS:
        assert_png(tmp_path / f"distance_{variant}.png")
    assert not (tmp_path / "accuracy.png").exists()


def test_two_checkpoints_side_by_side_with_accuracy_per_length(runs, tmp_path, capsys):
    report = probe(
        tmp_path,
        "--checkpoints",
        str(runs["vanilla"]),
        str(runs["seqvcr"]),
        "--labels",
        "v",
        "s",
        "--variants",
        "ones",
        "--dataset",
        str(runs["vanilla"] / "_dataset"),
        "--answer-position",
    )
    assert len(report["distances"]) == 2 * len(LENGTHS) * len(DTYPES) and report["answer_position"]
    for label in ("v", "s"):
        tokens = sorted({p["tokens"] for p in report["distances"] if p["label"] == label})
        assert tokens == [PREFIX_TOKENS + n + 1 for n in LENGTHS]  # + the <eos> the model answers after
    assert [c["label"] for c in report["checkpoints"]] == ["v", "s"]
    for result in report["checkpoints"]:
        assert [a["length"] for a in result["accuracy"]] == [4, 8]
        assert all(0 <= a["exact_match"] <= 1 and a["examples"] == 4 for a in result["accuracy"])
    assert_png(tmp_path / "distance_ones.png")
    assert_png(tmp_path / "accuracy.png")
    assert "| v | ones | float32 |" in capsys.readouterr().out


def test_lengths_take_lists_and_ranges():
    assert parse_lengths(["8", "2", "8"]) == [2, 8]
    assert parse_lengths(["1:4", "40:60:10", "8:64:x2"]) == [1, 2, 3, 4, 8, 16, 32, 40, 50, 60, 64]


def _digits_only_checkpoint(run: Path, target: Path) -> Path:
    """The run's weights with a tokenizer that knows only digits (and its special tokens): no comma, no letters."""
    target.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(run / name, target / name)
    vocab = {piece: i for i, piece in enumerate(["<pad>", "<eos>", "<unk>", *"0123456789"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    ).save_pretrained(target)
    return target


def _bad_checkpoint(kind: str, runs: dict[str, Path], root: Path) -> Path:
    if kind == "digits-only tokenizer":
        return _digits_only_checkpoint(runs["vanilla"], root / "digits")
    path = root / kind.replace(" ", "-")
    if kind == "missing":
        return path
    path.mkdir()
    if kind == "vision model":
        ViTConfig().save_pretrained(path)
    elif kind == "masked LM":
        BertConfig(architectures=["BertForMaskedLM"]).save_pretrained(path)
    return path


@pytest.mark.parametrize(
    "kind, argv, message",
    [
        (None, ["--lengths", "0"], "--lengths: 0 is not a positive length"),
        (None, ["--lengths", "8:x"], "--lengths '8:x' is not a length or a range"),
        (
            None,
            ["--lengths", "60"],
            "--lengths 60: the 'ones' prompt of 60 digits is 71 tokens, beyond the 64 positions",
        ),
        (None, ["--labels", "a", "b"], "--labels needs one distinct name per checkpoint"),
        (None, ["--dataset-config", "x"], "pass --dataset too"),
        ("missing", [], "does not exist"),
        ("empty dir", [], "has no config.json, so it is not a causal LM checkpoint"),
        ("vision model", [], "is a 'vit' model, which AutoModelForCausalLM cannot load"),
        ("masked LM", [], "was saved as BertForMaskedLM, not as a causal LM"),
        ("digits-only tokenizer", ["--variants", "commas"], "cannot probe --variants commas: symbol ','"),
        ("digits-only tokenizer", ["--prefix", "x"], "--prefix 'x': the tokenizer of"),
        (
            "digits-only tokenizer",
            ["--variants", "ones", "--dataset", "DATASET"],
            "has no token for ' ' (in test_len4)",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_flag_before_any_model_loads(
    runs, tmp_path, monkeypatch, capsys, kind, argv, message
):
    monkeypatch.setattr(probe_module, "load_pretrained", lambda *a, **k: pytest.fail("loaded a model"))
    checkpoint = runs["vanilla"] if kind is None else _bad_checkpoint(kind, runs, tmp_path)
    argv = [str(runs["vanilla"] / "_dataset") if arg == "DATASET" else arg for arg in argv]
    lengths = [] if "--lengths" in argv else ["--lengths", "2"]
    prefix = [] if "--prefix" in argv else ["--prefix", PREFIX if kind is None else ""]
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoints", str(checkpoint), *lengths, *prefix, *argv, "--output-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "probe.json").exists()


def test_an_earlier_probe_is_replaced_only_with_overwrite(tmp_path, capsys):
    from hf_seqvcr.scripts.probe import main as probe

    (tmp_path / "probe.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        probe(["--checkpoints", str(tmp_path / "missing"), "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "--overwrite_output_dir to replace them" in capsys.readouterr().err
    assert (tmp_path / "probe.json").read_text() == "{}"


@pytest.mark.parametrize(
    "flags",
    [
        ["--output_dir", "OUT", "--overwrite_output_dir"],
        ["--output-dir", "OUT", "--overwrite"],
        ["--output_dir", "OUT", "--overwrite-output-dir", "true", "--separator_every", "2"],
    ],
)
def test_the_training_spellings_of_the_flags_are_accepted(tmp_path, flags):
    argv = ["--checkpoints", "c", "--lengths", "4", *(str(tmp_path) if flag == "OUT" else flag for flag in flags)]
    _, args = probe_module.parse_args(argv)
    assert args.output_dir == tmp_path and args.overwrite is True and args.lengths == [4]
    assert args.separator_every == (2 if "--separator_every" in flags else 3)

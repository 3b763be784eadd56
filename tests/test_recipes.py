"""Recipes: YAML + flags parsing, the five methods, bad input before work, and one run under `accelerate launch`."""

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_seqvcr import SeqVCRConfig, SeqVCRTrainer, pause_token_ids, restore_pause_settings
from hf_seqvcr.losses import MULTIPLICATION_LAMBDAS, OTHER_TASKS_LAMBDAS
from hf_seqvcr.methods import METHODS, apply_method, uses_cot
from hf_seqvcr.scripts.models import ModelArguments
from hf_seqvcr.scripts.parser import SeqVCRParser
from hf_seqvcr.scripts.train import ScriptArguments, main, parse, sft_arguments, summary
from launch import accelerate_launch

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recipes" / "multiplication" / "demo.yaml"
TINY_RUN = [
    "--build_dataset",
    "multiplication --digits 1 --train-size 60 --validation-size 10 --test-size 10",
    "--max_train_samples",
    "16",
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "8",
    "--seqvcr_proj_dim",
    "16",
    "--logging_steps",
    "1",
]


def test_yaml_sets_defaults_and_flags_override_them(tmp_path):
    script, model, training = parse(DEMO, ["--learning_rate", "0.5", "--output_dir", str(tmp_path)])
    assert training.learning_rate == 0.5
    assert training.seqvcr_lambda_cov == 0.004 and script.method == "seqvcr_pause" and model.model_config == "tiny"


def test_training_flags_take_both_spellings_like_the_other_commands(tmp_path):
    """HfArgumentParser registers `--output-dir` beside `--output_dir`; the pipeline must see either as given."""
    output = tmp_path / "run"
    _, _, underscores = parse(DEMO, ["--output_dir", str(output), "--learning_rate", "0.5"])
    _, _, hyphens = parse(DEMO, ["--output-dir", str(output), "--learning-rate", "0.5"])
    assert underscores.output_dir == hyphens.output_dir == str(output) and hyphens.learning_rate == 0.5
    output.mkdir()
    (output / "results.json").write_text("{}")  # a finished run: replaced only when asked, in either spelling
    for flag in ("--overwrite_output_dir", "--overwrite-output-dir"):
        assert parse(DEMO, ["--output-dir", str(output), flag, "true"])[0].overwrite_output_dir is True


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipes_use_the_papers_lambdas_of_their_task_family(path):
    """hf_seqvcr.losses is the one home of the paper's λ; a recipe that sets them must agree with it."""
    settings = yaml.safe_load(path.read_text())
    if "seqvcr_lambda_var" not in settings and "seqvcr_lambda_cov" not in settings:
        pytest.skip("sets no λ")
    family = MULTIPLICATION_LAMBDAS if path.parent.name == "multiplication" else OTHER_TASKS_LAMBDAS
    assert (settings.get("seqvcr_lambda_var"), settings.get("seqvcr_lambda_cov")) == tuple(family)


def test_unknown_yaml_keys_are_an_error(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model_config: tiny\nbuild_dataset: lis\nlearning_rte: 0.1\n")
    with pytest.raises(SystemExit):
        SeqVCRParser((ScriptArguments, ModelArguments, SeqVCRConfig)).parse_args_and_config(["--config", str(config)])
    assert "unknown keys ['learning_rte']" in capsys.readouterr().err


def test_missing_config_file_is_an_error(capsys):
    with pytest.raises(SystemExit):
        parse(DEMO, ["--config", "recipes/nope.yaml"])
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "method, use_seqvcr, pauses, use_cot",
    [
        ("vanilla", False, 0, False),
        ("cot", False, 0, True),
        ("pause", False, 2, False),
        ("seqvcr", True, 0, False),
        ("seqvcr_pause", True, 2, False),
    ],
)
def test_methods_are_the_papers_five_configurations(tmp_path, method, use_seqvcr, pauses, use_cot):
    args, cot = apply_method(SeqVCRConfig(output_dir=str(tmp_path), report_to=[]), method), uses_cot(method)
    assert (args.use_seqvcr, args.num_pause_tokens, cot) == (use_seqvcr, pauses, use_cot)
    assert set(METHODS) == {"vanilla", "cot", "pause", "seqvcr", "seqvcr_pause"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--method", "magic"], "invalid choice: 'magic'"),
        (["--build_dataset", "sorting --length 3"], "must start with a builder"),
        (["--model_name_or_path", "x/y", "--model_config", "tiny"], "exactly one of `--model_name_or_path`"),
        (["--max_test_samples", "0"], "max_test_samples"),
        (["--resume_from_checkpoint", "true"], "holds no checkpoint-<step> folder"),  # tmp_path: no checkpoint yet
        (["--resume_from_checkpoint", "runs/nope"], "`--resume_from_checkpoint runs/nope` is not a folder"),
    ],
)
def test_bad_flags_are_reported_before_any_work(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        parse(DEMO, [*argv, "--output_dir", str(tmp_path)])
    assert message in capsys.readouterr().err


def test_unusable_data_is_one_message_naming_the_flag_not_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match=r"error: --dataset_name: .* does not exist"):
        main(DEMO, ["--dataset_name", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "a")])
    build = ["--build_dataset", "multiplication --digits 1 --train-size 8 --validation-size 2 --test-size 2"]
    with pytest.raises(SystemExit, match=r"no 'test_n9' split .* pass `--test_split`"):
        main(DEMO, [*build, "--test_split", "test_n9", "--output_dir", str(tmp_path / "b")])
    with pytest.raises(SystemExit, match=r"holds data built by .* pass another `--output_dir`"):
        main(DEMO, [*build[:1], build[1] + " --seed 5", "--output_dir", str(tmp_path / "b")])


def test_builder_errors_stop_the_recipe(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(DEMO, ["--build_dataset", "multiplication --digits 0", "--output_dir", str(tmp_path)])
    assert exit_info.value.code == 2


def test_accelerate_launch_runs_a_recipe_end_to_end(tmp_path):
    output = tmp_path / "run"
    run = accelerate_launch(
        "recipes/accelerate_configs/cpu.yaml", "recipes/multiplication.py", *TINY_RUN, "--output_dir", str(output)
    )
    assert "exact match" in run.stdout and str(output) in run.stdout
    assert " - INFO - hf_seqvcr.scripts.train - script arguments: {" in run.stdout  # logging is set up
    assert re.search(r"\[INFO\|trainer\.py:\d+\] .* >> \*+ Running training \*+", run.stderr)  # and transformers'
    card = (output / "README.md").read_text()  # every run ends with its model card, not only a pushed one
    assert "method `seqvcr_pause`" in card and "| `test_exact_match` |" in card
    results = json.loads((output / "results.json").read_text())
    assert results["method"] == "seqvcr_pause" and results["num_test_examples"] == 10
    assert 0.0 <= results["test_exact_match"] <= 1.0 and len(results["test_position_accuracy"]) == 2
    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForCausalLM.from_pretrained(output)
    assert restore_pause_settings(model) == 2 and len(pause_token_ids(tokenizer, 2)) == 2
    # the dataset a run built stays, and a rerun of the same build reuses it instead of failing
    assert (output / "_dataset" / "README.md").is_file()
    assert list(output.rglob("events.out.tfevents.*")), "the demo configs log the curves to TensorBoard"


def test_same_seed_gives_a_bit_identical_run_and_another_seed_does_not(tmp_path):
    def run(name: str, seed: int) -> tuple[list[float], dict]:
        output = tmp_path / name
        main(DEMO, [*TINY_RUN, "--output_dir", str(output), "--seed", str(seed), "--report_to", "none"])
        history = json.loads((output / "trainer_state.json").read_text())["log_history"]
        return [entry["loss"] for entry in history if "loss" in entry], load_file(output / "model.safetensors")

    losses, weights = run("a", 0)
    same_losses, same_weights = run("b", 0)
    other_losses, other_weights = run("c", 1)
    assert len(losses) == 2 and losses == same_losses
    assert weights.keys() == same_weights.keys() and all(torch.equal(weights[k], same_weights[k]) for k in weights)
    assert losses != other_losses and not torch.equal(
        weights["transformer.wte.weight"], other_weights["transformer.wte.weight"]
    )


def test_a_run_ends_its_trainer_last(tmp_path, monkeypatch):
    """`Trainer.end` after the results are written: under several processes it lets the run exit cleanly."""
    ended = []
    monkeypatch.setattr(SeqVCRTrainer, "end", lambda self: ended.append((tmp_path / "run" / "results.json").is_file()))
    main(DEMO, [*TINY_RUN, "--output_dir", str(tmp_path / "run"), "--report_to", "none"])
    assert ended == [True]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--method", "vanilla", "--use_seqvcr", "true"], "--use_seqvcr True contradicts --method vanilla"),
        (["--method", "seqvcr", "--num_pause_tokens", "2"], "--num_pause_tokens 2 contradicts --method seqvcr"),
        (["--method", "pause", "--num_pause_tokens", "0"], "--num_pause_tokens 0 contradicts --method pause"),
    ],
)
def test_settings_that_contradict_the_method_are_an_error_not_overridden(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        parse(DEMO, [*argv, "--output_dir", str(tmp_path)])
    assert message in capsys.readouterr().err


def test_the_method_decides_pauses_and_regularizer_and_keeps_a_chosen_pause_count(tmp_path):
    _, _, vanilla = parse(DEMO, ["--method", "vanilla", "--output_dir", str(tmp_path)])
    _, _, pause = parse(DEMO, ["--method", "pause", "--num_pause_tokens", "4", "--output_dir", str(tmp_path)])
    assert (vanilla.use_seqvcr, vanilla.num_pause_tokens) == (False, 0)
    assert (pause.use_seqvcr, pause.num_pause_tokens) == (False, 4)


def test_default_output_dirs_differ_per_task_and_method(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    dirs = {
        parse(ROOT / "recipes" / task / "demo.yaml", ["--method", method])[2].output_dir
        for task in ("multiplication", "lis")
        for method in ("vanilla", "seqvcr")
    }
    assert dirs == {
        "outputs/multiplication-vanilla",
        "outputs/multiplication-seqvcr",
        "outputs/lis-vanilla",
        "outputs/lis-seqvcr",
    }
    iso_flop = parse(ROOT / "recipes" / "phop" / "demo.yaml", ["--config", str(ROOT / "recipes/phop/iso_flop.yaml")])[2]
    assert iso_flop.output_dir == "outputs/phop-iso_flop-vanilla"


def test_a_finished_run_is_not_replaced_without_the_flag(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(SystemExit):
        parse(DEMO, ["--output_dir", str(tmp_path)])
    error = capsys.readouterr().err
    assert "holds a finished run" in error and "--overwrite_output_dir true" in error
    assert parse(DEMO, ["--output_dir", str(tmp_path), "--overwrite_output_dir", "true"])[0].overwrite_output_dir


def test_a_misspelled_flag_is_named_first_with_the_closest_valid_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse(DEMO, ["--learning_rte", "0.1", "--output_dir", str(tmp_path)])
    error = capsys.readouterr().err.splitlines()
    assert error[0].endswith("unrecognized arguments: --learning_rte 0.1 (did you mean --learning_rate?)")
    assert len(error) <= 3


def test_help_mentions_the_config_file(capsys):
    with pytest.raises(SystemExit):
        parse(DEMO, ["--help"])
    assert "--config FILE.yaml" in capsys.readouterr().out


def test_malformed_yaml_names_the_file(tmp_path, capsys):
    config = tmp_path / "broken.yaml"
    config.write_text("method: vanilla\nlearning_rate: [0.1\n")
    with pytest.raises(SystemExit):
        parse(DEMO, ["--config", str(config)])
    error = capsys.readouterr().err
    assert f"--config {config}: not valid YAML" in error and "<unicode string>" not in error


def test_the_summary_mentions_pause_tokens_only_when_the_run_has_them():
    results = {
        "method": "vanilla",
        "test_exact_match": 0.5,
        "test_digit_accuracy": 0.75,
        "num_test_examples": 4,
        "failed_checkpoint_pushes": [],
    }
    assert "pause" not in summary(results, "out", 0)
    assert "with 2 pause tokens" in summary({**results, "method": "pause"}, "out", 2)


def test_a_looped_model_trains_through_the_recipe_and_reloads_looped(tmp_path):
    from hf_seqvcr import load_pretrained
    from hf_seqvcr.looped import LoopedLayers, decoder_layers

    output = tmp_path / "looped"
    main(
        DEMO,
        [
            "--build_dataset",
            "phop --length 8 --hops 2 --train-size 60 --validation-size 10 --test-size 10",
            "--method",
            "seqvcr",
            "--looped",
            "1,3",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "8",
            "--seqvcr_proj_dim",
            "16",
            "--output_dir",
            str(output),
            "--report_to",
            "none",
        ],
    )
    weights = load_file(output / "model.safetensors")
    assert {key.split(".")[2] for key in weights if key.startswith("transformer.h.")} == {"0"}  # one unique layer
    assert (output / "modeling_looped.py").is_file()  # loads without hf-seqvcr (tests/test_looped_remote_code.py)
    assert json.loads((output / "config.json").read_text())["auto_map"]["AutoModelForCausalLM"] == (
        "modeling_looped.LoopedGPT2LMHeadModel"
    )
    model, _, _ = load_pretrained(output)
    assert isinstance(decoder_layers(model), LoopedLayers) and model.config.num_hidden_layers == 3
    assert model.config.loop_layout == {"block": 1, "loops": 3, "prefix": 0, "suffix": 0}


@pytest.mark.parametrize("looped, message", [("2", "'k,L' or 'prefix,k,L,suffix'"), ("0,3", "--looped 0,3.*block")])
def test_a_malformed_loop_layout_is_reported_before_any_work(tmp_path, capsys, looped, message):
    with pytest.raises(SystemExit):
        parse(DEMO, ["--looped", looped, "--output_dir", str(tmp_path)])
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(
    "config",
    sorted(c for c in (ROOT / "recipes").glob("*/*.yaml") if c.parent.with_suffix(".py").is_file()),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_every_shipped_recipe_config_parses(tmp_path, config):
    script, _, training = parse(config, ["--output_dir", str(tmp_path), "--bf16", "false"])  # bf16 needs a GPU
    assert script.method in METHODS and training.output_dir == str(tmp_path)
    sft = sft_arguments(training)  # `--trainer sft` runs every config with the same settings
    for name in (
        "learning_rate",
        "max_steps",
        "per_device_train_batch_size",
        "seqvcr_lambda_cov",
        "num_pause_tokens",
        "seqvcr_layers",
        "seed",
        "eval_strategy",
        "activation_checkpointing",
    ):
        assert getattr(sft, name) == getattr(training, name), name


def test_trl_sft_trainer_takes_the_recipes_steps(tmp_path):
    """`--trainer sft`: the same rows, layout and settings through TRL's SFTTrainer give the same losses (its fused
    LM head sums in another order, ~1e-7) and the same kind of results.json."""

    def losses(trainer: str) -> tuple[list[float], dict]:
        output = tmp_path / trainer
        main(DEMO, [*TINY_RUN, "--output_dir", str(output), "--trainer", trainer, "--report_to", "none"])
        history = json.loads((output / "trainer_state.json").read_text())["log_history"]
        return [e[k] for e in history if "loss" in e for k in ("loss", "ce", "seqvcr")], json.loads(
            (output / "results.json").read_text()
        )

    ours, our_results = losses("trainer")
    trl, trl_results = losses("sft")
    assert len(ours) == 2 * 3 and trl == pytest.approx(ours, rel=1e-5)
    assert {"mean_token_accuracy", "entropy"} <= json.loads((tmp_path / "sft" / "trainer_state.json").read_text())[
        "log_history"
    ][0].keys()
    assert trl_results.keys() == our_results.keys() and 0.0 <= trl_results["test_exact_match"] <= 1.0


def test_trl_sft_trainer_refuses_chain_of_thought(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse(DEMO, ["--trainer", "sft", "--method", "cot", "--output_dir", str(tmp_path)])
    assert "--trainer sft" in capsys.readouterr().err


def test_resume_true_is_checked_before_any_work_and_accepted_with_a_checkpoint(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    _, _, training = parse(DEMO, ["--resume_from_checkpoint", "true", "--output_dir", str(tmp_path)])
    assert training.resume_from_checkpoint == "true"  # the trainer resolves it again when it starts

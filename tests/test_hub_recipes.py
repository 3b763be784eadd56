"""Recipes on the loopback Hub: publish data → load it → train → push with a card → reload; clear failures."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from huggingface_hub import ModelCard
from peft import LoraConfig, PeftModel
from safetensors.torch import load as load_safetensors
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils.hub import hf_api

from data_builders import load_task_dataset, multiplication
from hf_seqvcr import SeqVCRConfig, SeqVCRTrainer, add_pause_tokens, evaluate_exact_match, load_pretrained
from hf_seqvcr.lora import get_lora_model
from hf_seqvcr.model_card import final_metrics
from hf_seqvcr.scripts.train import main, parse
from hf_seqvcr.tokenizer import build_digit_tokenizer
from hub_server import BAD_TOKEN, TEST_TOKEN, USER, LoopbackHub
from tiny import tiny_gpt2

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recipes" / "multiplication" / "demo.yaml"
SMALL = [
    "--max_train_samples",
    "32",
    "--max_test_samples",
    "8",
    "--per_device_train_batch_size",
    "8",
    "--seqvcr_proj_dim",
    "16",
    "--disable_tqdm",
    "true",
    "--logging_steps",
    "100",
]
BUILD = ["--build_dataset", "multiplication --digits 1 --train-size 40 --validation-size 5 --test-size 10"]


def new_repo_id(kind: str) -> str:
    return f"{USER}/{kind}-{uuid.uuid4().hex[:8]}"


def commits_with_the_head(repo) -> dict[str, bool]:
    """Each commit's message → whether its `model.safetensors` holds projection-head keys (commits that have one)."""
    weights = {c.summary: c.files["model.safetensors"] for c in repo.commits.values() if "model.safetensors" in c.files}
    return {
        message: any("seqvcr_projector" in key for key in load_safetensors(weights[message].content))
        for message in weights
    }


def test_publish_load_train_push_reload(hub: LoopbackHub, tmp_path: Path, capsys) -> None:
    """The docs/hub.md workflow: a builder publishes data, a recipe trains on it by id and pushes checkpoints and a
    card, and the model reloads from the Hub with plain transformers and with `load_pretrained`."""
    data_repo, model_repo = new_repo_id("data"), new_repo_id("model")
    assert (
        multiplication.main(
            [
                "--digits",
                "1",
                "--train-size",
                "40",
                "--validation-size",
                "5",
                "--test-size",
                "10",
                "--output-dir",
                str(tmp_path / "data"),
                "--push-to-hub",
                data_repo,
            ]
        )
        == 0
    )
    data_sha = hub.repo(data_repo, "dataset").head().oid
    output = tmp_path / "model"
    results = main(
        DEMO,
        [  # its `build_dataset` gives way to `--dataset_name`
            "--dataset_name",
            data_repo,
            "--dataset_config",
            "1x1",
            "--dataset_revision",
            data_sha,
            *SMALL,
            "--output_dir",
            str(output),
            "--max_steps",
            "4",
            "--save_strategy",
            "steps",
            "--save_steps",
            "2",
            "--push_to_hub",
            "--hub_model_id",
            model_repo,
            "--hub_strategy",
            "every_save",
            "--hub_private_repo",
            "true",
        ],
    )

    repo = hub.repo(model_repo)
    summaries = [commit.summary for commit in repo.commits.values()]
    assert repo.private and "Training in progress, step 2" in summaries and summaries[-1] == "End of training"
    head_in = commits_with_the_head(repo)  # checkpoint pushes publish the same tensors as the final push
    assert "Training in progress, step 2" in head_in and not any(head_in.values())
    assert f"pushed to {hub.endpoint}/{model_repo}" in capsys.readouterr().out
    final = repo.head().files
    assert not [key for key in load_safetensors(final["model.safetensors"].content) if "seqvcr_projector" in key]
    assert b'"test_exact_match"' in final["results.json"].content

    card = ModelCard.load(model_repo)
    assert {"seq-vcr", "pause-tokens", "seqvcr_pause"} <= set(card.data.tags) and card.data.datasets == [data_repo]
    scores = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert scores == {name: results[name] for name in ("test_exact_match", "test_digit_accuracy")}
    assert {r.dataset_revision for r in card.data.eval_results} == {data_sha} and f"revision `{data_sha}`" in card.text
    assert "| `seqvcr_lambda_cov` | `0.004` |" in card.text and "`seqvcr_proj_dim` | `16`" in card.text

    model, tokenizer, collator = load_pretrained(model_repo)  # the helper restores the pauses from the config
    local = AutoModelForCausalLM.from_pretrained(output)
    plain = AutoModelForCausalLM.from_pretrained(model_repo)
    assert collator.num_pause_tokens == 2
    assert AutoTokenizer.from_pretrained(model_repo).get_vocab() == tokenizer.get_vocab()
    test_rows = load_task_dataset(data_repo, "1x1", revision=data_sha)["test"].select(range(8)).to_list()
    ids = torch.tensor([collator.prompt_ids(test_rows[0]["question"])])
    with torch.no_grad():
        assert torch.equal(plain(ids).logits, local(ids).logits) and torch.equal(model(ids).logits, local(ids).logits)
    assert evaluate_exact_match(model, collator, test_rows)["exact_match"] == results["test_exact_match"]

    snippet = card.text.split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(snippet.replace('question = "..."', f"question = {test_rows[0]['question']!r}"), namespace)
    prompt_ids = namespace["inputs"]["input_ids"][0].tolist()
    assert prompt_ids == collator.prompt_ids(test_rows[0]["question"])  # the card prompts as training did

    published = b"".join(f.content for commit in repo.commits.values() for f in commit.files.values())
    assert TEST_TOKEN.encode() not in published and TEST_TOKEN not in "".join(capsys.readouterr())


def test_a_failed_checkpoint_push_is_reported_and_the_final_push_is_complete(hub, tmp_path: Path, capsys) -> None:
    """The Trainer drops a background push's error; the run reports which step is only local, and where."""
    repo_id, output = new_repo_id("flaky"), tmp_path / "model"
    hub.fail_next_commits(repo_id, 1)  # the step-2 checkpoint's commit
    results = main(
        DEMO,
        [
            *BUILD,
            *SMALL,
            "--output_dir",
            str(output),
            "--max_steps",
            "4",
            "--save_strategy",
            "steps",
            "--save_steps",
            "2",
            "--save_total_limit",
            "5",
            "--push_to_hub",
            "--hub_model_id",
            repo_id,
            "--hub_strategy",
            "every_save",
        ],
    )

    (failure,) = results["failed_checkpoint_pushes"]
    checkpoint = str(output / "checkpoint-2")
    assert failure["step"] == 2 and failure["local_checkpoint"] == checkpoint and "500" in failure["reason"]
    assert Path(checkpoint, "model.safetensors").is_file()
    printed = capsys.readouterr().out
    assert "checkpoint push failed at step 2 (" in printed and f"it is only in {checkpoint}" in printed
    repo = hub.repo(repo_id)
    summaries = [commit.summary for commit in repo.commits.values()]
    assert "Training in progress, step 2" not in summaries and summaries[-1] == "End of training"
    final = repo.head().files  # the final commit is the local model, and records the failure
    for name in ("model.safetensors", "config.json", "tokenizer.json", "results.json"):
        assert final[name].content == (output / name).read_bytes(), name
    assert json.loads(final["results.json"].content)["failed_checkpoint_pushes"] == [failure]


def train_and_push_pause_model(tmp_path: Path, repo_id: str, lora: bool = False, **hub_args) -> SeqVCRTrainer:
    """One step of the `pause` method on a tiny model (optionally a LoRA adapter), then `trainer.push_to_hub()`."""
    tokenizer = build_digit_tokenizer()
    tokenizer, model = add_pause_tokens(tokenizer, tiny_gpt2(tokenizer), 1)
    model.config.seqvcr_method = "pause"
    if lora:
        model = get_lora_model(model, tokenizer, LoraConfig(r=4, target_modules=["c_attn"], task_type="CAUSAL_LM"))
    rows = Dataset.from_dict({"question": ["1 * 2", "3 * 4"] * 2, "answer": ["2", "2 1"] * 2})
    args = SeqVCRConfig(
        tmp_path,
        use_seqvcr=False,
        num_pause_tokens=1,
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        push_to_hub=True,
        hub_model_id=repo_id,
        **hub_args,
    )
    trainer = SeqVCRTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    trainer.log({"test_exact_match": 0.5})
    trainer.push_to_hub()
    return trainer


def test_push_to_a_branch_leaves_main_alone(hub: LoopbackHub, tmp_path: Path) -> None:
    """`hub_revision` needs its branch: `SeqVCRMixin.init_hf_repo` creates it, the Trainer never does."""
    repo_id = new_repo_id("branch")
    train_and_push_pause_model(tmp_path, repo_id, hub_revision="dev")
    repo = hub.repo(repo_id)
    assert set(repo.head("main").files) == {".gitattributes"} and "README.md" in repo.head("dev").files
    _, _, collator = load_pretrained(repo_id, revision="dev")
    assert collator.num_pause_tokens == 1


def test_lora_adapter_reloads_from_the_hub_and_its_card_keeps_our_tags(hub: LoopbackHub, tmp_path: Path) -> None:
    """peft rewrites an adapter card's tags from the base model's `model_tags`; ours must survive it."""
    repo_id = new_repo_id("lora")
    trainer = train_and_push_pause_model(tmp_path, repo_id, lora=True)
    # the adapter reloads from the Hub onto the base prepared as for training (its pause row starts at the mean
    # embedding, add_pause_tokens) with the trained logits
    tokenizer = AutoTokenizer.from_pretrained(repo_id)
    _, base = add_pause_tokens(build_digit_tokenizer(), tiny_gpt2(build_digit_tokenizer()), 1)
    reloaded = PeftModel.from_pretrained(base, repo_id).eval()
    ids = tokenizer("1 * 2<pause>", return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, trainer.model.eval()(ids).logits)
    card = ModelCard(hub.repo(repo_id).head().files["README.md"].content.decode())
    assert card.data.library_name == "peft" and {"seq-vcr", "pause-tokens", "pause", "lora"} <= set(card.data.tags)
    assert "| `test_exact_match` | 0.5 |" in card.text and "a local dataset" in card.text
    assert card.text.count("- PEFT ") == 1 and "- Transformers " in card.text  # peft found its version line there
    assert card.data.eval_results is None  # model-index entries need a Hub dataset


def test_the_card_names_the_method_the_settings_amount_to(hub: LoopbackHub, tmp_path: Path) -> None:
    """A model that does not record `seqvcr_method` (any model given to the trainer by hand) still gets a card."""
    tokenizer = build_digit_tokenizer()
    repo_id = new_repo_id("m")
    args = SeqVCRConfig(
        tmp_path, use_seqvcr=False, num_pause_tokens=1, report_to="none", push_to_hub=True, hub_model_id=repo_id
    )
    trainer = SeqVCRTrainer(model=tiny_gpt2(tokenizer), args=args, processing_class=tokenizer)
    trainer.push_to_hub()
    card = hub.repo(repo_id).head().files["README.md"].content.decode()
    assert "(method `pause`)" in card


def test_rejected_token_stops_before_training(hub, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", BAD_TOKEN)
    with pytest.raises(SystemExit) as caught:
        main(DEMO, [*BUILD, *SMALL, "--output_dir", str(tmp_path), "--push_to_hub", "--hub_model_id", new_repo_id("x")])
    message = str(caught.value.code)
    assert "HTTP 401" in message and "HF_TOKEN" in message and "hf auth login" in message and BAD_TOKEN not in message
    assert not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob("checkpoint-*"))


def test_missing_token_stops_before_any_work(hub, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN")
    mark = len(hub.requests)
    with pytest.raises(SystemExit, match=r"No Hugging Face token.*HF_TOKEN.*hf auth login"):
        main(DEMO, [*BUILD, *SMALL, "--output_dir", str(tmp_path), "--push_to_hub", "--hub_model_id", new_repo_id("x")])
    assert hub.requests_since(mark) == [] and not (tmp_path / "_dataset").exists()


def test_unreachable_hub_keeps_the_trained_model(hub, monkeypatch, tmp_path: Path) -> None:
    """The Hub goes away after the repo was created: the command fails, naming the reason and the saved model."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    train = SeqVCRTrainer.train

    def train_then_lose_the_network(self, *args, **kwargs):
        result = train(self, *args, **kwargs)
        monkeypatch.setattr(hf_api(), "endpoint", dead)
        return result

    monkeypatch.setattr(SeqVCRTrainer, "train", train_then_lose_the_network)
    repo_id = new_repo_id("offline")
    with pytest.raises(SystemExit) as caught:
        main(
            DEMO,
            [
                *BUILD,
                *SMALL,
                "--max_steps",
                "1",
                "--max_test_samples",
                "2",
                "--output_dir",
                str(tmp_path),
                "--save_strategy",
                "no",
                "--push_to_hub",
                "--hub_model_id",
                repo_id,
            ],
        )
    assert caught.value.code != 0
    message = str(caught.value.code)
    assert "Could not reach" in message and f"local copy is kept at {tmp_path}" in message
    assert AutoModelForCausalLM.from_pretrained(tmp_path) and (tmp_path / "results.json").is_file()
    assert set(hub.repo(repo_id).head().files) == {".gitattributes"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hub_model_id", "no-namespace"], "--hub_model_id 'no-namespace' is not a valid Hub repo id"),
        ([], "--hub_model_id '' is not a valid Hub repo id"),
        (["--hub_model_id", "u/m", "--hub_token", "hf_x"], "--hub_token would be saved in training_args.bin"),
        (["--hub_model_id", "u/m", "--dataset_revision", "v1"], "`--dataset_revision` applies to a Hub"),
    ],
)
def test_bad_hub_flags_are_reported_before_any_work(hub, tmp_path, capsys, argv, message) -> None:
    mark = len(hub.requests)
    with pytest.raises(SystemExit) as caught:
        parse(DEMO, ["--output_dir", str(tmp_path), "--push_to_hub", *argv])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and message in err and "hf_x" not in err
    assert hub.requests_since(mark) == []


def test_a_data_source_flag_replaces_the_configs(tmp_path) -> None:
    script, _, _ = parse(DEMO, ["--dataset_name", "u/data", "--output_dir", str(tmp_path)])
    assert (script.dataset_name, script.build_dataset) == ("u/data", None)
    script, _, _ = parse(DEMO, ["--build_dataset=lis --length 3", "--output_dir", str(tmp_path)])
    assert (script.dataset_name, script.build_dataset) == (None, "lis --length 3")


def test_final_metrics_are_the_last_logged_scores() -> None:
    history = [
        {"loss": 1.0, "eval_loss": 2.0, "eval_runtime": 3.0},
        {"eval_loss": 1.5, "eval_exact_match": 0.25},
        {"test_exact_match": 0.5, "test_per_position_accuracy": [1.0], "epoch": 1.0},
    ]
    assert final_metrics(history) == {"eval_loss": 1.5, "eval_exact_match": 0.25, "test_exact_match": 0.5}


def test_a_looped_model_round_trips_through_the_hub_with_its_layout_in_the_card(hub: LoopbackHub, tmp_path: Path):
    from hf_seqvcr.looped import LoopedLayers, decoder_layers, load_looped

    repo_id, output = new_repo_id("looped"), tmp_path / "looped"
    main(
        DEMO,
        [
            *BUILD,
            *SMALL,
            "--method",
            "seqvcr",
            "--looped",
            "1,3",
            "--max_steps",
            "2",
            "--save_strategy",
            "no",
            "--output_dir",
            str(output),
            "--push_to_hub",
            "--hub_model_id",
            repo_id,
        ],
    )
    card = ModelCard.load(repo_id)
    assert "looped-transformer" in card.data.tags and "looped model (1⊗3)" in card.text
    assert "1 distinct layers at depth 3" in card.text and "saunshi2025reasoning" in card.text
    assert "modeling_looped.py" in hub.repo(repo_id).head().files  # the Trainer's push carries the looping code
    snippet = card.text.split("```python\n")[1].split("```")[0]
    assert "trust_remote_code=True" in snippet
    exec(snippet, {})  # the card's plain-transformers usage runs the repository's own copy of that code
    model, _, collator = load_pretrained(repo_id)
    local = load_looped(output)
    assert isinstance(decoder_layers(model), LoopedLayers) and model.num_parameters() == local.num_parameters()
    ids = torch.tensor([collator.prompt_ids("3 * 4")])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, local(ids).logits)

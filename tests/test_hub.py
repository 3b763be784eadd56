"""Hub round trips against the loopback server: what we publish is what others load, errors are clear."""

from __future__ import annotations

import logging
import socket
import traceback
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import datasets.config
import huggingface_hub.constants
import pytest
import torch
from datasets import Dataset, DatasetDict, load_dataset
from huggingface_hub import DatasetCard, HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

from data_builders.card_merge import BUILDS_KEY, config_section, render_card
from data_builders.publish import push_dataset
from hf_seqvcr import PauseDataCollator, SeqVCRConfig, SeqVCRTrainer, add_pause_tokens
from hf_seqvcr.citations import CITATIONS, METHOD_CITATIONS
from hf_seqvcr.hub import HubPublishError, validate_repo_id
from hf_seqvcr.model_card import framework_versions, render_model_card
from hf_seqvcr.tokenizer import build_digit_tokenizer
from hub_server import BAD_TOKEN, TEST_TOKEN, USER, LoopbackHub
from tiny import tiny_gpt2, tiny_llama

PAUSES = ["<pause>", "<pause>"]
CARD = render_card(
    {"license": "mit", "pretty_name": "Loopback multiplication", BUILDS_KEY: {"4x4": {"seed": 0}}},
    "# Multiplication\n\nFirst card body.\n",
    {"4x4": config_section("4x4", "## Config 4x4\n")},
)


def new_repo_id(kind: str) -> str:
    """The session shares one server: every test gets repos of its own."""
    return f"{USER}/{kind}-{uuid.uuid4().hex[:8]}"


def qa_dataset(start: int) -> DatasetDict:
    def rows(lo: int, hi: int) -> Dataset:
        return Dataset.from_dict(
            {
                "question": [f"{i} * 7" for i in range(lo, hi)],
                "cot": [f"{i} * 7 = {i * 7}" for i in range(lo, hi)],
                "answer": [str(i * 7) for i in range(lo, hi)],
            }
        )

    return DatasetDict(train=rows(start, start + 5), test=rows(start + 5, start + 7))


def assert_same_rows(loaded: DatasetDict, expected: DatasetDict) -> None:
    assert sorted(loaded) == sorted(expected)
    for split in expected:
        assert loaded[split].to_list() == expected[split].to_list()


def readme(hub: LoopbackHub, repo_id: str, branch: str = "main") -> DatasetCard:
    return DatasetCard(hub.repo(repo_id, "dataset").head(branch).files["README.md"].content.decode())


def test_clients_talk_to_loopback_only(hub: LoopbackHub) -> None:
    assert urlsplit(hub.endpoint).hostname == "127.0.0.1"
    assert huggingface_hub.constants.ENDPOINT == datasets.config.HF_ENDPOINT == hub.endpoint


def test_dataset_round_trip_and_second_config_keeps_the_first(hub: LoopbackHub) -> None:
    repo_id = new_repo_id("mult")
    first, second = qa_dataset(0), qa_dataset(100)

    commit = push_dataset(first, repo_id, config_name="4x4", card=CARD)
    assert commit.oid == hub.repo(repo_id, "dataset").head().oid and str(commit).startswith(hub.endpoint)
    assert_same_rows(load_dataset(repo_id, "4x4"), first)

    second_card = render_card(
        {"license": "apache-2.0", BUILDS_KEY: {"5x5": {"seed": 1}}},
        "# Other intro\n",
        {"5x5": config_section("5x5", "## Config 5x5\n")},
    )
    push_dataset(second, repo_id, config_name="5x5", card=second_card)
    card = readme(hub, repo_id)
    assert [c["config_name"] for c in card.data.configs] == ["4x4", "5x5"]
    assert [i["config_name"] for i in card.data.dataset_info] == ["4x4", "5x5"]
    assert card.data.license == ["mit", "apache-2.0"] and card.data.pretty_name == "Loopback multiplication"
    assert card.data.to_dict()[BUILDS_KEY] == {"4x4": {"seed": 0}, "5x5": {"seed": 1}}
    assert card.text.index("First card body") < card.text.index("## Config 4x4") < card.text.index("## Config 5x5")
    assert "Other intro" not in card.text  # the prose before the sections is the first card's
    assert_same_rows(load_dataset(repo_id, "4x4"), first)
    assert_same_rows(load_dataset(repo_id, "5x5"), second)


@pytest.mark.parametrize("private", [True, False])
def test_private_flag_reaches_the_hub(hub: LoopbackHub, private: bool) -> None:
    repo_id = new_repo_id("private" if private else "public")
    push_dataset(qa_dataset(0), repo_id, config_name="default", card=CARD, private=private)
    assert hub.repo(repo_id, "dataset").private is private


def test_push_to_a_new_branch_loads_from_that_revision(hub: LoopbackHub) -> None:
    repo_id = new_repo_id("branch")
    dataset = qa_dataset(0)
    push_dataset(dataset, repo_id, config_name="4x4", card=CARD, revision="v1")
    repo = hub.repo(repo_id, "dataset")
    assert set(repo.head("main").files) == {".gitattributes"}  # main is untouched
    assert "First card body" in readme(hub, repo_id, "v1").text
    assert_same_rows(load_dataset(repo_id, "4x4", revision="v1"), dataset)


def card_for(method: str, model_id: str) -> ModelCard:
    return render_model_card(
        method=method,
        seqvcr_hparams={"lambda_var": 1.0, "lambda_cov": 0.004, "proj_dim": 2048},
        pause_tokens=PAUSES if "pause" in method else [],
        dataset_id=f"{USER}/mult",
        dataset_revision="abc123",
        eval_metrics={"eval_exact_match": 0.995},
        base_model=None,
        model_id=model_id,
        dataset_config="5x5",
    )


def test_model_tokenizer_and_card_round_trip(hub: LoopbackHub) -> None:
    repo_id = new_repo_id("llama")
    tokenizer, _ = add_pause_tokens(build_digit_tokenizer(), None, len(PAUSES))  # with the chat template of the prompt
    model = tiny_llama(tokenizer).eval()
    model.push_to_hub(repo_id)
    tokenizer.push_to_hub(repo_id)
    card = card_for("seqvcr_pause", repo_id)
    card.push_to_hub(repo_id)

    loaded = AutoModelForCausalLM.from_pretrained(repo_id)
    ids = tokenizer("1 2 * 3 4", return_tensors="pt").input_ids
    assert AutoTokenizer.from_pretrained(repo_id)("1 2 * 3 4").input_ids == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    published = ModelCard.load(repo_id)
    assert published.data.to_dict() == card.data.to_dict()
    snippet = published.text.split("```python\n")[1].split("```")[0]
    exec(snippet, {})  # the card's plain-transformers usage runs as written against the published repo


@pytest.mark.parametrize("method", ["vanilla", "cot", "pause", "seqvcr", "seqvcr_pause"])
def test_model_card_yaml_round_trips(method: str, tmp_path) -> None:
    card_for(method, "tester/m").save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.to_dict() == card_for(method, "tester/m").data.to_dict()
    assert {"seq-vcr", "pause-tokens", method} <= set(loaded.data.tags)
    result = loaded.data.eval_results[0]
    assert (result.dataset_revision, result.metric_type, result.metric_value) == ("abc123", "eval_exact_match", 0.995)
    assert ("then 2 pause tokens (one shared token `<pause>`)" in loaded.text) is ("pause" in method)
    assert "apply_chat_template" in loaded.text and "do_sample=False" in loaded.text  # the prompt, greedy
    assert ("`lambda_cov` | `0.004`" in loaded.text) is method.startswith("seqvcr")


@pytest.mark.parametrize("method", ["vanilla", "cot", "pause", "seqvcr", "seqvcr_pause"])
def test_model_card_records_framework_versions_and_cites_the_method(method: str) -> None:
    card = render_model_card(
        method=method,
        seqvcr_hparams={"lambda_var": 1.0},
        pause_tokens=PAUSES if "pause" in method else [],
        dataset_id=None,
        dataset_revision=None,
        eval_metrics={},
        base_model=None,
        model_id="tester/m",
        versions={"hf-seqvcr": "0.1.0", "Transformers": "5.24.0", "PEFT": "0.21.2"},
    )
    assert "### Framework versions\n\n- hf-seqvcr 0.1.0\n- Transformers 5.24.0\n- PEFT 0.21.2\n" in card.text
    keys = METHOD_CITATIONS[method]
    assert [key for key in CITATIONS if CITATIONS[key] in card.text] == sorted(keys, key=list(CITATIONS).index)
    assert ("```bibtex" in card.text) is bool(keys)


def test_framework_versions_are_the_installed_ones_and_name_peft_only_when_used() -> None:
    import peft
    import transformers

    versions = framework_versions()
    assert list(versions) == ["hf-seqvcr", "Transformers", "Pytorch", "Datasets", "Tokenizers", "Accelerate"]
    assert versions["Transformers"] == transformers.__version__ and versions["Pytorch"] == torch.__version__
    assert framework_versions(peft=True) == {**versions, "PEFT": peft.__version__}  # peft's own card line


def test_trainer_card_lists_the_pause_tokens_the_collator_appends(tmp_path) -> None:
    """Distinct pauses with a default config: the card must name `<pause_0>` `<pause_1>`, not `<pause>`, and its
    snippet must prompt exactly as the collator does; a Hub base model is read from `model.name_or_path`."""
    tokenizer, _ = add_pause_tokens(build_digit_tokenizer(), None, 2, distinct=True)
    model = tiny_gpt2(tokenizer)
    model.config.seqvcr_method = "pause"
    model.name_or_path = "tester/base"
    args = SeqVCRConfig(tmp_path, use_seqvcr=False, num_pause_tokens=2, report_to="none")
    trainer = SeqVCRTrainer(model=model, args=args, processing_class=tokenizer)
    assert not args.distinct_pause_embeddings and isinstance(trainer.data_collator, PauseDataCollator)
    trainer.save_model()
    trainer.create_model_card()

    card = ModelCard.load(tmp_path / "README.md")
    assert "`<pause_0>` `<pause_1>`" in card.text and "<pause>" not in card.text
    assert "2 pause tokens (distinct tokens `<pause_0>` `<pause_1>`)" in card.text
    assert card.data.base_model == "tester/base"
    question = "1 2 * 3 4"
    snippet = card.text.split("```python\n")[1].split("```")[0].replace('question = "..."', f"question = {question!r}")
    namespace: dict = {}
    exec(snippet, namespace)  # loads the model and tokenizer saved in tmp_path, as the card's model id says
    prompt_ids = namespace["inputs"]["input_ids"][0].tolist()
    assert prompt_ids == trainer.data_collator.prompt_ids(question)
    assert (
        prompt_ids[-2:]
        == list(trainer.data_collator.pause_ids)
        == tokenizer.convert_tokens_to_ids(["<pause_0>", "<pause_1>"])
    )


@pytest.mark.parametrize(
    ("method", "pauses", "hparams", "error"),
    [
        ("pause", [], {}, "pause_tokens"),
        ("seqvcr", PAUSES, {"lambda_var": 1.0}, "pause_tokens"),
        ("seqvcr", [], {}, "seqvcr_hparams"),
        ("seqvcr-pause", PAUSES, {"lambda_var": 1.0}, "method"),
    ],
)
def test_model_card_rejects_inconsistent_inputs(method: str, pauses: list, hparams: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        render_model_card(
            method=method,
            seqvcr_hparams=hparams,
            pause_tokens=pauses,
            dataset_id="u/d",
            dataset_revision=None,
            eval_metrics={},
            base_model="openai-community/gpt2",
            model_id="u/m",
        )


def test_trainer_every_save_pushes_checkpoints(hub: LoopbackHub, tmp_path) -> None:
    repo_id = new_repo_id("trainer")
    tokenizer = build_digit_tokenizer()
    model = tiny_gpt2(tokenizer)
    ids = tokenizer(["1 2 * 3 4"] * 4).input_ids
    args = TrainingArguments(
        tmp_path,
        push_to_hub=True,
        hub_model_id=repo_id,
        hub_strategy="every_save",
        save_steps=1,
        max_steps=2,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}))
    trainer.train()
    trainer.push_to_hub()

    summaries = [c.summary for c in hub.repo(repo_id).commits.values()]
    assert any(s.startswith("Training in progress") for s in summaries) and summaries[-1] == "End of training"
    loaded = AutoModelForCausalLM.from_pretrained(repo_id)
    x = torch.tensor(ids[:1])
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model.eval()(x).logits)


def test_rejected_token_names_the_fix_and_never_the_token(hub, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_TOKEN", BAD_TOKEN)
    with pytest.raises(HubPublishError) as caught:
        push_dataset(qa_dataset(0), new_repo_id("bad"), config_name="default", card=CARD, local_path=tmp_path)
    message = str(caught.value)
    assert "HTTP 401" in message and "HF_TOKEN" in message and "hf auth login" in message
    assert f"kept at {tmp_path}" in message
    assert BAD_TOKEN not in "".join(traceback.format_exception(caught.value))


def test_missing_token_fails_before_any_request(hub, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    mark = len(hub.requests)
    with pytest.raises(HubPublishError, match=r"HF_TOKEN.*hf auth login"):
        push_dataset(qa_dataset(0), new_repo_id("anon"), config_name="default", card=CARD)
    assert hub.requests_since(mark) == []


def test_unreachable_hub_says_local_data_is_kept(monkeypatch, tmp_path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", dead)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", dead)
    with pytest.raises(HubPublishError, match="Could not reach") as caught:
        push_dataset(qa_dataset(0), new_repo_id("dead"), config_name="default", card=CARD, local_path=tmp_path)
    assert caught.value.local_path == str(tmp_path) and f"local copy is kept at {tmp_path}" in str(caught.value)


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "bad name/x", "user/x--y", "user/x.git", ""])
def test_bad_repo_id_is_rejected_before_any_request(hub: LoopbackHub, repo_id: str) -> None:
    mark = len(hub.requests)
    with pytest.raises(ValueError, match=r"repo_id .* e\.g\. 'your-username/"):
        push_dataset(qa_dataset(0), repo_id, config_name="default", card=CARD)
    assert hub.requests_since(mark) == []
    assert validate_repo_id("user/seqvcr-4x4_v1.0") == "user/seqvcr-4x4_v1.0"


def test_token_stays_out_of_logs_and_cards(hub: LoopbackHub, caplog, capsys) -> None:
    for name in ("huggingface_hub", "datasets", "hf_seqvcr"):
        caplog.set_level(logging.DEBUG, logger=name)
    repo_id = new_repo_id("secret")
    commit = push_dataset(qa_dataset(0), repo_id, config_name="default", card=CARD)
    assert caplog.text  # the libraries did log at debug level
    published = b"".join(f.content for f in hub.repo(repo_id, "dataset").head().files.values())
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err, str(commit), published.decode(errors="replace")):
        assert TEST_TOKEN not in text
    assert {r.token for r in hub.requests if repo_id in r.path} == {TEST_TOKEN}  # it was sent, though


def test_server_auth_modes(hub: LoopbackHub, monkeypatch) -> None:
    """Anonymous reads work unless `require_token`; private repos stay hidden from anonymous readers."""
    api = HfApi()
    public, private = new_repo_id("open"), new_repo_id("closed")
    for repo_id in (public, private):
        api.create_repo(repo_id, private=repo_id == private)
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id=repo_id)
    assert Path(hf_hub_download(public, "a.txt", token=False)).read_bytes() == b"hello"
    assert api.repo_info(private).private and not api.repo_info(public).private
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info(private, token=False)
    monkeypatch.setattr(hub, "require_token", True)
    with pytest.raises(HfHubHTTPError) as caught:
        api.repo_info(public, token=False)
    assert caught.value.response.status_code == 401


def test_model_card_of_a_loop_regularized_run_names_its_settings_and_cites_the_paper():
    from hf_seqvcr.model_card import render_model_card

    vanilla = dict(
        method="vanilla",
        seqvcr_hparams={},
        pause_tokens=[],
        dataset_id=None,
        dataset_revision=None,
        eval_metrics={},
        base_model=None,
        model_id="u/m",
    )
    card = render_model_card(**vanilla, loopreg={"loopreg_lambda": 10.0, "loopreg_block": 4})
    assert "### Loop regularizer" in card.text and "| `loopreg_lambda` | `10.0` |" in card.text
    assert "looped-transformer" in card.data.tags and "@inproceedings{saunshi2025reasoning" in card.text
    plain = render_model_card(**vanilla)
    assert "Loop" not in plain.text and "looped-transformer" not in plain.data.tags

"""The whole path learns: a tiny model from scratch with Seq-VCR and 2 pause tokens masters held-out addition."""

import time

import pytest
import torch

from hf_seqvcr import SeqVCRConfig, SeqVCRTrainer, add_pause_tokens, build_digit_tokenizer
from tiny import addition_splits, tiny_llama


@pytest.fixture
def two_threads():
    """Both cores for this test alone: the setting is process-wide, so the tests after it get their own back."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow
def test_seqvcr_with_pauses_reaches_90_percent_exact_match_on_held_out_addition(tmp_path, two_threads):
    tokenizer = build_digit_tokenizer()
    tokenizer, model = add_pause_tokens(tokenizer, tiny_llama(tokenizer, hidden=64, layers=2), num=2)
    train, test = addition_splits(digits=2, train=2000, test=200)
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    args = SeqVCRConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=32,
        learning_rate=3e-3,
        weight_decay=0.0,
        num_train_epochs=12,
        lr_scheduler_type="cosine",
        warmup_steps=20,
        seqvcr_proj_dim=128,
        num_pause_tokens=2,
        logging_steps=50,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=42,
    )
    # 12 epochs: with transformers 5.25 the former 8 reached 79 % (on the code before and after issue 17 alike, whose
    # first 40 steps log the same losses); 12 reach 99 % in ~110 s on 2 idle cores.
    trainer = SeqVCRTrainer(model=model, args=args, train_dataset=train, eval_dataset=test, processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    metrics = trainer.evaluate()
    print(
        f"trained and evaluated in {time.perf_counter() - start:.0f} s: {metrics['eval_exact_match']:.1%} exact match"
    )
    assert metrics["eval_exact_match"] >= 0.9
    assert all("seqvcr_var" in log for log in trainer.state.log_history if "loss" in log)

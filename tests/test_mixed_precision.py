"""`--bf16` (autocast) runs the transformer in bf16 while the Seq-VCR head and statistics stay in fp32
(docs/method.md §1)."""

import math

import torch

from hf_seqvcr import SeqVCRTrainer, build_digit_tokenizer
from hf_seqvcr.projection import PROJECTIONS_KEY
from tiny import addition_splits, sgd_config, tiny_llama


def test_bf16_autocast_keeps_the_projections_in_fp32(tmp_path):
    tokenizer = build_digit_tokenizer()
    model = tiny_llama(tokenizer)
    rows, _ = addition_splits(digits=2, train=4, test=0)
    trainer = SeqVCRTrainer(
        model=model, args=sgd_config(tmp_path, bf16=True), train_dataset=rows, processing_class=tokenizer
    )
    seen = {}
    model.model.layers[0].mlp.register_forward_hook(lambda module, args, output: seen.update(mlp=output.dtype))
    model.register_forward_hook(lambda module, args, output: seen.update(projection=output[PROJECTIONS_KEY][0].dtype))
    trainer.train()
    assert seen == {"mlp": torch.bfloat16, "projection": torch.float32}
    assert math.isfinite(trainer.state.log_history[0]["seqvcr"])

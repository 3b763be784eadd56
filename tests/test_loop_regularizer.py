"""The looping-inspired regularizer against Eq. 3 written out pair by pair."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

from hf_seqvcr.looped import LoopLayout, decoder_layers, looped_from_config
from hf_seqvcr.loopreg import loop_regularizer, weight_groups

LLAMA_MATRICES = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
]
GPT2_MATRICES = ["attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"]


def llama(layers: int = 6) -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=layers, num_attention_heads=2
    )
    return AutoModelForCausalLM.from_config(config, dtype=torch.float64)


def gpt2(layers: int = 6) -> torch.nn.Module:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=32, n_embd=16, n_layer=layers, n_head=2, n_positions=16, bos_token_id=1, eos_token_id=2
    )
    return AutoModelForCausalLM.from_config(config, dtype=torch.float64)


MODELS = {"llama": llama, "gpt2": gpt2}


def literal_penalty(model: torch.nn.Module, block: int, lambda_reg: float, groups: list[str]) -> torch.Tensor:
    """Eq. 3 as printed, R_G = 1/(L−k) Σ_i Σ_j cos(θ^(ik+j), θ^((i+1)k+j)), with the sign that pulls layers together."""
    layers = decoder_layers(model)
    num_layers = len(layers)
    penalty = 0
    for group in groups:
        total = 0
        for i in range(num_layers // block - 1):
            for j in range(block):
                a = layers[i * block + j].get_parameter(group).flatten()
                b = layers[(i + 1) * block + j].get_parameter(group).flatten()
                total = total + torch.dot(a, b) / (a.norm() * b.norm())
        penalty = penalty + (1 - total / (num_layers - block))
    return lambda_reg * penalty / len(groups)


def gradients(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    """d loss / d every parameter, zeros where the loss does not depend on it."""
    names, params = zip(*model.named_parameters(), strict=True)
    return dict(zip(names, torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True), strict=True))


def test_groups_are_the_weight_matrices():
    assert weight_groups(decoder_layers(llama())[0]) == LLAMA_MATRICES
    assert weight_groups(decoder_layers(gpt2())[0]) == GPT2_MATRICES
    llama_norms = ["input_layernorm.weight", "post_attention_layernorm.weight"]
    assert sorted(weight_groups(decoder_layers(llama())[0], include_norms=True)) == sorted(LLAMA_MATRICES + llama_norms)
    assert sorted(weight_groups(decoder_layers(gpt2())[0], include_norms=True)) == sorted(
        [*GPT2_MATRICES, "ln_1.weight", "ln_2.weight"]
    )


@pytest.mark.parametrize("include_norms", [False, True])
@pytest.mark.parametrize("block", [1, 2, 3])
@pytest.mark.parametrize("arch", MODELS)
def test_value_and_gradient_match_the_pairwise_loop(arch, block, include_norms):
    model = MODELS[arch]()
    groups = weight_groups(decoder_layers(model)[0], include_norms=include_norms)
    with torch.no_grad():  # give the norm weights something to compare: they start as identical ones
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    got = loop_regularizer(model, block=block, lambda_reg=10.0, include_norms=include_norms)
    want = literal_penalty(model, block, 10.0, groups)
    torch.testing.assert_close(got.loss, want, rtol=0, atol=1e-12)
    assert list(got.cosine) == groups
    for group, cosine in got.cosine.items():
        torch.testing.assert_close(1 - cosine, literal_penalty(model, block, 1.0, [group]), rtol=0, atol=1e-12)
    got_grads, want_grads = gradients(model, got.loss), gradients(model, want)
    for name, grad in got_grads.items():
        torch.testing.assert_close(grad, want_grads[name], rtol=0, atol=1e-12, msg=name)


def test_selected_groups():
    model = llama()
    selected = ["mlp.up_proj.weight", "self_attn.q_proj.weight"]
    got = loop_regularizer(model, block=2, lambda_reg=1.0, groups=selected)
    assert list(got.cosine) == selected
    torch.testing.assert_close(got.loss, literal_penalty(model, 2, 1.0, selected), rtol=0, atol=1e-12)


def test_zero_lambda_is_exactly_zero_with_zero_gradient():
    model = llama()
    got = loop_regularizer(model, block=2, lambda_reg=0.0)
    assert got.loss.item() == 0.0
    assert all(torch.count_nonzero(grad) == 0 for grad in gradients(model, got.loss).values())
    assert all(-1 < cosine < 1 for cosine in got.cosine.values())  # still measured, for logging


@pytest.mark.parametrize("lambda_reg", [10.0, 0.0])
def test_sgd_on_the_regularizer_raises_the_cosines(lambda_reg):
    model = llama()
    before = loop_regularizer(model, block=2, lambda_reg=lambda_reg).cosine
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        loop_regularizer(model, block=2, lambda_reg=lambda_reg).loss.backward()
        optimizer.step()
    after = loop_regularizer(model, block=2, lambda_reg=lambda_reg).cosine
    for group in before:
        if lambda_reg:
            assert after[group] > before[group] + 0.5, group
        else:  # the control: no pull, no change
            assert torch.equal(after[group], before[group]), group


def test_through_a_peft_wrapper():
    model = get_peft_model(llama(), LoraConfig(target_modules=["q_proj"], r=2))
    got = loop_regularizer(model, block=2, lambda_reg=1.0, groups=["self_attn.q_proj.base_layer.weight"])
    torch.testing.assert_close(
        got.loss, literal_penalty(model, 2, 1.0, ["self_attn.q_proj.base_layer.weight"]), rtol=0, atol=1e-12
    )
    assert torch.isfinite(loop_regularizer(model, block=2, lambda_reg=1.0).loss)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(block=2, lambda_reg=-1.0), "`lambda_reg` must be >= 0"),
        (dict(block=0, lambda_reg=1.0), "`block` .* use >= 1"),
        (dict(block=4, lambda_reg=1.0), "`block`=4 does not divide the model's 6 layers; use a divisor of 6"),
        (dict(block=6, lambda_reg=1.0), "`block`=6 leaves a single block .* use block <= 3"),
        (dict(block=2, lambda_reg=1.0, groups=["q_proj"]), r"`groups` must name .*'mlp.up_proj.weight'.*'q_proj'"),
        (dict(block=2, lambda_reg=1.0, groups=[]), "`groups` must name some"),
    ],
)
def test_bad_input(arguments, message):
    with pytest.raises(ValueError, match=message):
        loop_regularizer(llama(), **arguments)


def test_rejects_a_looped_model():
    config = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2
    )
    with pytest.raises(ValueError, match="already looped"):
        loop_regularizer(looped_from_config(config, LoopLayout(block=2, loops=3)), block=2, lambda_reg=1.0)


def test_a_layout_without_loops_is_an_ordinary_model():
    """(4⊗1) (recipes/phop/loopreg.yaml) applies each layer once: regularized exactly as the unlooped model."""
    plain = llama(layers=4)
    config = plain.config
    looped = looped_from_config(config, LoopLayout(block=4, loops=1))
    looped.load_state_dict(plain.state_dict())
    expected = loop_regularizer(plain, block=1, lambda_reg=10.0)
    got = loop_regularizer(looped, block=1, lambda_reg=10.0)
    torch.testing.assert_close(got.loss, expected.loss)
    assert got.cosine.keys() == expected.cosine.keys()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(loopreg_lambda=-1.0), "loopreg_lambda.*>= 0"),
        (dict(loopreg_lambda=float("nan")), "loopreg_lambda.*finite"),
        (dict(loopreg_block=0), "loopreg_block.*>= 1"),
    ],
)
def test_config_rejects_bad_settings_with_the_field_name(tmp_path, overrides, message):
    from hf_seqvcr import SeqVCRConfig

    with pytest.raises(ValueError, match=message):
        SeqVCRConfig(output_dir=str(tmp_path), report_to=[], **overrides)


def test_bf16_weights_are_compared_in_fp32():
    model = llama(layers=4).to(torch.bfloat16)
    out = loop_regularizer(model, block=2, lambda_reg=1.0)
    reference = loop_regularizer(model.float(), block=2, lambda_reg=1.0)
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, reference.loss)

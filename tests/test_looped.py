"""Looped models against the slow reference: an unrolled model whose layers are copies of the shared ones."""

import copy
import inspect
import json
import re

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointWrapper,
    apply_activation_checkpointing,
    checkpoint_wrapper,
)
from transformers import AutoModel, AutoModelForCausalLM, DynamicCache, GPT2Config, LlamaConfig, MistralConfig

from hf_seqvcr.looped import (
    LoopLayout,
    decoder_layers,
    load_looped,
    loop_model,
    looped_from_config,
)
from hf_seqvcr.modeling_looped import use_cache_slot

VOCAB = 48
TOKEN_IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
PLAIN = LoopLayout(block=2, loops=3)
MIDDLE = LoopLayout(prefix=1, block=2, loops=2, suffix=1)


def llama_config(layers: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        **TOKEN_IDS,
    )


def gpt2_config(layers: int) -> GPT2Config:
    return GPT2Config(
        vocab_size=VOCAB,
        n_embd=32,
        n_layer=layers,
        n_head=2,
        n_positions=64,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **TOKEN_IDS,
    )


CONFIGS = {"llama": llama_config, "gpt2": gpt2_config}
CASES = [(arch, layout) for arch in CONFIGS for layout in (PLAIN, MIDDLE)]
CASE_IDS = [f"{arch}-{name}" for arch in CONFIGS for name in ("plain", "middle")]


def unrolled_state_dict(looped: torch.nn.Module, layout: LoopLayout) -> dict[str, torch.Tensor]:
    """The looped weights with each unique layer copied to every effective position that applies it."""
    state = {}
    for key, value in looped.state_dict().items():
        match = re.fullmatch(r"(.*\.(?:layers|h))\.(\d+)\.(.*)", key)
        if match is None:
            state[key] = value.clone()
            continue
        owner, unique, rest = match.group(1), int(match.group(2)), match.group(3)
        for effective, applied in enumerate(layout.schedule):
            if applied == unique:
                state[f"{owner}.{effective}.{rest}"] = value.clone()
    return state


def looped_and_unrolled(arch: str, layout: LoopLayout):
    torch.manual_seed(0)
    looped = looped_from_config(CONFIGS[arch](layout.unique_layers), layout, dtype=torch.float64).eval()
    unrolled = AutoModelForCausalLM.from_config(CONFIGS[arch](layout.effective_layers), dtype=torch.float64).eval()
    unrolled.load_state_dict(unrolled_state_dict(looped, layout))  # strict: every unrolled layer gets a copy
    return looped, unrolled


def prompts(batch: int = 2, length: int = 7) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(1))


def test_layout_counts_schedule_and_name():
    middle = LoopLayout(prefix=4, block=4, loops=4, suffix=4)  # the paper's "(4⊗1, 4, 1)"
    assert (middle.unique_layers, middle.effective_layers) == (12, 24)
    assert middle.schedule == (0, 1, 2, 3, *(4, 5, 6, 7) * 4, 8, 9, 10, 11)
    assert str(middle) == "4 + (4⊗4) + 4"
    assert str(LoopLayout(block=4, loops=6)) == "(4⊗6)"
    assert LoopLayout(block=4, loops=6).schedule == (0, 1, 2, 3) * 6


@pytest.mark.parametrize("arch", CONFIGS)
def test_attention_picks_cache_slot_by_layer_idx(arch):
    """Pins the transformers internal `use_cache_slot` relies on: attention writes to cache slot `layer_idx`."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch](2), dtype=torch.float64).eval()
    ids = prompts()
    cache_kwarg = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    )  # 5.24 renamed it
    straight = DynamicCache(config=model.config)
    model(ids, **{cache_kwarg: straight}, use_cache=True)
    first, second = decoder_layers(model)
    use_cache_slot(first, 1)
    use_cache_slot(second, 0)
    swapped = DynamicCache(config=model.config)
    model(ids, **{cache_kwarg: swapped}, use_cache=True)
    assert torch.equal(swapped.layers[1].keys, straight.layers[0].keys)
    assert torch.equal(swapped.layers[0].values, straight.layers[1].values)


@pytest.mark.parametrize(("arch", "layout"), CASES, ids=CASE_IDS)
def test_forward_equals_unrolled_model(arch, layout):
    looped, unrolled = looped_and_unrolled(arch, layout)
    ids = prompts()
    got = looped(ids, output_hidden_states=True)
    want = unrolled(ids, output_hidden_states=True)
    torch.testing.assert_close(got.logits, want.logits, rtol=0, atol=1e-10)
    assert len(got.hidden_states) == layout.effective_layers + 1
    for got_state, want_state in zip(got.hidden_states, want.hidden_states, strict=True):
        torch.testing.assert_close(got_state, want_state, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("arch", "layout"), CASES, ids=CASE_IDS)
def test_cached_generation_equals_uncached_and_unrolled(arch, layout):
    looped, unrolled = looped_and_unrolled(arch, layout)
    ids = prompts()
    greedy = dict(max_new_tokens=6, do_sample=False, pad_token_id=0, output_logits=True, return_dict_in_generate=True)
    cached = looped.generate(ids, use_cache=True, **greedy)
    references = looped.generate(ids, use_cache=False, **greedy), unrolled.generate(ids, use_cache=True, **greedy)
    for reference in references:
        assert torch.equal(cached.sequences, reference.sequences)
        torch.testing.assert_close(cached.logits, reference.logits, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("arch", "layout"), CASES, ids=CASE_IDS)
def test_shared_gradients_are_the_sum_over_applications(arch, layout):
    looped, unrolled = looped_and_unrolled(arch, layout)
    ids = prompts()
    looped(ids, labels=ids).loss.backward()
    unrolled(ids, labels=ids).loss.backward()
    summed = {}
    for name, param in unrolled.named_parameters():
        match = re.fullmatch(r"(.*\.(?:layers|h))\.(\d+)\.(.*)", name)
        if match is not None:
            name = f"{match.group(1)}.{layout.schedule[int(match.group(2))]}.{match.group(3)}"
        summed[name] = summed.get(name, 0) + param.grad
    looped_grads = {name: param.grad for name, param in looped.named_parameters()}
    assert looped_grads.keys() == summed.keys()
    for name, grad in looped_grads.items():
        torch.testing.assert_close(grad, summed[name], rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize(("arch", "layout"), CASES, ids=CASE_IDS)
def test_parameters_are_stored_once(arch, layout):
    looped = looped_from_config(CONFIGS[arch](layout.unique_layers), layout)
    iso_param = AutoModelForCausalLM.from_config(CONFIGS[arch](layout.unique_layers))
    assert looped.num_parameters() == iso_param.num_parameters()
    assert looped.state_dict().keys() == iso_param.state_dict().keys()
    assert len(decoder_layers(looped)) == looped.config.num_hidden_layers == layout.effective_layers


@pytest.mark.parametrize(("arch", "layout"), CASES, ids=CASE_IDS)
def test_save_and_reload(arch, layout, tmp_path):
    looped, _ = looped_and_unrolled(arch, layout)
    looped.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["loop_layout"] == {
        "block": layout.block,
        "loops": layout.loops,
        "prefix": layout.prefix,
        "suffix": layout.suffix,
    }
    assert config["num_hidden_layers" if arch == "llama" else "n_layer"] == layout.effective_layers

    reloaded = load_looped(tmp_path, dtype=torch.float64).eval()
    ids = prompts()  # not bit-equal: BLAS rounds differently on the memory-mapped weights' alignment (~1e-17)
    torch.testing.assert_close(reloaded(ids).logits, looped(ids).logits, rtol=0, atol=1e-12)
    assert reloaded.num_parameters() == looped.num_parameters()


@pytest.mark.parametrize("arch", CONFIGS)
def test_a_checkpoint_saved_before_looped_classes_existed_loads_looped(arch, tmp_path):
    """Earlier versions saved the unlooped model type with `loop_layout` and no code; load_looped still loops it."""
    looped, _ = looped_and_unrolled(arch, MIDDLE)
    looped.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("auto_map")
    config["model_type"] = arch
    config["architectures"] = [{"llama": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel"}[arch]]
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "modeling_looped.py").unlink()
    reloaded = load_looped(tmp_path, dtype=torch.float64).eval()
    ids = prompts()
    torch.testing.assert_close(reloaded(ids).logits, looped(ids).logits, rtol=0, atol=1e-12)


def test_with_hf_seqvcr_imported_plain_auto_loading_gives_the_looped_model(tmp_path):
    """hf_seqvcr.looped registers its classes, so no remote code runs (tests/test_looped_remote_code.py: without it)."""
    looped = looped_from_config(llama_config(MIDDLE.unique_layers), MIDDLE, dtype=torch.float64).eval()
    looped.save_pretrained(tmp_path)
    plain, info = AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True, dtype=torch.float64)
    assert type(plain) is type(looped) and not info["missing_keys"]
    ids = prompts()
    torch.testing.assert_close(plain(ids).logits, looped(ids).logits, rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", CONFIGS)
def test_activation_checkpointing_wraps_every_application(arch):
    """torch's activation checkpointing replaces each layer in its ModuleList by a wrapper; the looped model runs the
    wrapper on every application (it used to keep the bare layers and run the wrappers 0 times), the wrapped layer
    is recomputed in backward, with the cache slot of the application recomputed (the cache is on), and the
    gradients are the unwrapped model's."""
    layout = LoopLayout(block=2, loops=2)
    looped, _ = looped_and_unrolled(arch, layout)
    wrapped = copy.deepcopy(looped)
    unique = set(decoder_layers(wrapped).children())
    apply_activation_checkpointing(wrapped, checkpoint_wrapper_fn=checkpoint_wrapper, check_fn=unique.__contains__)
    wrappers = list(decoder_layers(wrapped).children())
    assert all(isinstance(wrapper, CheckpointWrapper) for wrapper in wrappers)
    wrapper_calls, layer_calls = [], []
    for wrapper in wrappers:
        wrapper.register_forward_pre_hook(lambda *_: wrapper_calls.append(1))
        wrapper._checkpoint_wrapped_module.register_forward_pre_hook(lambda *_: layer_calls.append(1))
    ids = prompts()
    looped(ids, labels=ids, use_cache=True).loss.backward()
    wrapped(ids, labels=ids, use_cache=True).loss.backward()
    assert len(wrapper_calls) == layout.effective_layers
    assert len(layer_calls) == 2 * layout.effective_layers  # forward, and the recomputation in backward
    want = {name.replace("._checkpoint_wrapped_module", ""): p.grad for name, p in wrapped.named_parameters()}
    for name, param in looped.named_parameters():
        torch.testing.assert_close(param.grad, want[name], rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(block=0, loops=2), "`block` .* use >= 1"),
        (dict(block=2, loops=0), "`loops` .* use >= 1"),
        (dict(block=2, loops=2, prefix=-1), "`prefix` .* use 0 for none"),
        (dict(block=2, loops=2, suffix=-1), "`suffix` .* use 0 for none"),
    ],
)
def test_bad_layout(arguments, message):
    with pytest.raises(ValueError, match=message):
        LoopLayout(**arguments)


def test_layout_must_match_the_layer_count():
    message = r"`layout` \(2⊗3\) has 2 unique layers but the config has num_hidden_layers=6; set num_hidden_layers=2"
    with pytest.raises(ValueError, match=message):
        looped_from_config(llama_config(6), PLAIN)
    with pytest.raises(ValueError, match=message):
        loop_model(AutoModelForCausalLM.from_config(llama_config(6)), PLAIN)


def test_unsupported_architecture():
    config = MistralConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
    )
    with pytest.raises(ValueError, match="supports model types gpt2, llama; got 'mistral'"):
        looped_from_config(config, PLAIN)


def test_looping_needs_a_causal_lm_class():
    """Only the classes with a looped counterpart can be looped (and then saved with their looping code)."""
    with pytest.raises(ValueError, match="Looping needs a GPT2LMHeadModel or LlamaForCausalLM; got LlamaModel"):
        loop_model(AutoModel.from_config(llama_config(2)), PLAIN)


def test_looping_twice():
    looped = looped_from_config(llama_config(2), PLAIN)
    with pytest.raises(ValueError, match="already looped"):
        loop_model(looped, LoopLayout(block=6, loops=1))


def test_load_looped_needs_a_looped_checkpoint(tmp_path):
    AutoModelForCausalLM.from_config(llama_config(2)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"not a looped checkpoint; load it with AutoModelForCausalLM.from_pretrained"):
        load_looped(tmp_path)


def test_the_probe_accepts_a_looped_checkpoint(tmp_path):
    """Its model type is hf-seqvcr's own (`looped_llama`), which transformers' static name table lacks."""
    from hf_seqvcr.scripts.probe import load_config

    looped_from_config(llama_config(PLAIN.unique_layers), PLAIN).save_pretrained(tmp_path)
    assert load_config(str(tmp_path)).loop_layout == {"block": 2, "loops": 3, "prefix": 0, "suffix": 0}


@pytest.mark.parametrize("arch", CONFIGS)
def test_lora_defaults_to_the_unlooped_models_targets(arch):
    """peft picks default LoRA targets by model type; a looped model's must get its unlooped type's."""

    def default_targets(model):
        return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=2)).peft_config["default"].target_modules

    plain = AutoModelForCausalLM.from_config(CONFIGS[arch](PLAIN.unique_layers))
    looped = looped_from_config(CONFIGS[arch](PLAIN.unique_layers), PLAIN)
    assert default_targets(looped) == default_targets(plain)

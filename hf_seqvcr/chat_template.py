"""Chat templates that render exactly the prompt a model was trained on, so plain transformers answers as it learned.

`apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True)` (and
`pipeline("text-generation")` with chat messages) then gives `PauseDataCollator.prompt_ids(q)`:

- question/answer training: `[bos] question <eos> [pauses]`, the collator's layout (the BOS rule of
  `prompt.prompt_prefix_ids`); an assistant message renders as `[pauses] answer <eos>`, the training target;
- conversational training (the tokenizer came with a chat template): that template, unchanged, with the pauses
  after its generation prompt.

A template is text, so the tokenizer must encode the text after a special token as it encodes that text alone
(byte-level BPE, WordLevel and per-segment Metaspace, as in LLaMA-2's and Mistral's tokenizer.json, do; Metaspace
with `prepend_scheme="first"` does not): `set_pause_chat_template` checks this and refuses otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from .prompt import build_prompt_ids, prompt_prefix_ids

QA_MARKER = "{#- hf-seqvcr question/answer prompt: [bos] question <eos> [pauses], as PauseDataCollator -#}"
PAUSES_MARKER = "{# hf-seqvcr: the pause tokens follow the generation prompt #}"
PROBE = [{"role": "user", "content": "12 + 34"}]


def qa_chat_template(prefix: str, eos: str, pauses: str) -> str:
    """The question/answer template; `prefix`, `eos` and `pauses` are the token strings to render."""
    prefix, eos, pauses = (json.dumps(text, ensure_ascii=False) for text in (prefix, eos, pauses))
    return (
        QA_MARKER
        + "{%- for message in messages -%}"
        + f"{{%- if message['role'] == 'user' -%}}{{{{- {prefix} + message['content'] + {eos} -}}}}"
        + f"{{%- elif message['role'] == 'assistant' -%}}{{{{- {pauses} + message['content'] + {eos} -}}}}"
        + "{%- else -%}{{- raise_exception('This model was trained on questions and answers: pass user and "
        "assistant messages only.') -}}{%- endif -%}"
        + "{%- endfor -%}"
        + f"{{%- if add_generation_prompt -%}}{{{{- {pauses} -}}}}{{%- endif -%}}"
    )


def conversational_chat_template(template: str, pauses: str) -> str:
    """`template` (a model's own chat format) with `pauses` rendered after its generation prompt."""
    pauses = json.dumps(pauses, ensure_ascii=False)
    return template + PAUSES_MARKER + f"{{% if add_generation_prompt %}}{{{{ {pauses} }}}}{{% endif %}}"


def has_foreign_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the tokenizer carries a chat template of its own (a chat model's), not one this module wrote."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and QA_MARKER not in template


def set_pause_chat_template(
    tokenizer: PreTrainedTokenizerBase, pauses: Sequence[int | str], *, conversational: bool
) -> PreTrainedTokenizerBase:
    """Give `tokenizer` the chat template of the prompt it trains with; `pauses` are the pause ids or tokens, in
    order. It is saved by `save_pretrained` with the tokenizer (checked: the rendered prompt tokenizes back to the
    training prompt; a tokenizer for which it cannot is refused with the reason).

    `conversational=True` keeps the tokenizer's chat template and renders the pauses after its generation prompt;
    `False` writes the question/answer template (replacing any other).
    """
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no eos token; set `tokenizer.eos_token` (it ends every question)")
    tokens = [tokenizer.convert_ids_to_tokens(p) if isinstance(p, int) else p for p in pauses]
    pause_text = "".join(tokens)
    previous = tokenizer.chat_template
    if conversational:
        if not has_foreign_chat_template(tokenizer):
            raise ValueError("conversational=True extends the tokenizer's own chat template, and it has none; "
                             "pass conversational=False for question/answer training.")  # fmt: skip
        base = previous.split(PAUSES_MARKER, 1)[0]  # extended before: extend the model's own template afresh
        plain = tokenizer.apply_chat_template(PROBE, add_generation_prompt=True, tokenize=False, chat_template=base)
        tokenizer.chat_template = conversational_chat_template(base, pause_text)
        expected = tokenizer(plain + pause_text, add_special_tokens=False)["input_ids"]
    else:
        prefix = prompt_prefix_ids(tokenizer)
        tokenizer.chat_template = qa_chat_template(
            "".join(tokenizer.convert_ids_to_tokens(prefix)), tokenizer.eos_token, pause_text
        )
        expected = build_prompt_ids(tokenizer, PROBE[0]["content"], tokenizer.convert_tokens_to_ids(tokens), prefix)
    rendered = tokenizer.apply_chat_template(PROBE, add_generation_prompt=True, tokenize=True, return_dict=False)
    if list(rendered) != expected:
        tokenizer.chat_template = previous
        raise ValueError(
            f"The chat template would not reproduce the training prompt with this tokenizer ({rendered} instead of "
            f"{expected}: it encodes text after a special token differently from text alone); build prompts with "
            "`PauseDataCollator.prompt_ids` instead."
        )
    return tokenizer

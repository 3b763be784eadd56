"""Chat templates that render exactly the prompt a model was trained on, so plain transformers answers as it learned.

`apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True)` (and
`pipeline("text-generation")` with chat messages) then gives `PauseDataCollator.prompt_ids(q)`:

- question/answer training: `[bos] question <eos> [pauses]`, the collator's layout (the BOS rule of
  `prompt.prompt_prefix_ids`); an assistant message renders as `[pauses] answer <eos>`, the training target;
- conversational training (the tokenizer came with a chat template): that template, unchanged, with the pauses
  after its generation prompt.

A template is text, re-encoded by the tokenizer: `set_pause_chat_template` writes one whose rendering encodes to
exactly the training prompt (for SentencePiece vocabularies that mark only a text's first word, with a space before
each message, see `qa_chat_template`), checks it, and refuses a tokenizer for which none does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from .prompt import build_prompt_ids, prompt_prefix_ids

QA_MARKER = "{#- hf-seqvcr question/answer prompt: [bos] question <eos> [pauses], as PauseDataCollator -#}"
PAUSES_MARKER = "{# hf-seqvcr: the pause tokens follow the generation prompt #}"
PROBES = ("12 + 34", " 7")  # a text, and one that starts with a space


def qa_chat_template(prefix: str, eos: str, pauses: str, *, space_before_text: bool = False) -> str:
    """The question/answer template; `prefix`, `eos` and `pauses` are the token strings to render.

    `space_before_text` puts a space before a message that does not start with one: a SentencePiece tokenizer that
    marks only a text's first word (`prepend_scheme="first"`, transformers' `LlamaTokenizer`) reads it as the `▁`
    that the text encoded alone starts with, and that it does not add after a special token.
    """
    prefix, eos, pauses = (json.dumps(text, ensure_ascii=False) for text in (prefix, eos, pauses))
    content = "message['content']"
    if space_before_text:
        content = f"(' ' if not {content}.startswith(' ') else '') + {content}"
    return (
        QA_MARKER
        + "{%- for message in messages -%}"
        + f"{{%- if message['role'] == 'user' -%}}{{{{- {prefix} + {content} + {eos} -}}}}"
        + f"{{%- elif message['role'] == 'assistant' -%}}{{{{- {pauses} + {content} + {eos} -}}}}"
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
            raise ValueError(
                "conversational=True extends the tokenizer's own chat template, and it has none; "
                "pass conversational=False for question/answer training."
            )
        base = previous.split(PAUSES_MARKER, 1)[0]  # extended before: extend the model's own template afresh
        candidates = [conversational_chat_template(base, pause_text)]
        texts = [
            tokenizer.apply_chat_template(_user(probe), add_generation_prompt=True, tokenize=False, chat_template=base)
            + pause_text
            for probe in PROBES
        ]
        expected = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    else:
        prefix = prompt_prefix_ids(tokenizer)
        strings = ("".join(tokenizer.convert_ids_to_tokens(prefix)), tokenizer.eos_token, pause_text)
        candidates = [qa_chat_template(*strings, space_before_text=space) for space in (False, True)]
        pause_ids = tokenizer.convert_tokens_to_ids(tokens)
        expected = [build_prompt_ids(tokenizer, probe, pause_ids, prefix) for probe in PROBES]
    for template in candidates:
        rendered = [
            tokenizer.apply_chat_template(
                _user(probe), add_generation_prompt=True, tokenize=True, return_dict=False, chat_template=template
            )
            for probe in PROBES
        ]
        if [list(ids) for ids in rendered] == expected:
            tokenizer.chat_template = template
            return tokenizer
    raise ValueError(
        f"The chat template would not reproduce the training prompt with this tokenizer ({list(rendered[0])} "
        f"instead of {expected[0]}: it encodes text after a special token differently from text alone); build "
        "prompts with `PauseDataCollator.prompt_ids` instead."
    )


def _user(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]

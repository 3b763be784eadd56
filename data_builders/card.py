"""Dataset cards (README.md with YAML metadata) that say exactly how a config was made.

Each config gets its own marked section and ``seqvcr_builds:`` entry, merged per config by
`card_merge.merge_cards` (shared with the Hub upload), so rebuilding one config rewrites only its
own parts of the card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from hf_seqvcr.citations import bibtex
from hf_seqvcr.schema import COLUMNS

from .card_merge import BUILDS_KEY, config_section, merge_cards, render_card
from .layout import config_entry
from .splits import to_line

_HEADER = """# hf-seqvcr task data

Built by the `data_builders` package of hf-seqvcr (Seq-VCR regularizer and pause tokens for the Hugging Face
Trainer). Every config has the same columns, `question`, `cot` (chain of thought, may be empty) and
`answer`, all strings; `question||cot #### answer` is Deng et al.'s one-line text format.
Load a config with `datasets.load_dataset(<this repo or directory>, "<config name>")`.

"""


def dataset_card(
    *,
    config_name: str,
    task: str,
    summary: str,
    example: Mapping[str, str],
    parameters: Mapping[str, object],
    seed: int,
    split_sizes: Mapping[str, int],
    license: str,
    license_note: str,
    citations: Sequence[str],
    command: str,
) -> str:
    """A complete card for one config: what the task is, its exact format, how it was made, and how to cite it.

    ``citations`` are keys of `hf_seqvcr.citations.CITATIONS`; the Seq-VCR paper is always cited since these configs
    exist for it.
    """
    keys = list(dict.fromkeys([*citations, "arefin2025seqvcr"]))
    citation_block = bibtex(keys)  # fails here, before anything is written, on an unknown key
    meta = {
        "license": license,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["chain-of-thought", "seq-vcr", task],
        "pretty_name": "hf-seqvcr task data",
        "configs": [config_entry(config_name, list(split_sizes))],
        BUILDS_KEY: {
            config_name: {
                "task": task,
                "parameters": dict(parameters),
                "seed": seed,
                "split_sizes": dict(split_sizes),
                "license": license,
                "cite": keys,
                "command": command,
            }
        },
    }
    example_block = json.dumps({column: example[column] for column in COLUMNS}, ensure_ascii=False, indent=2)
    parameter_rows = "\n".join(f"| `{name}` | `{value}` |" for name, value in [*parameters.items(), ("seed", seed)])
    split_rows = "\n".join(f"| {split} | {size:,} |" for split, size in split_sizes.items())
    section = f"""## Config `{config_name}`: {task}

{summary}

### Format

One example row, then the same row as one line (`question||cot #### answer`):

```json
{example_block}
```

```text
{to_line(example)}
```

### Generator parameters

| parameter | value |
|---|---|
{parameter_rows}

### Splits

The splits share no question.

| split | rows |
|---|---|
{split_rows}

### Rebuild

From the hf-seqvcr project root:

```bash
{command}
```

### License

`{license}`: {license_note}

### Citation

```bibtex
{citation_block}
```
"""
    return render_card(meta, _HEADER, {config_name: config_section(config_name, section)})


def with_data_files(card: str, config_name: str, splits: Sequence[str]) -> str:
    """``card`` whose ``configs:`` item for ``config_name`` lists exactly ``splits``, the shards really written."""
    return merge_cards(card, render_card({"configs": [config_entry(config_name, list(splits))]}, "", {}))

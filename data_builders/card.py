"""Dataset cards (README.md with YAML metadata) that say exactly how a config was made, and merge per config.

A builder directory or Hub repo can hold several configs (say ``4x4`` and ``5x5``); each owns one YAML
``configs:`` item, one entry under ``seqvcr_builds:`` and one marked markdown section, so rebuilding one
config rewrites only its own parts of the card.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import yaml

from .layout import config_entry
from .schema import COLUMNS, SPLITS, to_line

BUILDS_KEY = "seqvcr_builds"

CITATIONS: dict[str, str] = {
    "deng2023implicit": """@article{deng2023implicit,
  title   = {Implicit Chain of Thought Reasoning via Knowledge Distillation},
  author  = {Deng, Yuntian and Prasad, Kiran and Fernandez, Roland and Smolensky, Paul and Chaudhary, Vishrav and Shieber, Stuart},
  journal = {arXiv preprint arXiv:2311.01460},
  year    = {2023}
}""",
    "feng2023towards": """@inproceedings{feng2023towards,
  title     = {Towards Revealing the Mystery behind Chain of Thought: A Theoretical Perspective},
  author    = {Feng, Guhao and Zhang, Bohang and Gu, Yuntian and Ye, Haotian and He, Di and Wang, Liwei},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2023}
}""",
    "cobbe2021gsm8k": """@article{cobbe2021gsm8k,
  title   = {Training Verifiers to Solve Math Word Problems},
  author  = {Cobbe, Karl and Kosaraju, Vineet and Bavarian, Mohammad and Chen, Mark and Jun, Heewoo and Kaiser, Lukasz and Plappert, Matthias and Tworek, Jerry and Hilton, Jacob and Nakano, Reiichiro and Hesse, Christopher and Schulman, John},
  journal = {arXiv preprint arXiv:2110.14168},
  year    = {2021}
}""",
    "arefin2025seqvcr": """@inproceedings{arefin2025seqvcr,
  title     = {Seq-VCR: Preventing Collapse in Intermediate Transformer Representations for Enhanced Reasoning},
  author    = {Arefin, Md Rifat and Subbaraj, Gopeshh and Gontier, Nicolas and LeCun, Yann and Rish, Irina and Shwartz-Ziv, Ravid and Pal, Christopher},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025}
}""",
}

_HEADER = """# hf-seqvcr task data

Built by the `data_builders` package of hf-seqvcr (Seq-VCR regularizer and pause tokens for the Hugging Face
Trainer). Every config has the same columns, `question`, `cot` (chain of thought, may be empty) and
`answer`, all strings; `question||cot #### answer` is Deng et al.'s one-line text format.
Load a config with `datasets.load_dataset(<this repo or directory>, "<config name>")`.

"""
_SECTION = re.compile(r"<!-- seqvcr-config: (?P<name>[^ ]+) -->\n.*?<!-- /seqvcr-config: (?P=name) -->\n", re.S)
_FRONT_MATTER = re.compile(r"\A---\n(?P<yaml>.*?\n)?---\n", re.S)


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

    ``citations`` are keys of ``CITATIONS``; the Seq-VCR paper is always cited since these configs exist for it.
    """
    keys = list(dict.fromkeys([*citations, "arefin2025seqvcr"]))
    unknown = [key for key in keys if key not in CITATIONS]
    if unknown:
        raise ValueError(
            f"citations={unknown} are unknown; use keys of data_builders.card.CITATIONS: {list(CITATIONS)}"
        )
    meta = {
        "license": license,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["chain-of-thought", "seq-vcr", task],
        "pretty_name": "hf-seqvcr task data",
        "configs": [config_entry(config_name, [split for split in SPLITS if split in split_sizes])],
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
    bibtex = "\n\n".join(CITATIONS[key] for key in keys)
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
{bibtex}
```
"""
    return _render(meta, _HEADER, {config_name: _wrap(config_name, section)})


def merge_cards(existing: str, new: str) -> str:
    """``existing`` with every config of ``new`` added or replaced; all else in ``existing`` is kept."""
    old_meta, old_header, old_sections = _parse(existing)
    new_meta, new_header, new_sections = _parse(new)
    header = old_header if (old_meta or old_sections or old_header.strip()) else new_header
    return _render(_merge_metadata(old_meta, new_meta), header, {**old_sections, **new_sections})


def with_data_files(card: str, config_name: str, splits: Sequence[str]) -> str:
    """``card`` whose ``configs:`` item for ``config_name`` lists exactly ``splits``, the shards really written."""
    return merge_cards(card, _render({"configs": [config_entry(config_name, list(splits))]}, "", {}))


def card_metadata(card: str) -> dict:
    """The YAML header of a card ({} when it has none)."""
    return _parse(card)[0]


def _wrap(config_name: str, section: str) -> str:
    return f"<!-- seqvcr-config: {config_name} -->\n{section}<!-- /seqvcr-config: {config_name} -->\n"


def _parse(card: str) -> tuple[dict, str, dict[str, str]]:
    """(YAML metadata, text outside the config sections, config name -> its marked section)."""
    match = _FRONT_MATTER.match(card)
    try:
        meta = (yaml.safe_load(match["yaml"] or "") or {}) if match else {}
    except yaml.YAMLError as error:
        raise ValueError(f"a README.md YAML header does not parse ({error}); fix or remove that README.md") from error
    if not isinstance(meta, dict):
        raise ValueError("a README.md YAML header is not a mapping; fix or remove that README.md")
    body = card[match.end() :] if match else card
    sections = {found["name"]: found[0] for found in _SECTION.finditer(body)}
    return meta, _SECTION.sub("", body), sections


def _merge_metadata(old: dict, new: dict) -> dict:
    """Configs and builds merge by config name, licenses and tags by union; other keys already there are kept."""
    merged = dict(old)
    for key, value in new.items():
        if key not in merged:
            merged[key] = value
        elif key == "configs":
            by_name = {item["config_name"]: item for item in merged[key]}
            by_name.update({item["config_name"]: item for item in value})
            merged[key] = list(by_name.values())
        elif key == BUILDS_KEY:
            merged[key] = {**merged[key], **value}
        elif key == "license" or isinstance(value, list):
            union = _as_list(merged[key]) + [item for item in _as_list(value) if item not in _as_list(merged[key])]
            merged[key] = union[0] if key == "license" and len(union) == 1 else union
    return merged


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, list) else [value]


def _render(meta: dict, header: str, sections: Mapping[str, str]) -> str:
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    body = header.rstrip("\n") + "\n\n" if header.strip() else ""
    return f"---\n{front}---\n{body}" + "\n".join(sections.values())

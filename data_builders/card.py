"""Dataset cards (README.md with YAML metadata) that say exactly how a config was made.

Each config gets its own marked section and ``seqvcr_builds:`` entry, merged per config by
`hf_seqvcr.dataset_card.merge_cards` (shared with the Hub upload), so rebuilding one config rewrites only its
own parts of the card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from hf_seqvcr.dataset_card import BUILDS_KEY, config_section, merge_cards, render_card

from .layout import config_entry
from .schema import COLUMNS, to_line

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
    "saunshi2025reasoning": """@inproceedings{saunshi2025reasoning,
  title     = {Reasoning with Latent Thoughts: On the Power of Looped Transformers},
  author    = {Saunshi, Nikunj and Dikkala, Nishanth and Li, Zhiyuan and Kumar, Sanjiv and Reddi, Sashank J.},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  note      = {arXiv:2502.17416}
}""",
    "sanford2024transformers": """@inproceedings{sanford2024transformers,
  title     = {Transformers, Parallel Computation, and Logarithmic Depth},
  author    = {Sanford, Clayton and Hsu, Daniel and Telgarsky, Matus},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2024},
  note      = {arXiv:2402.09268}
}""",
    "ye2024physics": """@article{ye2024physics,
  title   = {Physics of Language Models: Part 2.1, Grade-School Math and the Hidden Reasoning Process},
  author  = {Ye, Tian and Xu, Zicheng and Li, Yuanzhi and Allen-Zhu, Zeyuan},
  journal = {arXiv preprint arXiv:2407.20311},
  year    = {2024}
}""",
    "barbero2024transformers": r"""@inproceedings{barbero2024transformers,
  title     = {Transformers need glasses! Information over-squashing in language tasks},
  author    = {Barbero, Federico and Banino, Andrea and Kapturowski, Steven and Kumaran, Dharshan and Ara{\'u}jo, Jo{\~a}o G. M. and Vitvitskyi, Alex and Pascanu, Razvan and Veli{\v{c}}kovi{\'c}, Petar},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2024},
  note      = {arXiv:2406.04267}
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
    return render_card(meta, _HEADER, {config_name: config_section(config_name, section)})


def with_data_files(card: str, config_name: str, splits: Sequence[str]) -> str:
    """``card`` whose ``configs:`` item for ``config_name`` lists exactly ``splits``, the shards really written."""
    return merge_cards(card, render_card({"configs": [config_entry(config_name, list(splits))]}, "", {}))

"""The one home of every BibTeX entry the project cites: model cards and dataset cards both read it.

`METHOD_CITATIONS` names the papers each training method rests on; a new method lists its papers there (a test
checks every method has an entry) and its model cards cite them with no other change.
"""

from __future__ import annotations

from collections.abc import Iterable

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
    "goyal2024think": """@inproceedings{goyal2024think,
  title         = {Think before you speak: Training Language Models With Pause Tokens},
  author        = {Goyal, Sachin and Ji, Ziwei and Rawat, Ankit Singh and Menon, Aditya Krishna and Kumar, Sanjiv and Nagarajan, Vaishnavh},
  booktitle     = {International Conference on Learning Representations (ICLR)},
  year          = {2024},
  eprint        = {2310.02226},
  archivePrefix = {arXiv}
}""",
    "saunshi2025reasoning": """@inproceedings{saunshi2025reasoning,
  title         = {Reasoning with Latent Thoughts: On the Power of Looped Transformers},
  author        = {Saunshi, Nikunj and Dikkala, Nishanth and Li, Zhiyuan and Kumar, Sanjiv and Reddi, Sashank J.},
  booktitle     = {International Conference on Learning Representations (ICLR)},
  year          = {2025},
  eprint        = {2502.17416},
  archivePrefix = {arXiv}
}""",
    "barbero2024transformers": """@inproceedings{barbero2024transformers,
  title         = {Transformers need glasses! Information over-squashing in language tasks},
  author        = {Barbero, Federico and Banino, Andrea and Kapturowski, Steven and Kumaran, Dharshan and Ara{\\'u}jo, Jo{\\~a}o G. M. and Vitvitskyi, Alex and Pascanu, Razvan and Veli{\\v{c}}kovi{\\'c}, Petar},
  booktitle     = {Advances in Neural Information Processing Systems (NeurIPS)},
  year          = {2024},
  eprint        = {2406.04267},
  archivePrefix = {arXiv}
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
}

METHOD_CITATIONS: dict[str, tuple[str, ...]] = {
    "vanilla": (),
    "cot": (),
    "pause": ("goyal2024think",),
    "seqvcr": ("arefin2025seqvcr",),
    "seqvcr_pause": ("arefin2025seqvcr", "goyal2024think"),
}


def bibtex(keys: Iterable[str]) -> str:
    """The entries of `keys`, in order, once each, separated by blank lines: a card's ```bibtex block."""
    keys = list(dict.fromkeys(keys))
    unknown = [key for key in keys if key not in CITATIONS]
    if unknown:
        raise ValueError(
            f"citations {unknown} are unknown; use keys of hf_seqvcr.citations.CITATIONS: {list(CITATIONS)}"
        )
    return "\n\n".join(CITATIONS[key] for key in keys)

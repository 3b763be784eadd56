"""One home for BibTeX: every entry keyed by its own key, every method names its papers, errors name the fix."""

import re

import pytest

from hf_seqvcr.citations import CITATIONS, METHOD_CITATIONS, bibtex
from hf_seqvcr.methods import METHODS


def test_each_entry_is_keyed_by_its_own_key_and_closes():
    for key, entry in CITATIONS.items():
        assert re.match(rf"@\w+\{{{key},\n", entry) and entry.endswith("\n}")
        assert entry.count("{") == entry.count("}")


def test_every_method_names_its_papers_and_they_are_known():
    assert list(METHOD_CITATIONS) == list(METHODS)  # a new method must say what to cite
    assert {key for keys in METHOD_CITATIONS.values() for key in keys} <= set(CITATIONS)
    assert METHOD_CITATIONS["seqvcr_pause"] == ("arefin2025seqvcr", "goyal2024think")


def test_bibtex_keeps_order_drops_repeats_and_rejects_unknown_keys():
    assert bibtex(["goyal2024think", "cobbe2021gsm8k", "goyal2024think"]) == (
        CITATIONS["goyal2024think"] + "\n\n" + CITATIONS["cobbe2021gsm8k"]
    )
    assert bibtex([]) == ""
    with pytest.raises(ValueError, match=r"\['nobody2099'\].*hf_seqvcr\.citations\.CITATIONS"):
        bibtex(["cobbe2021gsm8k", "nobody2099"])

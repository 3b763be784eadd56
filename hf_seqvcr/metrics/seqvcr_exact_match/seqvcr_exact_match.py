"""Exact match, digit accuracy and accuracy per answer position, as an `evaluate` metric.

Load it with `hf_seqvcr.evaluation.load_metric()` (or `evaluate.load` on this directory): it ships inside the
package, so it loads offline. The scoring is `hf_seqvcr.evaluation.score_answers`; this module only declares it.
"""

import datasets
import evaluate

from hf_seqvcr.citations import CITATIONS
from hf_seqvcr.evaluation import score_answers

_DESCRIPTION = """Scores normalised answers (whitespace removed, see `hf_seqvcr.evaluation.normalize_answer`)
against normalised references: the fraction answered exactly, the fraction of reference characters matched at
their position, and that fraction per position (the Seq-VCR paper's Fig. 6: which digits a model gets wrong)."""

_INPUTS = """
Args:
    predictions (list of str): the model's answers, one per example.
    references (list of str): the reference answers, as many as `predictions`.
Returns:
    exact_match (float): fraction of predictions equal to their reference.
    digit_accuracy (float): fraction of reference characters the prediction has at the same position.
    position_accuracy (list of float): that fraction for each position, over the references that long.
Example:
    >>> metric = hf_seqvcr.evaluation.load_metric()
    >>> metric.compute(predictions=["123", "120"], references=["123", "123"])["exact_match"]
    0.5
"""


class SeqVCRExactMatch(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=CITATIONS["arefin2025seqvcr"],
            inputs_description=_INPUTS,
            features=datasets.Features({name: datasets.Value("string") for name in ("predictions", "references")}),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float | list[float]]:
        return score_answers(predictions, references)

"""Separator tokens every k items, Barbero et al. (2024)'s mitigation of representational collapse.

A run of identical tokens lets the last token's representation converge to that of the same run one token longer
(their Thm 4.2); a comma after every k-th item keeps the context of the final token changing (their Fig. 5d used
commas every third digit).
"""

from __future__ import annotations

from collections.abc import Sequence

SEPARATOR = ","


def join_items(items: Sequence[str], joiner: str, separator_every: int) -> str:
    """``items`` joined by ``joiner``, with ``,`` after every ``separator_every``-th item but never at the end.

    ``join_items("1111111", "", 3) == "111,111,1"``; ``join_items(["car", "dog", "bus"], " ", 2) == "car dog, bus"``.
    """
    if separator_every == 0:
        return joiner.join(items)
    groups = [joiner.join(items[start : start + separator_every]) for start in range(0, len(items), separator_every)]
    return (SEPARATOR + joiner).join(groups)

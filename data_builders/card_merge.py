"""Dataset cards (README.md with YAML metadata) that merge per config, locally and on the Hub alike.

A builder directory or Hub dataset repo can hold several configs (say ``4x4`` and ``5x5``); each owns one
YAML ``configs:`` item, one entry under ``seqvcr_builds:`` and one marked markdown section, so writing one
config rewrites only its own parts of the card. The local directory (`dataset_dir`) and the Hub copy
(`publish.push_dataset`) both merge through `merge_cards`, so the two copies of a card never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import yaml

BUILDS_KEY = "seqvcr_builds"

_SECTION = re.compile(r"<!-- seqvcr-config: (?P<name>[^ ]+) -->\n.*?<!-- /seqvcr-config: (?P=name) -->\n", re.S)
_FRONT_MATTER = re.compile(r"\A---\n(?P<yaml>.*?\n)?---\n", re.S)


def config_section(config_name: str, text: str) -> str:
    """``text`` marked as the section of ``config_name``, the unit `merge_cards` adds or replaces."""
    return f"<!-- seqvcr-config: {config_name} -->\n{text}<!-- /seqvcr-config: {config_name} -->\n"


def render_card(meta: Mapping, header: str, sections: Mapping[str, str]) -> str:
    """A card from its metadata, the prose before the config sections, and the marked sections in order."""
    front = yaml.safe_dump(dict(meta), sort_keys=False, allow_unicode=True, width=1000)
    body = header.rstrip("\n") + "\n\n" if header.strip() else ""
    return f"---\n{front}---\n{body}" + "\n".join(sections.values())


def merge_cards(existing: str, new: str, *, keep: Collection[str] = ()) -> str:
    """``existing`` with every config of ``new`` added or replaced; all else in ``existing`` is kept.

    ``new``'s prose before its sections is used only when ``existing`` has none (a card `datasets` wrote has
    metadata but no prose). Metadata keys in ``keep`` are taken from ``existing`` as they are, e.g. the
    ``configs``/``dataset_info`` that `datasets.push_to_hub` just wrote for every config on the Hub.
    """
    old_meta, old_header, old_sections = _parse(existing)
    new_meta, new_header, new_sections = _parse(new)
    header = old_header if old_header.strip() else new_header
    meta = _merge_metadata(old_meta, {k: v for k, v in new_meta.items() if k not in keep})
    return render_card(meta, header, {**old_sections, **new_sections})


def card_metadata(card: str) -> dict:
    """The YAML header of a card ({} when it has none); ValueError naming the fix when it does not parse."""
    return _parse(card)[0]


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

"""`push_dataset`: a builder's dataset to the Hub as one config, its card merged like the local directory's.

The Hub calls and their order are in docs/hub.md §2; the checks and errors are `hf_seqvcr.hub`'s, shared with the
model push of the recipes.
"""

from __future__ import annotations

import os

from datasets import DatasetDict
from huggingface_hub import CommitInfo, HfApi

from hf_seqvcr.hub import publish_errors, push_token, validate_repo_id

from .card_merge import card_metadata, merge_cards

# YAML keys `datasets` writes into README.md on every push_to_hub; they describe all configs pushed so far.
# Our card never overrides them on the Hub.
DATASETS_OWNED_KEYS = ("configs", "dataset_info")


def push_dataset(
    dataset: DatasetDict,
    repo_id: str,
    *,
    config_name: str,
    card: str,
    private: bool = False,
    revision: str | None = None,
    local_path: str | os.PathLike | None = None,
) -> CommitInfo:
    """Push `dataset` as config `config_name` of `repo_id`, with `card` (that config's card) merged in.

    The Hub card merges per config like a local builder directory's (`merge_cards`): other configs'
    sections and build entries stay, and the `configs`/`dataset_info` that `datasets` wrote win.
    `revision` is a branch, created from main when missing; `private` applies when the repo is created.
    Returns the last commit (a `str`, its URL; `.oid`; `.repo_url`, the repo's page).
    """
    validate_repo_id(repo_id)
    card_metadata(card)  # a broken card fails here, before any upload
    token = push_token(repo_id, local_path=local_path)
    with publish_errors(repo_id, token, local_path):
        pushed = dataset.push_to_hub(repo_id, config_name=config_name, private=private, revision=revision, token=token)
        api = HfApi(token=token)
        readme = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=pushed.oid)
        with open(readme, encoding="utf-8") as f:
            merged = merge_cards(f.read(), card, keep=DATASETS_OWNED_KEYS)
        return api.upload_file(
            path_or_fileobj=merged.encode(),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            commit_message=f"Dataset card for config {config_name}",
            parent_commit=pushed.oid,
        )

"""Publishing datasets to the Hugging Face Hub with errors a command-line tool can print as they are.

Every failure becomes one `HubPublishError` that says what went wrong, how to fix it, and that the
local copy is untouched (`local_path`), so a builder CLI can print it and exit non-zero. The token is
never put into a message or a card.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
from datasets import DatasetDict
from huggingface_hub import CommitInfo, DatasetCard, DatasetCardData, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id as hf_validate_repo_id

EXAMPLE_REPO_ID = "your-username/seqvcr-5x5-multiplication"
# YAML keys `datasets` writes into README.md on every push_to_hub; they describe all configs pushed so far.
DATASETS_OWNED_KEYS = ("configs", "dataset_info")


class HubPublishError(RuntimeError):
    """Publishing failed. The local data is kept at `local_path` (when the caller gave one)."""

    def __init__(self, reason: str, *, local_path: str | os.PathLike | None = None):
        self.local_path = None if local_path is None else os.fspath(local_path)
        kept = f"kept at {self.local_path}" if self.local_path else "kept"
        super().__init__(f"{reason} The local data is {kept}; publish it again once this is fixed.")


def validate_repo_id(repo_id: str) -> str:
    """Reject a malformed `repo_id` before any data is built or any request is made."""
    try:
        if not isinstance(repo_id, str) or repo_id.count("/") != 1:
            raise HFValidationError("it must be a namespace (your user or organization) and a name.")
        hf_validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(
            f"repo_id {repo_id!r} is not a valid Hub repo id: {e} Use 'namespace/name', e.g. {EXAMPLE_REPO_ID!r}."
        ) from None
    return repo_id


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
    """Push `dataset` as config `config_name` of `repo_id`, with `card` as its dataset card.

    `datasets` keeps the configs of earlier pushes in the README's YAML; `card` supplies the prose and
    any other metadata, merged on top. `revision` is a branch, created from main when missing;
    `private` applies when the repo is created. Returns the last commit (a `str`, its URL; `.oid`).
    """
    validate_repo_id(repo_id)
    ours = DatasetCard(card)  # a broken card fails here, before any upload
    token = get_token()
    if token is None:
        raise HubPublishError(
            f"No Hugging Face token found, so {repo_id} cannot be published. "
            "Set HF_TOKEN to a token with write access, or run `hf auth login`.",
            local_path=local_path,
        )
    with _publish_errors(repo_id, token, local_path):
        pushed = dataset.push_to_hub(repo_id, config_name=config_name, private=private, revision=revision, token=token)
        api = HfApi(token=token)
        readme = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=pushed.oid)
        with open(readme, encoding="utf-8") as f:
            merged = merge_dataset_card(f.read(), ours)
        return api.upload_file(
            path_or_fileobj=str(merged).encode(),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            commit_message=f"Dataset card for config {config_name}",
            parent_commit=pushed.oid,
        )


def merge_dataset_card(pushed: str, ours: DatasetCard) -> DatasetCard:
    """`ours` with the config metadata `datasets` wrote into `pushed` (and keys only `pushed` has)."""
    pushed_data = DatasetCard(pushed).data.to_dict()
    owned = {k: pushed_data[k] for k in DATASETS_OWNED_KEYS if k in pushed_data}
    merged = DatasetCard(str(ours))
    merged.data = DatasetCardData(**{**pushed_data, **ours.data.to_dict(), **owned})
    return merged


@contextmanager
def _publish_errors(repo_id: str, token: str, local_path: str | os.PathLike | None) -> Iterator[None]:
    """Turn the clients' auth, network and HTTP errors into a `HubPublishError` without the token."""
    where = f"the Hub at {constants.ENDPOINT}"
    try:
        yield
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status in (401, 403):
            reason = (
                f"{where} refused the token (HTTP {status}) while publishing {repo_id}. "
                "Set HF_TOKEN to a token with write access to that namespace, or run `hf auth login`."
            )
        else:
            reason = f"Publishing {repo_id} to {where} failed: {e}"
        raise HubPublishError(reason.replace(token, "<token>"), local_path=local_path) from e
    except (httpx2.TransportError, ConnectionError) as e:
        reason = f"Could not reach {where} to publish {repo_id} ({type(e).__name__}: {e})."
        raise HubPublishError(reason.replace(token, "<token>"), local_path=local_path) from e

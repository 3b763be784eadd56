"""Publishing to the Hugging Face Hub with errors a command-line tool can print as they are.

Every failure becomes one `HubPublishError` that says what went wrong, how to fix it, and that the
local copy is untouched (`local_path`), so a builder CLI or a recipe can print it and exit non-zero.
Models go up through the Trainer's own Hub support, whose errors the recipes wrap in `publish_errors`;
datasets through `data_builders.publish`, on the same checks. The token is never put into a message or a card.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
from huggingface_hub import constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id as hf_validate_repo_id

EXAMPLE_REPO_ID = "your-username/seqvcr-5x5-multiplication"


class HubPublishError(RuntimeError):
    """Publishing failed. What was to be published is kept at `local_path` (when there is a local copy)."""

    def __init__(self, reason: str, *, local_path: str | os.PathLike | None = None):
        self.local_path = None if local_path is None else os.fspath(local_path)
        kept = f" The local copy is kept at {self.local_path}; publish it again once this is fixed."
        super().__init__(reason + (kept if self.local_path else ""))


def validate_repo_id(repo_id: str, argument: str = "repo_id") -> str:
    """Reject a malformed `repo_id` before any data is built or any request is made; `argument` names the flag."""
    try:
        if not isinstance(repo_id, str) or repo_id.count("/") != 1:
            raise HFValidationError("it must be a namespace (your user or organization) and a name.")
        hf_validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(
            f"{argument} {repo_id!r} is not a valid Hub repo id: {e} Use 'namespace/name', e.g. {EXAMPLE_REPO_ID!r}."
        ) from None
    return repo_id


def push_token(repo_id: str, *, local_path: str | os.PathLike | None = None) -> str:
    """The token from HF_TOKEN or `hf auth login`; without one, fail before any request or any work."""
    token = get_token()
    if token is None:
        raise HubPublishError(
            f"No Hugging Face token found, so {repo_id} cannot be published. "
            "Set HF_TOKEN to a token with write access, or run `hf auth login`.",
            local_path=local_path,
        )
    return token


@contextmanager
def publish_errors(repo_id: str, token: str, local_path: str | os.PathLike | None = None) -> Iterator[None]:
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
    # huggingface_hub's HTTP client is httpx2 (a declared dependency of both); huggingface_hub re-raises its
    # transport errors (refused connection, timeout) as they are, with no public error type of its own.
    except (httpx2.TransportError, ConnectionError) as e:
        reason = f"Could not reach {where} to publish {repo_id} ({type(e).__name__}: {e})."
        raise HubPublishError(reason.replace(token, "<token>"), local_path=local_path) from e

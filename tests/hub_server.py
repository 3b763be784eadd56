"""A loopback stand-in for the Hugging Face Hub, so push/load round trips run without any network.

huggingface_hub, datasets and transformers copy `HF_ENDPOINT` (and `HF_HOME`, `HF_HUB_DISABLE_XET`)
into module constants when they are imported. Importing this module therefore binds the server on
127.0.0.1 (port 0) and points those variables at it right away: tests/conftest.py imports it before
anything imports the clients, and the `hub` fixture checks that the clients really use it.

It speaks the subset of the Hub API listed in docs/hub.md §4: repo create/info, branches
and refs, preupload, the LFS batch + PUT upload, NDJSON commits, tree and paths-info listings,
resolve (HEAD/GET with ranges), validate-yaml, whoami-v2 and the best-effort agent-harnesses call.
`fail_next_commits` makes it answer HTTP 500 to a repo's next commits, to test what clients do when a push fails.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

import pytest
import yaml

TEST_TOKEN = "hf_loopbackSecretToken4Tests"  # what every client in the session sends
BAD_TOKEN = "bad-token"  # the server answers 401 to it, to exercise the clients' auth errors
USER = "tester"
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npy", ".h5", ".onnx")
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES)
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"  # the Hub's wording; clients key on it
_COMMIT_COUNTER = itertools.count()  # makes two commits of identical content still get distinct shas


def git_blob_oid(content: bytes) -> str:
    """The sha1 git gives a blob; clients compare it with their own for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class RepoFile:
    """File content at a commit; `lfs_sha256` is set when it was uploaded through LFS."""

    content: bytes
    lfs_sha256: str | None = None

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer git stores in place of an LFS file; its blob sha is the file's tree oid."""
        return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
            str(self.lfs_sha256).encode(),
            len(self.content),
        )

    @property
    def blob_oid(self) -> str:
        return git_blob_oid(self.pointer if self.lfs_sha256 else self.content)

    @property
    def upload_oid(self) -> str:
        """The oid preupload reports, so clients skip re-uploading an unchanged file."""
        return self.lfs_sha256 or self.blob_oid


@dataclass(frozen=True)
class Commit:
    oid: str
    summary: str
    files: dict[str, RepoFile]

    def directories(self) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in self.files for i in range(1, p.count("/") + 1)}


@dataclass
class Repo:
    """One repository: its commits and branches, and whether it was created private."""

    repo_type: str  # "model" | "dataset"
    repo_id: str
    private: bool
    url: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        oid = self.branches.get(revision.removeprefix("refs/heads/"), revision)
        if oid not in self.commits:
            raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return self.commits[oid]

    def head(self, branch: str = "main") -> Commit:
        return self.commits[self.branches[branch]]

    def add_commit(self, branch: str, parent: Commit | None, files: dict[str, RepoFile], summary: str) -> Commit:
        seed = f"{self.repo_id}\n{parent.oid if parent else ''}\n{summary}\n{next(_COMMIT_COUNTER)}\n"
        seed += "".join(f"{path} {f.blob_oid}\n" for path, f in sorted(files.items()))
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), summary, files)
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # decoded, without the query string
    query: str
    token: str | None
    status: int


class HubError(Exception):
    """An HTTP error answer, with the `X-Error-Code` huggingface_hub turns into its typed exceptions."""

    def __init__(self, status: HTTPStatus, message: str, *, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass
class Reply:
    status: HTTPStatus = HTTPStatus.OK
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(payload: Any, status: HTTPStatus = HTTPStatus.OK) -> Reply:
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
API_REPO = rf"/api/(?P<repo_type>model|dataset)s/{REPO}"
GIT_REPO = rf"/(?:(?P<repo_type>dataset)s/)?{REPO}"  # model repos have no prefix


class LoopbackHub(ThreadingHTTPServer):
    """The server and its in-memory state; tests read `repos`, `requests` and set `require_token`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[LoggedRequest] = []
        self.require_token = False  # True: reads without a token get 401 too, as for a private Hub
        self.failing_commits: dict[tuple[str, str], int] = {}  # (repo_type, repo_id) -> commits still to refuse
        self.lock = threading.RLock()
        self.routes: list[tuple[str, re.Pattern, Callable[..., Reply]]] = [
            ("GET", re.compile(r"/api/whoami-v2"), self.whoami),
            ("GET", re.compile(r"/api/agent-harnesses"), self.agent_harnesses),
            ("POST", re.compile(r"/api/validate-yaml"), self.validate_yaml),
            ("POST", re.compile(r"/api/repos/create"), self.create_repo),
            ("GET", re.compile(rf"{API_REPO}(?:/revision/(?P<rev>[^/]+))?"), self.repo_info),
            ("GET", re.compile(rf"{API_REPO}/refs"), self.refs),
            ("POST", re.compile(rf"{API_REPO}/branch/(?P<rev>[^/]+)"), self.create_branch),
            ("GET", re.compile(rf"{API_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?"), self.tree),
            ("POST", re.compile(rf"{API_REPO}/paths-info/(?P<rev>[^/]+)"), self.paths_info),
            ("POST", re.compile(rf"{API_REPO}/preupload/(?P<rev>[^/]+)"), self.preupload),
            ("POST", re.compile(rf"{API_REPO}/commit/(?P<rev>[^/]+)"), self.commit),
            ("POST", re.compile(rf"{GIT_REPO}\.git/info/lfs/objects/batch"), self.lfs_batch),
            ("PUT", re.compile(r"/lfs-upload/(?P<oid>[0-9a-f]{64})"), self.lfs_put),
            ("GET|HEAD", re.compile(rf"{GIT_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), self.resolve),
        ]

    # -- helpers for tests -------------------------------------------------------------------
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def requests_since(self, mark: int) -> list[LoggedRequest]:
        """Requests logged after `mark = len(hub.requests)`; the log is shared by the whole session."""
        return self.requests[mark:]

    def fail_next_commits(self, repo_id: str, n: int = 1, repo_type: str = "model") -> None:
        """Answer HTTP 500 to the next `n` commits to `repo_id` (which need not exist yet); uploads still succeed."""
        with self.lock:
            self.failing_commits[(repo_type, repo_id)] = n

    # -- request plumbing ----------------------------------------------------------------------
    def handle_request_for(self, method: str, raw_path: str, token: str | None, body: bytes) -> Reply:
        split = urlsplit(raw_path)
        reply = self.route(method, split.path, split.query, token, body)
        with self.lock:
            self.requests.append(LoggedRequest(method, unquote(split.path), split.query, token, reply.status))
        return reply

    def route(self, method: str, path: str, query: str, token: str | None, body: bytes) -> Reply:
        for methods, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if method in methods.split("|") and match:
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                try:
                    self.check_auth(method, handler, token)
                    with self.lock:
                        return handler(token=token, body=body, query=dict(parse_qsl(query)), **args)
                except HubError as e:
                    reply = json_reply({"error": e.message}, e.status)
                    reply.headers.update({"X-Error-Message": e.message, **e.headers})
                    if e.code:
                        reply.headers["X-Error-Code"] = e.code
                    return reply
                except Exception as e:  # a server bug: answer it instead of dropping the connection
                    return json_reply({"error": f"loopback hub bug: {e!r}"}, HTTPStatus.INTERNAL_SERVER_ERROR)
        return json_reply({"error": f"loopback hub: no route for {method} {path}"}, HTTPStatus.NOT_FOUND)

    def check_auth(self, method: str, handler: Callable, token: str | None) -> None:
        """`bad-token` is always refused; writes need a token; reads too when `require_token`."""
        if handler in (self.agent_harnesses, self.lfs_put):  # public registry / pre-signed upload URL
            return
        is_write = method in ("POST", "PUT") and handler not in (self.paths_info, self.validate_yaml)
        if token == BAD_TOKEN or (token is None and (is_write or self.require_token or handler == self.whoami)):
            raise HubError(HTTPStatus.UNAUTHORIZED, INVALID_CREDENTIALS)

    def find_repo(self, repo_type: str, repo: str, token: str | None) -> Repo:
        found = self.repos.get((repo_type, repo))
        if found is None or (found.private and token is None):
            raise HubError(HTTPStatus.NOT_FOUND, "Repository not found", code="RepoNotFound")
        return found

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.endpoint}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"

    # -- account ---------------------------------------------------------------------------------
    def whoami(self, **_: Any) -> Reply:
        token_info = {"displayName": "loopback", "role": "write"}
        return json_reply(
            {
                "type": "user",
                "id": "0",
                "name": USER,
                "fullname": "Loopback Tester",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": token_info},
            }
        )

    def agent_harnesses(self, **_: Any) -> Reply:
        return json_reply({"standardEnvVars": [], "harnesses": {}})

    def validate_yaml(self, body: bytes, **_: Any) -> Reply:
        """Parse the README front matter for real, so a card with broken YAML fails like on the Hub."""
        content = json.loads(body)["content"]
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
        try:
            data = yaml.safe_load(match.group(1)) if match else {}
            if data is not None and not isinstance(data, dict):
                raise yaml.YAMLError(f"metadata must be a mapping, got {type(data).__name__}")
        except yaml.YAMLError as e:
            return json_reply({"errors": [{"message": str(e)}], "warnings": []}, HTTPStatus.BAD_REQUEST)
        return json_reply({"errors": [], "warnings": []})

    # -- repos and refs ----------------------------------------------------------------------------
    def create_repo(self, body: bytes, **_: Any) -> Reply:
        payload = json.loads(body)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        url = self.repo_url(repo_type, repo_id)
        if (repo_type, repo_id) in self.repos:
            return json_reply({"error": "You already created this repo", "url": url}, HTTPStatus.CONFLICT)
        private = payload.get("visibility") == "private" or payload.get("private") is True
        repo = self.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private, url)
        repo.add_commit("main", None, {".gitattributes": RepoFile(GITATTRIBUTES)}, "initial commit")
        return json_reply({"url": url, "name": repo_id, "id": repo_id})

    def repo_info(self, repo_type: str, repo: str, token: str | None, rev: str = "main", **_: Any) -> Reply:
        found = self.find_repo(repo_type, repo, token)
        commit = found.resolve(rev)
        siblings = [{"rfilename": path, "size": len(f.content)} for path, f in sorted(commit.files.items())]
        return json_reply(
            {
                "id": repo,
                "sha": commit.oid,
                "private": found.private,
                "disabled": False,
                "gated": False,
                "tags": [],
                "siblings": siblings,
            }
        )

    def refs(self, repo_type: str, repo: str, token: str | None, **_: Any) -> Reply:
        found = self.find_repo(repo_type, repo, token)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
            for name, oid in sorted(found.branches.items())
        ]
        return json_reply({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def create_branch(self, repo_type: str, repo: str, rev: str, token: str | None, body: bytes, **_: Any) -> Reply:
        found = self.find_repo(repo_type, repo, token)
        if rev in found.branches:
            raise HubError(HTTPStatus.CONFLICT, f"Reference already exists: refs/heads/{rev}")
        found.branches[rev] = found.resolve(json.loads(body or b"{}").get("startingPoint") or "main").oid
        return json_reply({})

    # -- listings --------------------------------------------------------------------------------
    def entry(self, commit: Commit, path: str) -> dict | None:
        if path in commit.files:
            f = commit.files[path]
            out = {"type": "file", "oid": f.blob_oid, "size": len(f.content), "path": path}
            if f.lfs_sha256:
                out["lfs"] = {"oid": f.lfs_sha256, "size": len(f.content), "pointerSize": len(f.pointer)}
            return out
        if path in commit.directories():
            return {
                "type": "directory",
                "oid": hashlib.sha1(f"{commit.oid}:{path}".encode()).hexdigest(),
                "size": 0,
                "path": path,
            }
        return None

    def tree(
        self, repo_type: str, repo: str, rev: str, token: str | None, query: dict, path: str = "", **_: Any
    ) -> Reply:
        commit = self.find_repo(repo_type, repo, token).resolve(rev)
        path = path.strip("/")
        if path and path not in commit.directories():
            raise HubError(
                HTTPStatus.NOT_FOUND,
                f"{path} does not exist on {rev}",
                code="EntryNotFound",
                headers={"X-Repo-Commit": commit.oid},
            )
        prefix = f"{path}/" if path else ""
        recursive = query.get("recursive", "false").lower() in ("true", "1")
        names = sorted(commit.directories() | set(commit.files))
        inside = [n for n in names if n.startswith(prefix) and (recursive or "/" not in n[len(prefix) :])]
        return json_reply([self.entry(commit, n) for n in inside])

    def paths_info(self, repo_type: str, repo: str, rev: str, token: str | None, body: bytes, **_: Any) -> Reply:
        commit = self.find_repo(repo_type, repo, token).resolve(rev)
        paths = parse_qs(body.decode()).get("paths", [])
        return json_reply([e for p in paths if (e := self.entry(commit, p.strip("/"))) is not None])

    # -- uploads ---------------------------------------------------------------------------------
    def preupload(self, repo_type: str, repo: str, rev: str, token: str | None, body: bytes, **_: Any) -> Reply:
        """LFS for binary suffixes and big files (datasets needs it for parquet), regular otherwise."""
        commit = self.find_repo(repo_type, repo, token).resolve(rev)
        files = []
        for f in json.loads(body)["files"]:
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_SIZE
            existing = commit.files.get(f["path"])
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing.upload_oid if existing else None,
                }
            )
        return json_reply({"files": files})

    def lfs_batch(self, repo: str, token: str | None, body: bytes, repo_type: str = "model", **_: Any) -> Reply:
        self.find_repo(repo_type, repo, token)
        objects = []
        for obj in json.loads(body)["objects"]:
            out = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.lfs_objects:
                out["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(out)
        reply = json_reply({"transfer": "basic", "objects": objects})
        reply.headers["Content-Type"] = "application/vnd.git-lfs+json"
        return reply

    def lfs_put(self, oid: str, body: bytes, **_: Any) -> Reply:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(HTTPStatus.BAD_REQUEST, "uploaded content does not match its sha256")
        self.lfs_objects[oid] = body
        return Reply()

    def commit(
        self, repo_type: str, repo: str, rev: str, token: str | None, body: bytes, query: dict, **_: Any
    ) -> Reply:
        """Apply an NDJSON commit to a branch; `parentCommit` must be its head, as on the Hub (412)."""
        found = self.find_repo(repo_type, repo, token)
        if self.failing_commits.get((repo_type, repo), 0) > 0:
            self.failing_commits[(repo_type, repo)] -= 1
            raise HubError(HTTPStatus.INTERNAL_SERVER_ERROR, "loopback hub: commit failure injected by the test")
        if query.get("create_pr") or rev not in found.branches:
            raise HubError(HTTPStatus.BAD_REQUEST, f"loopback hub commits to existing branches only, not {rev!r}")
        parent = found.head(rev)
        files = dict(parent.files)
        header: dict = {}
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                files[value["path"]] = RepoFile(base64.b64decode(value["content"]))
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_objects:
                    raise HubError(HTTPStatus.UNPROCESSABLE_ENTITY, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = RepoFile(self.lfs_objects[value["oid"]], value["oid"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(HTTPStatus.NOT_FOUND, "A file with this name doesn't exist", code="EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(folder)}
            else:
                raise HubError(HTTPStatus.BAD_REQUEST, f"unsupported commit operation {key!r}")
        if header.get("parentCommit") not in (None, parent.oid):
            raise HubError(HTTPStatus.PRECONDITION_FAILED, "A commit has happened since. Please refresh.")
        commit = found.add_commit(rev, parent, files, header.get("summary", ""))
        return json_reply(
            {"commitUrl": f"{found.url}/commit/{commit.oid}", "commitOid": commit.oid, "pullRequestUrl": None}
        )

    # -- downloads -------------------------------------------------------------------------------
    def resolve(self, repo: str, rev: str, path: str, token: str | None, repo_type: str = "model", **_: Any) -> Reply:
        commit = self.find_repo(repo_type, repo, token).resolve(rev)
        f = commit.files.get(path)
        if f is None:
            raise HubError(
                HTTPStatus.NOT_FOUND, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": commit.oid}
            )
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{f.blob_oid}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if f.lfs_sha256:
            headers.update({"X-Linked-Etag": f'"{f.lfs_sha256}"', "X-Linked-Size": str(len(f.content))})
        return Reply(HTTPStatus.OK, f.content, headers)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a `Range: bytes=a-b` header; HfFileSystem reads files by ranges."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header or "")
    if not match or match.group(1) == "":
        return None
    start = int(match.group(1))
    end = min(int(match.group(2)) + 1, size) if match.group(2) else size
    return start, end


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackHub

    def do_GET(self) -> None:
        self.answer("GET")

    def do_HEAD(self) -> None:
        self.answer("HEAD")

    def do_POST(self) -> None:
        self.answer("POST")

    def do_PUT(self) -> None:
        self.answer("PUT")

    def answer(self, method: str) -> None:
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        reply = self.server.handle_request_for(method, self.path, token, self.read_body())
        body = reply.body
        span = byte_range(self.headers.get("Range"), len(body)) if reply.status == HTTPStatus.OK else None
        if span and span[0] >= len(body):
            reply = Reply(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", {"Content-Range": f"bytes */{len(body)}"})
            body = b""
        elif span:
            reply.status = HTTPStatus.PARTIAL_CONTENT
            reply.headers["Content-Range"] = f"bytes {span[0]}-{span[1] - 1}/{len(body)}"
            body = body[span[0] : span[1]]
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, format: str, *args: Any) -> None:  # the request log replaces stderr noise
        pass


def _point_clients_at(endpoint: str) -> str:
    """Set the variables the HF clients read at import time; return the fresh HF_HOME."""
    home = tempfile.mkdtemp(prefix="hf-home-loopback-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    for name in (
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_OIDC_RESOURCE",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_DATASETS_CACHE",
        "HF_XET_CACHE",
        "HF_ASSETS_CACHE",
    ):
        os.environ.pop(name, None)  # each would bypass the loopback server or the fresh cache
    os.environ.update(
        HF_ENDPOINT=endpoint, HF_TOKEN=TEST_TOKEN, HF_HOME=home, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1"
    )
    return home


SERVER = LoopbackHub()
HF_HOME = _point_clients_at(SERVER.endpoint)
threading.Thread(target=SERVER.serve_forever, name="loopback-hub", daemon=True).start()


def clients_endpoints() -> dict[str, Any]:
    """What each client actually uses, read back from the imported modules."""
    import datasets.config
    import huggingface_hub.constants
    import huggingface_hub.hf_api

    return {
        "huggingface_hub.constants.ENDPOINT": huggingface_hub.constants.ENDPOINT,
        "huggingface_hub.hf_api.api.endpoint": huggingface_hub.hf_api.api.endpoint,
        "datasets.config.HF_ENDPOINT": datasets.config.HF_ENDPOINT,
        "huggingface_hub.constants.HF_HOME": huggingface_hub.constants.HF_HOME,
        "huggingface_hub.constants.HF_HUB_DISABLE_XET": huggingface_hub.constants.HF_HUB_DISABLE_XET,
    }


@pytest.fixture(scope="session")
def hub() -> Iterator[LoopbackHub]:
    """The loopback Hub that every HF client of this test session talks to."""
    expected = {
        "huggingface_hub.constants.ENDPOINT": SERVER.endpoint,
        "huggingface_hub.hf_api.api.endpoint": SERVER.endpoint,
        "datasets.config.HF_ENDPOINT": SERVER.endpoint,
        "huggingface_hub.constants.HF_HOME": HF_HOME,
        "huggingface_hub.constants.HF_HUB_DISABLE_XET": True,
    }
    wrong = {k: v for k, v in clients_endpoints().items() if v != expected[k]}
    if wrong:
        pytest.fail(f"HF clients do not use the loopback hub: {wrong}; import hub_server before them.")
    yield SERVER

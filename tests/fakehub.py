"""A small faithful Hugging Face Hub on 127.0.0.1 for upload tests.

Implements what `HfApi.create_repo`, `list_repo_files` and `create_commit` call (repo create
with 409 on an existing repo and the initial `.gitattributes`, the recursive tree listing, README
YAML validation, preupload answering "regular" upload mode, and the NDJSON commit with base64
file contents and deletions), checks the bearer token, stores committed files per repo and
records every call. Anything else answers 404 and is recorded, so a test can assert none happened.

For downloads it serves model repos added with `add_model`: `GET /api/models/{org}/{name}
[/revision/{revision}]` (`model_info`: id, sha, gated, siblings; public even when gated) and
`HEAD/GET /{org}/{name}/resolve/{revision}/{filename}` with the headers huggingface_hub's
`get_hf_file_metadata` reads (X-Repo-Commit, ETag, Content-Length) and its error codes
(X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound / GatedRepo: 401 without a
token, 403 with a token that was not granted access). Public repos need no token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml


@dataclass
class Call:
    method: str
    path: str
    authorization: str | None
    status: int


@dataclass
class ModelRepo:
    files: dict[str, bytes]
    gated: bool = False
    commit: str = ""


@dataclass
class Repo:
    repo_type: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)


class FakeHub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.repos: dict[str, Repo] = {}
        self.models: dict[str, ModelRepo] = {}
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                hub._dispatch(self)

            def do_POST(self) -> None:
                hub._dispatch(self)

            def do_HEAD(self) -> None:
                hub._dispatch(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- HTTP ------------------------------------------------------------------------------
    def _read_body(self, req) -> bytes:
        if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(req.rfile.readline().strip(), 16)
                if size == 0:
                    req.rfile.readline()
                    return out
                out += req.rfile.read(size)
                req.rfile.readline()
        return req.rfile.read(int(req.headers.get("Content-Length") or 0))

    def add_model(self, repo_id: str, files: dict[str, bytes], gated: bool = False) -> ModelRepo:
        """A model repo to download from; its commit id is derived from its files."""
        digest = hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest()
        self.models[repo_id] = ModelRepo(dict(files), gated, digest)
        return self.models[repo_id]

    def _dispatch(self, req) -> None:
        body = self._read_body(req) if req.command == "POST" else b""
        path = unquote(urlsplit(req.path).path)
        auth = req.headers.get("Authorization")
        if "/resolve/" in path and req.command in ("GET", "HEAD"):
            return self._resolve(req, path, auth)
        if path.startswith("/api/models/") and req.command == "GET":
            return self._model_info(req, path, auth)
        if auth != f"Bearer {self.token}":
            status, answer = 401, {"error": "Invalid credentials in Authorization header"}
        else:
            status, answer = self._route(req.command, path, body)
        with self._lock:
            self.calls.append(Call(req.command, path, auth, status))
        data = json.dumps(answer).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, dict | list]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in self.repos:
                return 409, {"error": "You already created this dataset repo", "url": self._url(repo_id)}
            self.repos[repo_id] = Repo(payload.get("type", "model"), payload.get("visibility") == "private",
                                       files={".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"})
            return 200, {"url": self._url(repo_id), "name": repo_id, "id": repo_id}
        if method == "POST" and path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            if content.startswith("---\n"):
                try:
                    meta = yaml.safe_load(content.split("---\n", 2)[1])
                except yaml.YAMLError as exc:
                    return 400, {"errors": [{"message": str(exc)}], "warnings": []}
                if not isinstance(meta, dict):
                    return 400, {"errors": [{"message": "metadata is not a mapping"}], "warnings": []}
            return 200, {"errors": [], "warnings": []}
        if method == "GET" and len(parts) >= 6 and parts[0] == "api" and parts[4] == "tree":
            repo = self.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return 404, {"error": "Repository not found"}
            entries, folders = [], set()
            for path, data in sorted(repo.files.items()):
                for i in range(1, path.count("/") + 1):
                    folders.add(path.rsplit("/", i)[0])
                entries.append({"type": "file", "path": path, "size": len(data),
                                "oid": hashlib.sha1(data).hexdigest()})
            entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                        for f in sorted(folders)]
            return 200, entries
        if method == "POST" and len(parts) == 6 and parts[0] == "api" and parts[4] in ("preupload", "commit"):
            repo_type, repo_id, action = parts[1].rstrip("s"), f"{parts[2]}/{parts[3]}", parts[4]
            repo = self.repos.get(repo_id)
            if repo is None or repo.repo_type != repo_type:
                return 404, {"error": "Repository not found"}
            if action == "preupload":
                files = json.loads(body)["files"]
                return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                        "oid": None} for f in files], "commitOid": self._head(repo)}
            return self._commit(repo_id, repo, body)
        return 404, {"error": f"fake hub: no route for {method} {path}"}

    def _commit(self, repo_id: str, repo: Repo, body: bytes) -> tuple[int, dict]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return 400, {"error": "commit payload must start with a header line"}
        added, deleted = {}, []
        for item in lines[1:]:
            if item["key"] == "deletedFile":
                if item["value"]["path"] not in repo.files:
                    return 404, {"error": "A file with this name doesn't exist"}
                deleted.append(item["value"]["path"])
            elif item["key"] == "file" and item["value"].get("encoding") == "base64":
                added[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:
                return 400, {"error": f"unsupported commit operation {item['key']}"}
        for path in deleted:
            del repo.files[path]
        repo.files.update(added)
        oid = hashlib.sha1(body).hexdigest()
        repo.commits.append({"summary": lines[0]["value"]["summary"], "files": list(added), "deleted": deleted,
                             "oid": oid})
        return 200, {"success": True, "commitOid": oid, "commitUrl": f"{self._url(repo_id)}/commit/{oid}"}

    def _url(self, repo_id: str) -> str:
        return f"{self.endpoint}/datasets/{repo_id}"

    @staticmethod
    def _head(repo: Repo) -> str:
        return repo.commits[-1]["oid"] if repo.commits else "0" * 40

    # -- downloads ---------------------------------------------------------------------------
    def _model_info(self, req, path: str, auth: str | None) -> None:
        repo_id, _, revision = path[len("/api/models/"):].strip("/").partition("/revision/")
        repo = self.models.get(repo_id)
        headers: dict[str, str] = {}
        if repo is None:
            status, answer, headers["X-Error-Code"] = 404, {"error": "Repository not found"}, "RepoNotFound"
        elif revision not in ("", "main", repo.commit):
            status, answer, headers["X-Error-Code"] = 404, {"error": "Invalid rev id"}, "RevisionNotFound"
        else:
            status, answer = 200, {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                                   "gated": "manual" if repo.gated else False,
                                   "siblings": [{"rfilename": name} for name in sorted(repo.files)]}
        self._answer(req, path, auth, status, headers, json.dumps(answer).encode(), "application/json")

    def _answer(self, req, path: str, auth: str | None, status: int, headers: dict[str, str], data: bytes,
                content_type: str) -> None:
        with self._lock:
            self.calls.append(Call(req.command, path, auth, status))
        req.send_response(status)
        for name, value in {"Content-Type": content_type, **headers}.items():
            req.send_header(name, value)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if req.command == "GET":
            req.wfile.write(data)

    def _resolve(self, req, path: str, auth: str | None) -> None:
        """`/{org}/{name}/resolve/{revision}/{filename}`: the file, or the Hub's error headers."""
        repo_id, _, rest = path.strip("/").partition("/resolve/")
        revision, _, filename = rest.partition("/")
        repo = self.models.get(repo_id)
        headers: dict[str, str] = {}
        data = b""
        if repo is None:
            status, headers["X-Error-Code"] = 404, "RepoNotFound"
        elif repo.gated and auth != f"Bearer {self.token}":
            status, headers["X-Error-Code"] = (403 if auth else 401), "GatedRepo"
            headers["X-Error-Message"] = f"Access to model {repo_id} is restricted."
        elif revision not in ("main", repo.commit):
            status, headers["X-Error-Code"] = 404, "RevisionNotFound"
        elif filename not in repo.files:
            status, headers["X-Error-Code"] = 404, "EntryNotFound"
            headers["X-Repo-Commit"] = repo.commit
        else:
            status, data = 200, repo.files[filename]
            headers.update({"X-Repo-Commit": repo.commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'})
        self._answer(req, path, auth, status, headers, data, "application/octet-stream")

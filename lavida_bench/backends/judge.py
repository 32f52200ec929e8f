"""Edit judge: any OpenAI-compatible chat-completions endpoint (GPT-4o/4.1, or a local vLLM).

The request is ImgEdit's (PKU-YuanGroup/ImgEdit `Benchmark/Basic/basic_bench.py`): one user message
whose content is the rubric text followed by the images as PNG data URLs, original first, edited
second; no sampling options (the official call sets none). The reply text is returned (redacted,
see below); parsing the three scores is the task's job.

Robustness the official script lacks (its retry decorator is commented out in `basic_bench.py`):
- retries with exponential backoff on timeouts, connection errors, HTTP 429 and 5xx, and on
  malformed 200 responses, at most `judge_max_retries` retries per item; other 4xx (bad key,
  bad request) fail at once. Either way `judge` raises `JudgeError`: the scoring stage records
  the item as a scoring error (the run exits 1) and judges it again on the next run;
- `judge_timeout_s` bounds each request as a whole (connect, send, headers, body), not each
  socket read: a server that drips one byte a second is cut off at the deadline;
- redirects are never followed: a 3xx is an error naming both URLs, because a followed redirect
  would carry the API key and the images to whatever server the Location names;
- every successful judgment is cached by (item key, image hashes, judge model, prompt hash) in a
  JSONL file with one atomic append per entry, so a re-run never pays twice; failures are
  appended too (status "error") for the record, and retried next time. The cache file is opened
  for appending when the judge is built, so an unwritable cache stops the run (`StoreError`,
  exit 2, naming the file) before any request is paid for. If a write fails later (the disk
  fills up mid-run), the run stops the same way and the reply already received is written to
  the error log (redacted), so no paid reply is silently lost;
- the API key is read from the environment variable named by `judge_api_key_env` at call time
  and sent only in the Authorization header. That variable is declared a credential
  (`safety.declare_credential`), so its value is redacted from everything the harness writes,
  whatever its name; it is also scrubbed from every error message. Replies are redacted before
  they are returned or cached (an echoing server must not write the key to disk). Set
  `judge_api_key_env=""` for keyless local servers.

urllib is used rather than the `openai` package (installed here too) to keep the retry, timeout,
redirect and error policy explicit and identical for every server.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from PIL import Image

from lavida_bench.api import StoreError
from lavida_bench.backends.base import Backend
from lavida_bench.safety import declare_credential, redact

if TYPE_CHECKING:
    from lavida_bench.backends import BackendsConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
CACHE_NAME = "judge_cache.jsonl"  # file name used inside Backends' cache_dir


class JudgeError(RuntimeError):
    """No usable reply for an item after the retry budget (or a non-retryable failure). Raised,
    never returned as a result, so the scoring stage records it and retries it next run."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    pass


def image_sha256(image: Image.Image) -> str:
    """Hash of the RGB pixels and size (stable across PNG encoder versions, unlike file bytes)."""
    rgb = image.convert("RGB")
    h = hashlib.sha256(f"RGB:{rgb.width}x{rgb.height}:".encode())
    h.update(rgb.tobytes())
    return h.hexdigest()


def cache_key(key: str, image_hashes: list[str], model: str, prompt: str) -> str:
    """The identity of one judgment: item, images, judge model and exact prompt text."""
    prompt_sha = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    return hashlib.sha256(json.dumps([key, image_hashes, model, prompt_sha]).encode()).hexdigest()


class JudgeCache:
    """Judgments in a JSONL file (or memory only when `path` is None).

    Each entry is one line written with a single O_APPEND write and fsynced, so concurrent
    writers do not interleave and a kill leaves at most one torn last line, which is skipped.
    The file is opened for appending at once: a cache that cannot be read or written is a
    `StoreError` naming it before any judgment is paid for. Entries are redacted before writing.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._ok: dict[str, str] = {}
        if path is not None:
            if path.exists():
                self._load(path)
            self._store(b"")  # creates it; proves it can be appended to

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise StoreError(f"judge cache {path}: not a regular file "
                             "(backends.judge_cache names a JSONL file)")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise StoreError(f"cannot read the judge cache {path}: {err.strerror or err}") from err
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                log.warning("%s line %d: unreadable cache entry skipped (torn write?)", path, number)
                continue
            ok = isinstance(entry, dict) and entry.get("status") == "ok"
            if ok and isinstance(entry.get("reply"), str):
                self._ok[str(entry.get("cache_key"))] = entry["reply"]

    def get(self, key: str) -> str | None:
        return self._ok.get(key)

    def append(self, entry: dict[str, Any]) -> None:
        """Keep `entry` (redacted) in memory and on disk; `StoreError` naming the file if the
        disk refuses it."""
        entry = redact(entry)
        if entry.get("status") == "ok":
            self._ok[entry["cache_key"]] = entry["reply"]
        if self.path is not None:
            self._store((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))

    def _store(self, data: bytes) -> None:
        try:
            self._write(data)
        except OSError as err:
            raise StoreError(f"cannot write the judge cache {self.path}: {err.strerror or err} "
                             "(fix it or point backends.judge_cache at a writable file)") from err

    def _write(self, data: bytes) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if data and os.fstat(fd).st_size and not _ends_with_newline(self.path):
                data = b"\n" + data  # do not glue onto a torn line
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _png_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAIJudge(Backend):
    """Chat-completions judge with bounded retries and a reply cache."""

    name: ClassVar[str] = "openai"

    def __init__(self, url: str, model: str, api_key_env: str, timeout_s: float, max_retries: int,
                 backoff_s: float, cache: JudgeCache, sleep: Callable[[float], None] = time.sleep):
        if max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError("backends.judge_max_retries must be >= 0, judge_timeout_s > 0 and "
                             "judge_backoff_s >= 0")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self.cache, self._sleep = cache, sleep
        declare_credential(api_key_env)
        self.failures: list[dict[str, Any]] = []  # this session's failed items (also in the cache file)
        self.requests_sent = 0

    @classmethod
    def check(cls, cfg: BackendsConfig) -> None:
        if not cfg.judge_url:
            raise ValueError("backends.judge_url is not set: give the OpenAI-compatible base URL, "
                             "e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (vLLM)")
        if not cfg.judge_url.startswith(("http://", "https://")):
            raise ValueError(f"backends.judge_url={cfg.judge_url!r} must start with http:// or https://")
        declare_credential(cfg.judge_api_key_env)  # from the start of the run, before any write

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> OpenAIJudge:
        cls.check(cfg)
        return cls(cfg.judge_url, cfg.judge_model, cfg.judge_api_key_env, cfg.judge_timeout_s,
                   cfg.judge_max_retries, cfg.judge_backoff_s, JudgeCache(cls.cache_path(cfg, cache_dir)))

    @staticmethod
    def cache_path(cfg: BackendsConfig, cache_dir: Path | None) -> Path | None:
        if cfg.judge_cache:
            return Path(cfg.judge_cache)
        return Path(cache_dir) / CACHE_NAME if cache_dir is not None else None

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"model": cfg.judge_model, "url": cfg.judge_url, "api_key_env": cfg.judge_api_key_env,
                "cache": cfg.judge_cache, "timeout_s": cfg.judge_timeout_s,
                "max_retries": cfg.judge_max_retries}

    def judge(self, key: str, prompt: str, images: list[Image.Image]) -> str:
        """The judge's reply for one item (redacted); `JudgeError` when there is none."""
        hashes = [image_sha256(im) for im in images]
        ck = cache_key(key, hashes, self.model, prompt)
        cached = self.cache.get(ck)
        if cached is not None:
            return cached
        record = {"cache_key": ck, "key": key, "model": self.model, "images_sha256": hashes}
        reply, errors = self._ask(prompt, images)
        if reply is None:
            failure = {"status": "error", **record, "errors": errors, "attempts": len(errors),
                       "time": time.time()}
            self.failures.append(failure)
            self.cache.append(failure)
            raise JudgeError(f"judge item {key!r}: no reply after {len(errors)} attempt(s) "
                             f"({self.endpoint}): {'; '.join(errors)}")
        reply = redact(reply)
        try:
            self.cache.append({"status": "ok", **record, "reply": reply, "attempts": len(errors) + 1,
                               "time": time.time()})
        except StoreError:  # the run stops; the paid reply goes to the log instead of nowhere
            log.error("judge reply for %r (cache key %s) received but not cached: %r", key, ck, reply)
            raise
        return reply

    def _ask(self, prompt: str, images: list[Image.Image]) -> tuple[str | None, list[str]]:
        """The reply (None if every attempt failed) and the scrubbed errors of failed attempts."""
        api_key = self._api_key()
        body = json.dumps({
            "model": self.model,
            "stream": False,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}] + [
                {"type": "image_url", "image_url": {"url": _png_data_url(im)}} for im in images]}],
        }).encode("utf-8")
        errors: list[str] = []
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(body, api_key), errors
            except _Retryable as err:
                errors.append(redact(_scrub(str(err), api_key)))
                if attempt < self.max_retries:
                    self._sleep(self._delay(attempt, err.retry_after))
            except _Fatal as err:
                errors.append(redact(_scrub(str(err), api_key)))
                break
        return None, errors

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise JudgeError(f"the judge's API key variable {self.api_key_env} is not set "
                             f"(backends.judge_api_key_env; use \"\" for a keyless local server)")
        return value

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(MAX_BACKOFF_S, self.backoff_s * (2 ** attempt))
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF_S))
        return delay

    def _post(self, body: bytes, api_key: str | None) -> str:
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        self.requests_sent += 1
        try:
            status, reply_headers, raw = fetch(request, self.timeout_s)
        except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets
            raise _Retryable(f"{type(err).__name__}: {err}") from None
        if status >= 300:
            raise _http_failure(self.endpoint, status, reply_headers, raw)
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retryable(f"malformed response: {raw[:200].decode('utf-8', 'replace')!r}") from None
        if not isinstance(content, str):
            raise _Retryable(f"malformed response: message content is {type(content).__name__}")
        return content


def _http_failure(url: str, status: int, headers: Message, detail_bytes: bytes) -> Exception:
    """The exception for a non-2xx reply: 429 and 5xx are retried, redirects and other 4xx not."""
    detail = detail_bytes[:300].decode("utf-8", "replace")
    if 300 <= status < 400:
        return _Fatal(f"HTTP {status}: the judge URL {url} redirects to {headers.get('Location')!r}; "
                      "redirects are not followed (the API key and images would go along): "
                      "set backends.judge_url to the final address")
    message = f"HTTP {status}: {detail}".strip()
    if status == 429 or 500 <= status < 600:
        return _Retryable(message, _retry_after(headers.get("Retry-After")))
    return _Fatal(message)


# --- transport: urllib with a whole-request deadline and no redirects -------------------------


def fetch(request: urllib.request.Request, timeout_s: float) -> tuple[int, Message, bytes]:
    """Status, headers and body of `request` (at most 300 bytes of an error body), all received
    within `timeout_s` seconds in total; `TimeoutError` otherwise. Redirects come back as their
    3xx status, never followed."""
    with _Deadline(timeout_s) as deadline:
        opener = urllib.request.build_opener(_RefuseRedirects, _DeadlineHTTPHandler(deadline),
                                             _DeadlineHTTPSHandler(deadline))
        try:
            try:
                with opener.open(request, timeout=timeout_s) as response:
                    status, headers, body = response.status, response.headers, response.read()
            except urllib.error.HTTPError as err:
                status, headers, body = err.code, err.headers, err.read(300) if err.fp else b""
        except (OSError, http.client.HTTPException):
            if deadline.passed():
                raise TimeoutError(f"no complete reply within {timeout_s:g} s") from None
            raise
        if deadline.passed():  # a reply read to EOF may have been cut short by the deadline
            raise TimeoutError(f"no complete reply within {timeout_s:g} s")
    return status, headers, body


class _Deadline:
    """Shuts down every connection of one request when its time is up. Socket timeouts bound
    each read, not the request: a server sending a byte per second would otherwise hold it for
    as long as it likes. Shutting the socket down wakes any read blocked on it."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        return max(0.001, self.end - time.monotonic())

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.end

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock`'s connection at the deadline (a duplicate descriptor is kept, so this also
        works once TLS has taken the original over)."""
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shutdown(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def connection(self, cls: type[_WatchedConnection]) -> Callable[..., _WatchedConnection]:
        def make(*args: Any, **kwargs: Any) -> _WatchedConnection:
            conn = cls(*args, **kwargs)
            conn.deadline = self
            return conn
        return make


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


class _WatchedConnection(http.client.HTTPConnection):
    deadline: _Deadline

    def connect(self) -> None:
        self.timeout = self.deadline.remaining()  # bounds connecting, too
        super().connect()
        self.deadline.watch(self.sock)


class _WatchedTLSConnection(http.client.HTTPSConnection, _WatchedConnection):
    """HTTPSConnection.connect calls _WatchedConnection.connect for the TCP part (watched), then
    wraps the socket in TLS: the handshake is inside the deadline too."""


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.deadline.connection(_WatchedConnection), req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.deadline.connection(_WatchedTLSConnection), req)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx stays an error response (the caller names it), instead of being followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text

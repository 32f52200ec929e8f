"""Edit judge: any OpenAI-compatible chat-completions endpoint (GPT-4o/4.1, or a local vLLM).

The request is ImgEdit's (`Benchmark/Basic/basic_bench.py`, benchmarks.md §4.3): one user message
whose content is the rubric text followed by the images as PNG data URLs, original first, edited
second; no sampling options (the official call sets none). The raw reply text is returned; parsing
the three scores is the task's job.

Robustness the official script lacks (its retry decorator is commented out, benchmarks.md §4.6):
- retries with exponential backoff on timeouts, connection errors, HTTP 429 and 5xx, and on
  malformed 200 responses, at most `judge_max_retries` retries per item, then `JudgeError`;
  other 4xx (bad key, bad request) fail at once;
- every successful judgment is cached by (item key, image hashes, judge model, prompt hash) in a
  JSONL file with one atomic append per entry, so a re-run never pays twice; failures are
  appended too (status "error") for the record, and retried next time;
- the API key is read from the environment variable named by `judge_api_key_env` at call time,
  sent only in the Authorization header, and scrubbed from every error message; it is never
  stored, logged or written to any file. Set `judge_api_key_env=""` for keyless local servers.

urllib is used rather than the `openai` package (installed here too) to keep the retry, timeout
and error policy explicit and identical for every server.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from lavida_bench.backends.base import Backend

if TYPE_CHECKING:
    from lavida_bench.backends import BackendsConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
CACHE_NAME = "judge_cache.jsonl"  # file name used inside Backends' cache_dir


class JudgeError(RuntimeError):
    """No usable reply for an item after the retry budget (or a non-retryable failure)."""


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
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._ok: dict[str, str] = {}
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s line %d: unreadable cache entry skipped (torn write?)", path, number)
                    continue
                if entry.get("status") == "ok" and isinstance(entry.get("reply"), str):
                    self._ok[entry["cache_key"]] = entry["reply"]

    def get(self, key: str) -> str | None:
        return self._ok.get(key)

    def append(self, entry: dict[str, Any]) -> None:
        if entry.get("status") == "ok":
            self._ok[entry["cache_key"]] = entry["reply"]
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not _ends_with_newline(self.path):
                data = b"\n" + data  # do not glue onto a torn line
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
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
        self.failures: list[dict[str, Any]] = []  # this session's failed items (also in the cache file)
        self.requests_sent = 0

    @classmethod
    def check(cls, cfg: BackendsConfig) -> None:
        if not cfg.judge_url:
            raise ValueError("backends.judge_url is not set: give the OpenAI-compatible base URL, "
                             "e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (vLLM)")
        if not cfg.judge_url.startswith(("http://", "https://")):
            raise ValueError(f"backends.judge_url={cfg.judge_url!r} must start with http:// or https://")

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
        hashes = [image_sha256(im) for im in images]
        ck = cache_key(key, hashes, self.model, prompt)
        cached = self.cache.get(ck)
        if cached is not None:
            return cached
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
                reply = self._post(body, api_key)
            except _Retryable as err:
                errors.append(_scrub(str(err), api_key))
                if attempt < self.max_retries:
                    self._sleep(self._delay(attempt, err.retry_after))
                continue
            except _Fatal as err:
                errors.append(_scrub(str(err), api_key))
                break
            self.cache.append({"status": "ok", "cache_key": ck, "key": key, "model": self.model,
                               "images_sha256": hashes, "reply": reply, "attempts": attempt + 1,
                               "time": time.time()})
            return reply
        failure = {"status": "error", "cache_key": ck, "key": key, "model": self.model,
                   "images_sha256": hashes, "errors": errors, "attempts": len(errors), "time": time.time()}
        self.failures.append(failure)
        self.cache.append(failure)
        raise JudgeError(f"judge item {key!r}: no reply after {len(errors)} attempt(s) "
                         f"({self.endpoint}): {'; '.join(errors)}")

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
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read(300).decode("utf-8", "replace") if err.fp else ""
            message = f"HTTP {err.code} {err.reason}: {detail}".strip()
            if err.code == 429 or 500 <= err.code < 600:
                raise _Retryable(message, _retry_after(err.headers.get("Retry-After"))) from None
            raise _Fatal(message) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise _Retryable(f"{type(err).__name__}: {err}") from None
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retryable(f"malformed response: {raw[:200].decode('utf-8', 'replace')!r}") from None
        if not isinstance(content, str):
            raise _Retryable(f"malformed response: message content is {type(content).__name__}")
        return content


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text

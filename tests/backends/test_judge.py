"""The OpenAI-compatible judge client against a local server that misbehaves on purpose."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from lavida_bench.backends import Backends, BackendsConfig
from lavida_bench.backends.judge import (
    JudgeCache,
    JudgeError,
    OpenAIJudge,
    cache_key,
    image_sha256,
)

SECRET = "sk-test-SECRET-0123456789"
KEY_ENV = "LAVIDA_BENCH_TEST_JUDGE_KEY"
GOOD_REPLY = "Brief reasoning: fine.\nPrompt Compliance: 4\nVisual Naturalness: 3\nPhysical & Detail Integrity: 3"


class Server:
    """Answers each POST with the next scripted action; records what it received."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                        "body": json.loads(body)})
                action = server.script.pop(0) if server.script else "good"
                try:
                    if action == "timeout":
                        time.sleep(1.0)  # longer than the client's timeout
                        self._send(200, {"choices": [{"message": {"content": "too late"}}]})
                    elif action == "429":
                        self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
                    elif action == "500":  # echoes the Authorization header: the client must scrub it
                        self._send(500, {"error": f"boom, you sent {self.headers.get('Authorization')}"})
                    elif action == "401":
                        self._send(401, {"error": "bad key"})
                    elif action == "garbage":
                        self._send_raw(200, b"<html>definitely not json")
                    else:
                        self._send(200, {"choices": [{"message": {"role": "assistant", "content": GOOD_REPLY}}]})
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout case)

            def _send(self, code: int, payload: dict, headers: dict | None = None) -> None:
                self._send_raw(code, json.dumps(payload).encode(), headers)

            def _send_raw(self, code: int, data: bytes, headers: dict | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(KEY_ENV, SECRET)
    srv = Server()
    yield srv
    srv.close()


def images() -> list[Image.Image]:
    return [Image.new("RGB", (8, 8), (10, 20, 30)), Image.new("RGB", (8, 8), (200, 20, 30))]


def make_cfg(server: Server, tmp_path: Path, retries: int) -> BackendsConfig:
    return BackendsConfig(judge="openai", judge_url=server.url, judge_model="judge-x",
                          judge_api_key_env=KEY_ENV, judge_cache=str(tmp_path / "cache" / "judge.jsonl"),
                          judge_timeout_s=0.3, judge_max_retries=retries, judge_backoff_s=0.01)


def cache_lines(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "cache" / "judge.jsonl").read_text().splitlines()]


def assert_secret_nowhere(tmp_path: Path) -> None:
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "the test should have written files"
    for p in files:
        assert SECRET.encode() not in p.read_bytes(), p


def test_timeout_429_500_garbage_then_good(server: Server, tmp_path: Path) -> None:
    server.script = ["timeout", "429", "500", "garbage", "good"]
    judge = Backends(make_cfg(server, tmp_path, retries=4)).judge
    assert judge.judge("item-1", "Rate the edit.", images()) == GOOD_REPLY
    assert len(server.requests) == 5  # 1 try + 4 retries
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["auth"] == f"Bearer {SECRET}"
    content = first["body"]["messages"][0]["content"]
    assert first["body"]["model"] == "judge-x"
    assert content[0] == {"type": "text", "text": "Rate the edit."}
    assert [c["type"] for c in content[1:]] == ["image_url", "image_url"]  # original, edited
    assert all(c["image_url"]["url"].startswith("data:image/png;base64,") for c in content[1:])
    [entry] = cache_lines(tmp_path)
    assert entry["status"] == "ok" and entry["reply"] == GOOD_REPLY and entry["attempts"] == 5
    assert judge.failures == []
    assert_secret_nowhere(tmp_path)


def test_cached_judgment_is_not_paid_twice(server: Server, tmp_path: Path) -> None:
    cfg = make_cfg(server, tmp_path, retries=0)
    assert Backends(cfg).judge.judge("item-1", "Rate.", images()) == GOOD_REPLY
    again = Backends(cfg).judge  # a fresh process reads the cache file
    assert again.judge("item-1", "Rate.", images()) == GOOD_REPLY
    assert len(server.requests) == 1
    # a different prompt or a different image is a different judgment
    again.judge("item-1", "Rate differently.", images())
    again.judge("item-1", "Rate.", images()[::-1])
    assert len(server.requests) == 3


def test_retries_are_bounded_and_failures_recorded(server: Server, tmp_path: Path) -> None:
    server.script = ["429", "500", "garbage", "good"]
    judge = Backends(make_cfg(server, tmp_path, retries=2)).judge
    with pytest.raises(JudgeError) as err:
        judge.judge("item-2", "Rate.", images())
    assert len(server.requests) == 3
    message = str(err.value)
    assert "item-2" in message and "3 attempt(s)" in message
    assert "HTTP 429" in message and "HTTP 500" in message and "malformed response" in message
    assert SECRET not in message and "Bearer ***" in message  # the server echoed the key; scrubbed
    [failure] = judge.failures
    assert failure["status"] == "error" and len(failure["errors"]) == 3
    assert [e["status"] for e in cache_lines(tmp_path)] == ["error"]
    # the failure is recorded, not cached: the next run asks again and succeeds
    assert Backends(make_cfg(server, tmp_path, retries=2)).judge.judge("item-2", "Rate.", images()) == GOOD_REPLY
    assert len(server.requests) == 4
    assert [e["status"] for e in cache_lines(tmp_path)] == ["error", "ok"]
    assert_secret_nowhere(tmp_path)


def test_client_errors_are_not_retried(server: Server, tmp_path: Path) -> None:
    server.script = ["401"]
    with pytest.raises(JudgeError, match="HTTP 401"):
        Backends(make_cfg(server, tmp_path, retries=4)).judge.judge("item-3", "Rate.", images())
    assert len(server.requests) == 1


def test_missing_key_variable_is_named_not_sent(server: Server, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(JudgeError, match=KEY_ENV):
        Backends(make_cfg(server, tmp_path, retries=4)).judge.judge("item-4", "Rate.", images())
    assert server.requests == []


def test_keyless_server_gets_no_authorization_header(server: Server, tmp_path: Path) -> None:
    cfg = make_cfg(server, tmp_path, retries=0)
    cfg.judge_api_key_env = ""
    Backends(cfg).judge.judge("item-5", "Rate.", images())
    assert server.requests[0]["auth"] is None


def test_backoff_doubles_and_honours_retry_after(tmp_path: Path) -> None:
    delays: list[float] = []
    judge = OpenAIJudge("http://127.0.0.1:9/v1", "m", "", 1.0, 4, 0.5, JudgeCache(None), sleep=delays.append)
    assert [judge._delay(a, None) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert judge._delay(0, 7.0) == 7.0  # Retry-After wins when longer
    assert judge._delay(10, None) == 60.0  # capped


def test_torn_cache_line_is_skipped_and_not_glued(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    ck = cache_key("a", [image_sha256(images()[0])], "m", "p")
    path.write_text(json.dumps({"status": "ok", "cache_key": ck, "reply": "R"}) + "\n" + '{"status": "o')
    cache = JudgeCache(path)
    assert cache.get(ck) == "R"
    cache.append({"status": "ok", "cache_key": "k2", "reply": "R2"})
    assert JudgeCache(path).get("k2") == "R2"


def test_judge_needs_a_url() -> None:
    with pytest.raises(ValueError, match="backends.judge_url"):
        _ = Backends(BackendsConfig(judge="openai")).judge

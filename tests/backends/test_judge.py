"""The OpenAI-compatible judge client against a local server that misbehaves on purpose."""
from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from lavida_bench import safety
from lavida_bench.api import StoreError
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
DRIP_S = 0.1
GOOD_REPLY = "Brief reasoning: fine.\nPrompt Compliance: 4\nVisual Naturalness: 3\nPhysical & Detail Integrity: 3"


class Server:
    """Answers each POST with the next scripted action; records what it received."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.redirect_to = ""
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
                    elif action == "redirect":
                        self._send(302, {}, {"Location": server.redirect_to})
                    elif action == "drip_body":  # one byte at a time, each well within the timeout
                        self._drip(b"HTTP/1.1 200 OK\r\n\r\n", self._reply_bytes(GOOD_REPLY))
                    elif action == "drip_headers":
                        self._drip(b"", b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"." * 30 + b"\r\n\r\n"
                                   + self._reply_bytes(GOOD_REPLY))
                    elif action == "echo_auth":  # a 200 reply that quotes the credential back
                        self._send(200, {"choices": [{"message": {"content": GOOD_REPLY + "\nYou sent: "
                                                                  + str(self.headers.get("Authorization"))}}]})
                    else:
                        self._send(200, {"choices": [{"message": {"role": "assistant", "content": GOOD_REPLY}}]})
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout case)

            def do_GET(self) -> None:  # where a followed POST redirect would arrive
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                        "body": None})
                self._send(200, {"choices": [{"message": {"content": GOOD_REPLY}}]})

            def _reply_bytes(self, content: str) -> bytes:
                return json.dumps({"choices": [{"message": {"content": content}}]}).encode()

            def _drip(self, head: bytes, slow: bytes) -> None:
                """Sends `head` at once, then `slow` one byte every DRIP_S seconds (about 3 s in
                all, so a client without a whole-request deadline takes that long, no longer)."""
                self.close_connection = True
                self.wfile.write(head)
                for i in range(0, len(slow), max(1, len(slow) // 30)):
                    self.wfile.write(slow[i:i + max(1, len(slow) // 30)])
                    self.wfile.flush()
                    time.sleep(DRIP_S)

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
        if tls is not None:  # (certificate, key): the handshake runs as each connection is accepted
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/v1"
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
    monkeypatch.setattr(safety, "CREDENTIAL_VARIABLES", set())  # each test declares its own
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


# ------------------------------------------------------------------------------------------------
# attacks (issue 13): redirects, slow servers, an unwritable cache, echoed credentials


def test_a_redirect_is_refused_and_the_key_stays_home(server: Server, tmp_path: Path) -> None:
    other = Server()  # a second origin
    try:
        server.redirect_to = other.url + "/chat/completions"
        server.script = ["redirect"]
        with pytest.raises(JudgeError, match="redirect") as err:
            Backends(make_cfg(server, tmp_path, retries=3)).judge.judge("item-r", "Rate.", images())
        assert other.requests == []  # neither the key nor the images reached it
        assert len(server.requests) == 1  # refused at once, not retried
        assert server.url in str(err.value) and other.url in str(err.value)  # both URLs named
    finally:
        other.close()


@pytest.mark.parametrize("action", ["drip_body", "drip_headers"])
def test_a_dripping_server_is_cut_at_the_whole_request_deadline(server: Server, tmp_path: Path,
                                                                 action: str) -> None:
    server.script = [action]  # each byte within the 0.3 s timeout, the reply in about 3 s
    start = time.monotonic()
    with pytest.raises(JudgeError, match=r"no complete reply within 0\.3 s"):
        Backends(make_cfg(server, tmp_path, retries=0)).judge.judge("item-d", "Rate.", images())
    assert time.monotonic() - start < 1.5


def test_an_unwritable_cache_stops_before_any_request(server: Server, tmp_path: Path) -> None:
    cfg = make_cfg(server, tmp_path, retries=0)
    Path(cfg.judge_cache).mkdir(parents=True)  # a folder where the file should be: unwritable, even for root
    with pytest.raises(StoreError, match=re.escape(cfg.judge_cache)):
        Backends(cfg).judge.judge("item-c", "Rate.", images())
    assert server.requests == []  # nothing was paid for


def test_a_reply_the_cache_cannot_hold_stops_the_run_but_is_kept(server: Server, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The disk fills up between the request and the cache write: the run stops (StoreError naming
    the file) and the reply that was paid for is in the error log, redacted."""
    server.script = ["echo_auth"]
    judge = Backends(make_cfg(server, tmp_path, retries=0)).judge

    def disk_full(self: JudgeCache, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JudgeCache, "_write", disk_full)
    with pytest.raises(StoreError, match=r"judge\.jsonl.*No space left on device"):
        judge.judge("item-f", "Rate.", images())
    assert len(server.requests) == 1
    assert "Prompt Compliance: 4" in caplog.text and "item-f" in caplog.text
    assert SECRET not in caplog.text


def test_reply_content_is_redacted_in_the_cache_and_the_result(server: Server, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The key variable's name matches no secret pattern: it is redacted because the judge sends it."""
    monkeypatch.setenv("LAVIDA_JUDGE_BEARER", SECRET)
    cfg = make_cfg(server, tmp_path, retries=0)
    cfg.judge_api_key_env = "LAVIDA_JUDGE_BEARER"
    server.script = ["echo_auth"]
    reply = Backends(cfg).judge.judge("item-e", "Rate.", images())
    assert server.requests[0]["auth"] == f"Bearer {SECRET}"
    assert SECRET not in reply and "You sent: Bearer [REDACTED]" in reply
    [entry] = cache_lines(tmp_path)
    assert entry["reply"] == reply  # a re-run reads back exactly what this run scored
    assert_secret_nowhere(tmp_path)


def imgedit_run(server: Server, tmp_path: Path, *extra: str) -> list[str]:
    from lavida_bench.tasks import TASKS

    data = TASKS.get("imgedit").make_fixture(tmp_path / "data")
    return [f"output={tmp_path / 'run'}", "model.kind=constant", f"tasks.imgedit.data={data}",
            "tasks.imgedit.options.crop_size=64", "tasks.imgedit.variants=[plain]", "backends.judge=openai",
            f"backends.judge_url={server.url}", f"backends.judge_api_key_env={KEY_ENV}",
            "backends.judge_timeout_s=5", "backends.judge_max_retries=0", "backends.judge_backoff_s=0", *extra]


def test_judge_failures_are_scoring_errors_retried_on_the_next_run(server: Server, tmp_path: Path) -> None:
    from lavida_bench.app import execute
    from lavida_bench.config import load_config

    overrides = imgedit_run(server, tmp_path)
    server.script = ["500"] * 4
    first = execute(load_config(None, overrides), progress=False)
    assert first.errors == 4  # every item's judgment failed: the run is not clean
    scores_file = tmp_path / "run/records/imgedit/plain/scores.jsonl"
    scores = [json.loads(line) for line in scores_file.open()]
    assert [s["status"] for s in scores] == ["error"] * 4
    assert all("JudgeError" in s["error"] and SECRET not in s["error"] for s in scores)
    second = execute(load_config(None, overrides), progress=False)
    assert second.errors == 0 and len(server.requests) == 8  # each item judged again, once
    rescored = [json.loads(line) for line in scores_file.open()][4:]
    assert [s["status"] for s in rescored] == ["ok"] * 4
    assert all(s["scores"]["status"] == "ok" for s in rescored)
    assert_secret_nowhere(tmp_path)  # records, scores, manifest, metrics, judge cache


def test_an_unwritable_cache_is_exit_2_naming_the_file(server: Server, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from lavida_bench.cli import main

    cache = tmp_path / "cache-is-a-folder.jsonl"
    cache.mkdir()
    assert main(["run", *imgedit_run(server, tmp_path, f"backends.judge_cache={cache}")]) == 2
    assert str(cache) in capsys.readouterr().err
    assert server.requests == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a test certificate")
def test_https_works_and_its_handshake_and_reply_share_the_deadline(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the default context trusts the test certificate
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setattr(safety, "CREDENTIAL_VARIABLES", set())
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    tls = Server(tls=(cert, key))
    try:
        tls.script = ["good", "drip_body"]
        judge = Backends(make_cfg(tls, tmp_path, retries=0)).judge
        assert tls.url.startswith("https://") and judge.judge("item-t", "Rate.", images()) == GOOD_REPLY
        assert tls.requests[0]["auth"] == f"Bearer {SECRET}"
        start = time.monotonic()
        with pytest.raises(JudgeError, match=r"no complete reply within 0\.3 s"):
            judge.judge("item-u", "Rate.", images())
        assert time.monotonic() - start < 1.5
    finally:
        tls.close()

"""The fault proxy forwards untouched requests, injects each fault as the real client sees it, and is seeded."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from genai_roadmap.faults import KINDS, FaultProxy, Faults

REPLY = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Tessaly"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


class _Fake(BaseHTTPRequestHandler):
    """A stand-in for the OpenAI-compatible server: one canned chat completion, and the requests it saw."""
    protocol_version = "HTTP/1.1"
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Fake.seen.append((self.path, json.loads(body)))
        out = json.dumps(REPLY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def ask(proxy, timeout=2.0):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0, timeout=timeout)
    return client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])


def test_forwards_untouched_requests(upstream):
    _Fake.seen.clear()
    with FaultProxy(upstream) as proxy:
        assert proxy.base_url.endswith("/v1")
        reply = ask(proxy)
    assert reply.choices[0].message.content == "Tessaly" and reply.usage.total_tokens == 6
    assert _Fake.seen == [("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}]})]
    assert proxy.log == [(0, None, 200)]


@pytest.mark.parametrize("kind, error", [
    ("rate_limit", openai.RateLimitError),
    ("unavailable", openai.InternalServerError),
    ("drop", openai.APIConnectionError),
    ("slow", openai.APITimeoutError),
])
def test_each_fault_reaches_the_client_as_the_real_error(upstream, kind, error):
    _Fake.seen.clear()
    with FaultProxy(upstream, Faults(**{kind: 1.0}, slow_seconds=0.5)) as proxy:
        with pytest.raises(error) as info:
            ask(proxy, timeout=0.2)
        deadline = time.monotonic() + 3
        while proxy.log[0][2] is None and time.monotonic() < deadline:  # a slow request is still on its way
            time.sleep(0.02)
    if kind == "rate_limit":
        assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "0.05"
    if kind == "unavailable":
        assert info.value.status_code == 503
    assert proxy.log[0][:2] == (0, kind)
    assert len(_Fake.seen) == (1 if kind == "slow" else 0)  # a slow request still reaches the server
    assert proxy.log[0][2] == {"rate_limit": 429, "unavailable": 503, "drop": 0, "slow": 200}[kind]


def test_outage_answers_503_to_everything(upstream):
    with FaultProxy(upstream) as proxy:
        proxy.outage = True
        with pytest.raises(openai.InternalServerError):
            ask(proxy)
        proxy.outage = False
        assert ask(proxy).choices[0].message.content == "Tessaly"
    assert [f for _, f, _ in proxy.log] == ["outage", None]


def test_draws_are_seeded_and_match_the_rates():
    faults = Faults(rate_limit=0.1, unavailable=0.1, slow=0.05, drop=0.05, seed=3)
    draws = [faults.draw(i) for i in range(4000)]
    assert draws == [Faults(rate_limit=0.1, unavailable=0.1, slow=0.05, drop=0.05, seed=3).draw(i) for i in range(4000)]
    assert draws != [Faults(rate_limit=0.1, unavailable=0.1, slow=0.05, drop=0.05, seed=4).draw(i) for i in range(4000)]
    for kind, rate in zip(KINDS, (0.1, 0.1, 0.05, 0.05)):
        assert abs(draws.count(kind) / len(draws) - rate) < 0.02
    assert abs(draws.count(None) / len(draws) - 0.7) < 0.03


def test_set_faults_restarts_numbering_and_counts(upstream):
    with FaultProxy(upstream, Faults(rate_limit=0.5, seed=1)) as proxy:
        for _ in range(6):
            try:
                ask(proxy)
            except openai.RateLimitError:
                pass
        first = [f for _, f, _ in proxy.log]
        assert first == [Faults(rate_limit=0.5, seed=1).draw(i) for i in range(6)]
        assert proxy.counts()["rate_limit"] == first.count("rate_limit")
        proxy.set_faults(rate_limit=0.0)
        assert proxy.log == [] and ask(proxy).choices[0].message.content == "Tessaly"
        assert proxy.log == [(0, None, 200)]


def test_rejects_bad_configuration():
    with pytest.raises(ValueError, match="sum to at most 1"):
        Faults(rate_limit=0.7, drop=0.5)
    with pytest.raises(ValueError, match="http://host:port"):
        FaultProxy("localhost:8000")

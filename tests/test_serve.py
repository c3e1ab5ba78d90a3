"""The local OpenAI-compatible server, tested with the official `openai` client.

One server (course-chat, plus the same model served from its folder and as a (model, tokenizer) pair)
answers every test in this file; bad requests must get a 4xx in OpenAI's error shape and leave it serving.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai
import pytest

from genai_roadmap import models
from genai_roadmap.serve import HOST, LocalServer, serve
from genai_roadmap.world import get_world

MODEL = "course-chat"


@pytest.fixture(scope="module")
def course():
    return models.load(MODEL)


@pytest.fixture(scope="module")
def server(course):
    with serve({MODEL: MODEL, "from-folder": str(models.model_path(MODEL)), "from-objects": course}) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    return server.client(max_retries=0, timeout=60)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def raw(server: LocalServer, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{HOST}:{server.port}{path}", data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def assert_still_serving(client) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=user("Hello"), max_tokens=2, temperature=0)
    assert reply.choices[0].finish_reason in ("stop", "length")


# ------------------------------------------------------------------------------------ happy paths
def test_lists_and_retrieves_models(client):
    assert [m.id for m in client.models.list()] == [MODEL, "from-folder", "from-objects"]
    assert client.models.retrieve(MODEL).owned_by == "genai-roadmap"


def test_greedy_chat_matches_transformers_generate(client, course):
    questions = get_world().questions("train")[:6]
    expected = models.chat(*course, [q.prompt for q in questions])
    for q, want in zip(questions, expected):
        for model_id in (MODEL, "from-folder", "from-objects"):
            reply = client.chat.completions.create(model=model_id, messages=user(q.prompt), temperature=0)
            assert reply.choices[0].message.content.strip() == want, (model_id, q.prompt)
            assert reply.choices[0].finish_reason == "stop"
            assert reply.model == model_id and reply.object == "chat.completion"
    assert sum(a == q.answer for a, q in zip(expected, questions)) >= 5  # the model knows its facts


def test_usage_counts_prompt_and_completion_tokens(client, course):
    _, tok = course
    q = get_world().questions("train")[0]
    reply = client.chat.completions.create(model=MODEL, messages=user(q.prompt), temperature=0)
    prompt = tok.apply_chat_template(user(q.prompt), tokenize=False, add_generation_prompt=True)
    assert reply.usage.prompt_tokens == len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert reply.usage.completion_tokens == len(tok(reply.choices[0].message.content,
                                                    add_special_tokens=False)["input_ids"])
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_seeded_sampling_is_reproducible_and_n_gives_several_choices(client):
    kwargs = dict(model="course-chat", messages=user("Tell me about Quenford."), temperature=1.5, max_tokens=12,
                  seed=7, n=3)
    a = client.chat.completions.create(**kwargs)
    b = client.chat.completions.create(**kwargs)
    texts = [c.message.content for c in a.choices]
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert texts == [c.message.content for c in b.choices]
    assert len(set(texts)) >= 2  # each choice has its own seed
    assert 3 <= a.usage.completion_tokens <= 3 * 12


def test_max_tokens_stops_with_length(client):
    reply = client.completions.create(model=MODEL, prompt="Quenford is", max_tokens=3, temperature=0)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3
    reply = client.chat.completions.create(model=MODEL, messages=user("Describe Quenford."),
                                           max_completion_tokens=2, temperature=0)
    assert reply.usage.completion_tokens <= 2


def test_stop_sequences_cut_the_text(client):
    full = client.completions.create(model=MODEL, prompt="Ada Lovelace lives in", max_tokens=12, temperature=0)
    text = full.choices[0].text
    assert "." in text, text
    cut = client.completions.create(model=MODEL, prompt="Ada Lovelace lives in", max_tokens=12, temperature=0,
                                    stop=["."])
    assert cut.choices[0].text == text[:text.index(".")]
    assert cut.choices[0].finish_reason == "stop"


def test_completions_take_a_list_of_prompts_and_echo(client):
    reply = client.completions.create(model=MODEL, prompt=["Quenford is", "Vexco is"], max_tokens=4,
                                      temperature=0, echo=True)
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].text.startswith("Quenford is") and reply.choices[1].text.startswith("Vexco is")


@pytest.mark.parametrize("stop", [None, ["."]])
def test_streaming_gives_the_same_text(client, stop):
    q = get_world().questions("train")[1]
    kwargs = dict(model=MODEL, messages=user(f"{q.prompt} Tell me more."), temperature=0, max_tokens=24, stop=stop)
    whole = client.chat.completions.create(**kwargs).choices[0]
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.finish_reason]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    streamed = client.completions.create(model=MODEL, prompt="Quenford is", max_tokens=10, temperature=0,
                                         stream=True, stop=stop)
    plain = client.completions.create(model=MODEL, prompt="Quenford is", max_tokens=10, temperature=0, stop=stop)
    assert "".join(c.choices[0].text for c in streamed) == plain.choices[0].text


def test_inference_client_reaches_the_server_even_in_hub_offline_mode(server, client, monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    q = get_world().questions("train")[2]
    hf = server.hf_client().chat_completion(messages=user(q.prompt), model=MODEL, temperature=0, max_tokens=16)
    oa = client.chat.completions.create(model=MODEL, messages=user(q.prompt), temperature=0, max_tokens=16)
    assert hf.choices[0].message.content == oa.choices[0].message.content
    from huggingface_hub import InferenceClient  # anything but this machine is still refused
    with pytest.raises(OfflineModeIsEnabled):
        InferenceClient(base_url="http://example.com/v1", api_key="x").chat_completion(messages=user("hi"), model="m")


def test_system_and_multi_turn_messages_and_text_parts(client):
    messages = [{"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": [{"type": "text", "text": "Which city is home to "},
                                             {"type": "text", "text": get_world().people[0].name + "?"}]}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=8)
    assert reply.choices[0].message.role == "assistant"


# ------------------------------------------------------------------------------------ bad requests
BAD_CHAT = {
    "unknown model": (dict(model="gpt-9"), 404, "model_not_found"),
    "no messages": (dict(messages=[]), 400, None),
    "message without role": (dict(messages=[{"content": "hi"}]), 400, None),
    "unknown role": (dict(messages=[{"role": "wizard", "content": "hi"}]), 400, None),
    "content not text": (dict(messages=[{"role": "user", "content": 42}]), 400, None),
    "messages not a list": (dict(messages="hi"), 400, None),
    "max_tokens zero": (dict(max_tokens=0), 400, None),
    "max_tokens negative": (dict(max_tokens=-5), 400, None),
    "max_tokens past the context": (dict(max_tokens=10**6), 400, "context_length_exceeded"),
    "temperature too high": (dict(temperature=5), 400, None),
    "top_p zero": (dict(top_p=0), 400, None),
    "too many stops": (dict(stop=["a", "b", "c", "d", "e"]), 400, None),
    "n too large": (dict(n=100), 400, None),
}


@pytest.mark.parametrize("case", list(BAD_CHAT), ids=list(BAD_CHAT))
def test_bad_chat_requests_get_openai_errors_and_the_server_keeps_serving(client, case):
    changes, status, code = BAD_CHAT[case]
    kwargs = dict(model=MODEL, messages=user("hi"), max_tokens=4) | changes
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**kwargs)
    err = info.value
    assert err.status_code == status
    assert set(err.body) >= {"message", "type", "param", "code"}, err.body  # OpenAI's error object
    assert err.body["type"] == "invalid_request_error" and err.body["message"]
    if code:
        assert err.body["code"] == code
    assert_still_serving(client)


def test_unknown_model_error_names_the_served_models(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=user("hi"))
    assert "course-chat" in info.value.body["message"] and info.value.body["param"] == "model"


def test_bad_completion_requests(client):
    for kwargs in (dict(prompt=[]), dict(prompt=""), dict(max_tokens=0), dict(model="nope")):
        with pytest.raises(openai.APIStatusError) as info:
            client.completions.create(**(dict(model=MODEL, prompt="Hi") | kwargs))
        assert 400 <= info.value.status_code < 500 and info.value.body["message"]
    assert_still_serving(client)


def test_raw_http_errors_keep_the_openai_shape(server, client):
    status, body = raw(server, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and "JSON" in body["error"]["message"]
    status, body = raw(server, "GET", "/v1/nothing-here")
    assert status == 404 and body["error"]["type"] == "invalid_request_error"
    status, body = raw(server, "GET", "/v1/chat/completions")
    assert status == 405 and body["error"]["message"]
    status, body = raw(server, "GET", "/health")
    assert status == 200 and body["status"] == "ok"
    assert_still_serving(client)


# ------------------------------------------------------------------------------------ lifecycle
def test_binds_loopback_free_port_and_shuts_down(course):
    s = serve({"m": course})
    with pytest.raises(RuntimeError, match="not running"):
        s.base_url
    with s:
        assert s.base_url.startswith("http://127.0.0.1:") and s.port > 0
        assert s.client().models.list().data[0].id == "m"
        port = s.port
    with pytest.raises(OSError):
        socket.create_connection((HOST, port), timeout=2).close()


def test_port_in_use_gives_a_clear_error(course):
    with serve({"m": course}) as first:
        with pytest.raises(OSError, match="Pass port=0"):
            serve({"m": course}, port=first.port).start()


def test_unknown_model_names_fail_before_serving():
    with pytest.raises(ValueError, match="course model name"):
        serve("definitely-not-a-model").start()


def test_command_line_serves_and_stops_on_ctrl_c(course):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "genai_roadmap.serve", "--port", "0", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "Serving" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=url, api_key="local", max_retries=3)
        assert [m.id for m in client.models.list()] == [MODEL]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_command_line_rejects_an_unknown_model():
    out = subprocess.run([sys.executable, "-m", "genai_roadmap.serve", "--model", "nope"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "cannot serve 'nope'" in out.stderr


# ------------------------------------------------------------------------------------ tool calling
class ScriptedLM:
    """A stand-in causal LM that writes a fixed text, chosen by a substring of its prompt (else `default`).

    Enough of a model for the server: config, generation_config, device, and forward(input_ids, cache).
    """

    def __init__(self, tokenizer, scripts: dict[str, str], default: str = "I cannot help."):
        import types

        import torch

        self.tokenizer, self.scripts, self.default = tokenizer, scripts, default
        self.config = types.SimpleNamespace(max_position_embeddings=512)
        self.generation_config = types.SimpleNamespace(eos_token_id=tokenizer.eos_token_id)
        self.device = torch.device("cpu")
        self.prompts: list[str] = []

    def eval(self):
        return self

    def forward(self, input_ids, use_cache=True, past_key_values=None):
        import types

        import torch

        if past_key_values is None:  # the prompt: choose the script
            prompt = self.tokenizer.decode(input_ids[0], skip_special_tokens=False)
            self.prompts.append(prompt)
            text = next((t for key, t in self.scripts.items() if key in prompt), self.default)
            script = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
            state = {"script": script, "step": 0}
        else:
            state = past_key_values
        logits = torch.full((1, input_ids.shape[1], len(self.tokenizer)), -1e9)
        logits[0, -1, state["script"][min(state["step"], len(state["script"]) - 1)]] = 0.0
        state = dict(state, step=state["step"] + 1)
        return types.SimpleNamespace(logits=logits, past_key_values=state)

    __call__ = forward


LOOKUP = {"type": "function", "function": {
    "name": "lookup", "description": "Look up one fact about a person.",
    "parameters": {"type": "object", "required": ["person", "relation"], "properties": {
        "person": {"type": "string"}, "relation": {"type": "string", "enum": ["city", "job", "company", "hobby"]}}}}}
CALL_TEXT = 'I need the city.<tool_call>{"name": "lookup", "arguments": {"person": "Ada", "relation": "city"}}</tool_call>'


@pytest.fixture(scope="module")
def tool_server(course):
    import copy

    from genai_roadmap.agents import add_tool_tokens

    tokenizer = copy.deepcopy(course[1])
    add_tool_tokens(None, tokenizer)
    lm = ScriptedLM(tokenizer, {
        "<|tool|>Quenford<|end|>": "Quenford",                    # after the tool result: the answer
        "bad json": '<tool_call>{"name": "lookup", "arguments": {"person": "Ada}</tool_call>',
        "two calls": '<tool_call>{"name": "lookup", "arguments": {"person": "A", "relation": "city"}}</tool_call>'
                     '<tool_call>{"name": "lookup", "arguments": {"person": "B", "relation": "job"}}</tool_call>',
        "<tools>lookup(person, relation)</tools>": CALL_TEXT,      # the tools were rendered: a call
    }, default=CALL_TEXT)  # the first key found in the prompt decides
    with serve({"agent": (lm, tokenizer), MODEL: course}) as s:
        yield s, lm


def test_tools_reach_the_template_and_tool_calls_come_back(tool_server):
    server, lm = tool_server
    client = server.client(max_retries=0)
    reply = client.chat.completions.create(model="agent", messages=user("Which city is home to Ada?"),
                                           tools=[LOOKUP], temperature=0)
    assert "<tools>lookup(person, relation)</tools>" in lm.prompts[-1]
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I need the city."
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"person": "Ada", "relation": "city"}


def test_tool_results_go_back_to_the_model(tool_server):
    server, lm = tool_server
    client = server.client(max_retries=0)
    first = client.chat.completions.create(model="agent", messages=user("Which city is home to Ada?"),
                                           tools=[LOOKUP], temperature=0).choices[0].message
    messages = user("Which city is home to Ada?") + [
        first.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "Quenford"}]
    reply = client.chat.completions.create(model="agent", messages=messages, tools=[LOOKUP], temperature=0)
    prompt = lm.prompts[-1]
    assert ('<tool_call>{"name": "lookup", "arguments": {"person": "Ada", "relation": "city"}}</tool_call><|end|>'
            '<|tool|>Quenford<|end|><|assistant|>') in prompt
    assert reply.choices[0].message.content == "Quenford" and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.tool_calls is None


def test_tool_choice_none_hides_the_tools_and_parses_nothing(tool_server):
    server, lm = tool_server
    reply = server.client(max_retries=0).chat.completions.create(
        model="agent", messages=user("Which city is home to Ada?"), tools=[LOOKUP], tool_choice="none", temperature=0)
    assert "<tools>" not in lm.prompts[-1]
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.tool_calls is None
    assert "<tool_call>" in reply.choices[0].message.content  # the text as generated, unparsed


def test_parallel_calls_and_invalid_json_arguments(tool_server):
    server, _ = tool_server
    client = server.client(max_retries=0)
    calls = client.chat.completions.create(model="agent", messages=user("two calls"), tools=[LOOKUP],
                                           temperature=0).choices[0].message.tool_calls
    assert [json.loads(c.function.arguments)["person"] for c in calls] == ["A", "B"]
    assert len({c.id for c in calls}) == 2
    reply = client.chat.completions.create(model="agent", messages=user("bad json"), tools=[LOOKUP], temperature=0)
    (call,) = reply.choices[0].message.tool_calls  # passed on as written: the client validates and can say why
    assert call.function.name == "lookup" and reply.choices[0].finish_reason == "tool_calls"
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)


def test_streaming_with_tools_sends_tool_call_deltas(tool_server):
    server, _ = tool_server
    chunks = list(server.client(max_retries=0).chat.completions.create(
        model="agent", messages=user("Which city is home to Ada?"), tools=[LOOKUP], temperature=0, stream=True,
        stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "I need the city."
    (call,) = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert call.index == 0 and call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"person": "Ada", "relation": "city"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage.completion_tokens > 0


BAD_TOOLS = {
    "tool message without tool_call_id": dict(messages=user("hi") + [{"role": "tool", "content": "x"}]),
    "tool_choice required": dict(tools=[LOOKUP], tool_choice="required"),
    "a named tool_choice": dict(tools=[LOOKUP], tool_choice={"type": "function", "function": {"name": "lookup"}}),
    "tool_choice without tools": dict(tool_choice="auto"),
    "a tool that is not a function": dict(tools=[{"type": "retrieval"}]),
    "a tool name with spaces": dict(tools=[{"type": "function", "function": {"name": "look up"}}]),
    "tools for a template that cannot show them": dict(model=MODEL, tools=[LOOKUP]),
}


@pytest.mark.parametrize("case", list(BAD_TOOLS), ids=list(BAD_TOOLS))
def test_bad_tool_requests_get_openai_errors(tool_server, case):
    server, _ = tool_server
    client = server.client(max_retries=0)
    kwargs = dict(model="agent", messages=user("hi"), max_tokens=4) | BAD_TOOLS[case]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**kwargs)
    assert info.value.body["message"] and info.value.body["type"] == "invalid_request_error"
    reply = client.chat.completions.create(model="agent", messages=user("Hello"), max_tokens=2, temperature=0)
    assert reply.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_extract_tool_calls_like_the_hermes_parser():
    from genai_roadmap.serve import extract_tool_calls

    ids = iter(["a", "b"])
    content, calls = extract_tool_calls('Thinking.<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>'
                                        '<tool_call>{"name": "g", "arguments": {}}', make_id=lambda: next(ids))
    assert content == "Thinking."
    assert calls == [{"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
                     {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]
    assert extract_tool_calls("Quenford") == ("Quenford", [])
    assert extract_tool_calls("<tool_call>not a call</tool_call>") == ("<tool_call>not a call</tool_call>", [])
    content, calls = extract_tool_calls('<tool_call>{"name": "f", "arguments": {"x": "unterminated}</tool_call>')
    assert content is None and calls[0]["function"] == {"name": "f", "arguments": '{"x": "unterminated'}

"""A local OpenAI-compatible server for Hugging Face causal LMs (by default the course chat model).

Lessons that talk to an LLM over an API (LangChain, agents, prompting, LLMOps, cost, evaluation) use the
same client code against this server that they would use against OpenAI or any OpenAI-compatible
endpoint (vLLM, TGI, Ollama, llama.cpp): only ``base_url`` changes.

From a notebook, as a context manager (a free port on 127.0.0.1, waits until healthy, shuts down cleanly)::

    from genai_roadmap.serve import serve
    with serve("course-chat") as server:
        client = server.client()            # an openai.OpenAI pointed at http://127.0.0.1:PORT/v1
        reply = client.chat.completions.create(
            model="course-chat", messages=[{"role": "user", "content": "Which city is home to ...?"}],
            temperature=0)

From the command line::

    python -m genai_roadmap.serve --model course-chat --port 8000

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (messages through the tokenizer's chat
template; ``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``n``, ``seed``, ``stream``; ``tools`` with
``tool_choice`` "auto" or "none", assistant ``tool_calls`` and ``tool`` messages: the tools go to the chat
template, and ``<tool_call>...</tool_call>`` in the generated text comes back as ``message.tool_calls`` with
finish_reason "tool_calls", in the format of vLLM's ``hermes`` tool parser; see extract_tool_calls for
where its rules differ) and
``POST /v1/completions``, plus ``GET /health``. Bad requests get a 4xx answer in OpenAI's error shape
(``{"error": {"message", "type", "param", "code"}}``) and the server keeps serving. It binds to
127.0.0.1 only: it is a teaching server with no authentication, never to be exposed on a network.
"""
from __future__ import annotations

import argparse
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genai_roadmap.core import kv_cache

HOST = "127.0.0.1"
DEFAULT_MAX_TOKENS = 256  # when a request gives no max_tokens (and the context has room for it)
MAX_STOP = 4  # as OpenAI


# ------------------------------------------------------------------------------------------- errors
class APIError(Exception):
    """An error answered to the client in OpenAI's shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# ------------------------------------------------------------------------------------------ requests
class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    name: str
    arguments: str  # a JSON string, as OpenAI sends it (it may be invalid JSON: the model wrote it)


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolSpec(BaseModel):
    type: Literal["function"]
    function: FunctionSpec


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[TextPart], None] = None
    tool_calls: list[ToolCall] | None = None  # assistant messages: the calls it made
    tool_call_id: str | None = None  # tool messages: which call this answers

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def for_template(self) -> dict:
        """The message as chat templates expect it: arguments parsed to a dict when they are valid JSON."""
        out = {"role": "system" if self.role == "developer" else self.role, "content": self.text()}
        if self.tool_calls:
            calls = []
            for c in self.tool_calls:
                try:
                    arguments = json.loads(c.function.arguments)
                except json.JSONDecodeError:
                    arguments = c.function.arguments
                calls.append({"id": c.id, "type": "function",
                              "function": {"name": c.function.name, "arguments": arguments}})
            out["tool_calls"] = calls
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown OpenAI fields (user, metadata, ...) are accepted
    model: str
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: Union[str, list[str], None] = None
    n: int = Field(1, ge=1, le=8)
    seed: int | None = None
    stream: bool = False
    stream_options: dict | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v):
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        if any(s == "" for s in stops):
            raise ValueError("stop sequences must not be empty")
        return stops

    def stops(self) -> list[str]:
        return list(self.stop or [])


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[ToolSpec] | None = None
    tool_choice: Union[Literal["none", "auto", "required"], dict, None] = None
    parallel_tool_calls: bool | None = None

    @field_validator("messages")
    @classmethod
    def _tool_messages(cls, v):
        for i, m in enumerate(v):
            if m.role == "tool" and not m.tool_call_id:
                raise ValueError(f"messages[{i}] has role 'tool' but no tool_call_id: say which call it answers")
        return v

    def tools_on(self) -> bool:
        """Whether the model is shown the tools (and its tool calls are parsed): tools given, tool_choice not "none"."""
        if isinstance(self.tool_choice, dict) or self.tool_choice == "required":
            raise APIError(400, "tool_choice 'required' or a named function is not supported by this server (it has "
                           "no constrained decoding); use 'auto' or 'none'", param="tool_choice")
        if self.tool_choice is not None and not self.tools and self.tool_choice != "none":
            raise APIError(400, "tool_choice is only allowed when tools are given", param="tool_choice")
        return bool(self.tools) and self.tool_choice != "none"


class CompletionRequest(_Sampling):
    prompt: Union[str, list[str]]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for /v1/completions
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("prompt must be a string or a non-empty list of strings")
        return v


# ------------------------------------------------------------------------------------------ models
@dataclass
class ServedModel:
    """A model the server answers for, with its tokenizer and a lock (one generation at a time)."""
    id: str
    model: Any
    tokenizer: Any
    created: int = field(default_factory=lambda: int(time.time()))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @property
    def eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, (list, tuple)) else [ids]) - {None}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids


ModelsArg = Union[str, Path, list, tuple, Mapping]


def load_models(models: ModelsArg = "course-chat") -> dict[str, ServedModel]:
    """Resolve what to serve: course model names, local model folders, or ``{id: name | folder | (model, tok)}``."""
    if isinstance(models, (str, Path)):
        models = [models]
    if not isinstance(models, Mapping):
        models = {Path(str(m)).name if Path(str(m)).is_dir() else str(m): m for m in models}
    if not models:
        raise ValueError("serve() needs at least one model: a course model name, a model folder, or (model, tokenizer)")
    served = {}
    for model_id, what in models.items():
        served[model_id] = ServedModel(model_id, *_load_one(what))
    return served


def _load_one(what) -> tuple[Any, Any]:
    from genai_roadmap import models as course_models

    if isinstance(what, tuple) and len(what) == 2:
        model, tokenizer = what
        model.eval()
        return model, tokenizer
    if isinstance(what, (str, Path)) and Path(str(what)).expanduser().is_dir():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(str(what)).expanduser()
        if not (path / "config.json").exists():
            raise ValueError(f"{path} is a folder but holds no config.json: not a saved Hugging Face model "
                             "(save one with model.save_pretrained(path) and tokenizer.save_pretrained(path))")
        model = AutoModelForCausalLM.from_pretrained(path)
        model.eval()
        return model, AutoTokenizer.from_pretrained(path)
    if isinstance(what, str) and what in course_models.MODELS:
        return course_models.load(what)
    raise ValueError(f"cannot serve {what!r}: give a course model name ({', '.join(sorted(course_models.MODELS))}), "
                     "a folder saved with save_pretrained, or a (model, tokenizer) pair. The server loads "
                     "nothing from the hub; download a hub model first and pass its folder.")


# --------------------------------------------------------------------------------------- generation
@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end token or stop sequence) or "length"


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters might still turn into a stop sequence (or an unfinished UTF-8 char)."""
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    if text.endswith("\ufffd"):  # a byte-level token split a character: wait for the rest
        hold = max(hold, 1)
    return hold


def generate_stream(served: ServedModel, prompt_ids: list[int], max_tokens: int, temperature: float,
                    top_p: float, stops: list[str], generator) -> Iterator[tuple[str, Generation | None]]:
    """Yield text deltas as they become final; the last item carries the finished Generation.

    A plain decoding loop with the model's KV cache: greedy when temperature is 0, else temperature and
    nucleus (top-p) sampling. Text is decoded from all generated ids each step so that multi-byte
    characters and stop sequences that span tokens come out right.
    """
    import torch

    model, tokenizer, eos = served.model, served.tokenizer, served.eos_ids
    import inspect

    # transformers v5 names the KV cache argument `cache` (v4: `past_key_values`, deprecated in v5)
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    ids = torch.tensor([prompt_ids], device=model.device)
    generated: list[int] = []
    sent, text, finish, cache = 0, "", "length", None
    with torch.no_grad():
        for _ in range(max_tokens):
            out = model(input_ids=ids, use_cache=True, **{cache_arg: cache})
            cache = kv_cache(out)
            logits = out.logits[0, -1].float()
            if temperature == 0:
                token = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                if top_p < 1.0:
                    sorted_probs, order = probs.sort(descending=True)
                    keep = sorted_probs.cumsum(0) - sorted_probs < top_p  # always keeps the top token
                    probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
                token = int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
            if token in eos:
                finish = "stop"
                break
            generated.append(token)
            text = tokenizer.decode(generated, skip_special_tokens=True)
            hits = [text.find(s) for s in stops if s in text]
            if hits:
                text, finish = text[:min(hits)], "stop"
                break
            final = len(text) - _held_back(text, stops)
            if final > sent:
                yield text[sent:final], None
                sent = final
            ids = torch.tensor([[token]], device=model.device)
    text = text.replace("\ufffd", "") if finish == "length" else text
    if len(text) > sent:
        yield text[sent:], None
    yield "", Generation(text, len(prompt_ids), len(generated), finish)


# ------------------------------------------------------------------------------------- tool calls
TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)


def extract_tool_calls(text: str, make_id=None) -> tuple[str | None, list[dict]]:
    """Split generated text into (content, tool_calls): the format of vLLM's ``hermes`` tool parser, not its rules.

    Each ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (an unclosed one at the end too) becomes
    ``{"id", "type": "function", "function": {"name", "arguments": "<JSON string>"}}``. Arguments stay a
    string, as in OpenAI's API, and are passed on even when they are not valid JSON: the client validates
    them and can tell the model what was wrong. A block with no readable name stays in the content.
    Content is the text outside the blocks (before, between and after them), or None when only calls were
    generated.

    vLLM's hermes parser differs in two ways: it ``json.loads`` every block and, if any one
    fails, returns no tool_calls at all and the whole text as content; and its content is only the text
    before the first call (text after a call is dropped). This parser keeps every call whose name it can
    read, broken arguments included (so a small model's error can be sent back to it), and keeps the text
    that follows the calls.
    """
    make_id = make_id or (lambda: f"call_{uuid.uuid4().hex[:24]}")
    calls, kept = [], []
    last = 0
    for m in TOOL_CALL.finditer(text):
        body = m.group(1).strip()
        try:
            obj = json.loads(body)
            name = obj.get("name") if isinstance(obj, dict) else None
            arguments = json.dumps(obj.get("arguments", {}), ensure_ascii=False) if name is not None else None
        except json.JSONDecodeError:
            found = re.search(r'"name"\s*:\s*"([^"]*)"', body)
            name = found[1] if found else None
            found = re.search(r'"arguments"\s*:\s*(.*?)\}?\s*$', body, re.S)
            arguments = found[1] if found else ""
        if not isinstance(name, str):
            continue  # not a call we can route: leave it in the content
        kept.append(text[last:m.start()])
        last = m.end()
        calls.append({"id": make_id(), "type": "function", "function": {"name": name, "arguments": arguments}})
    if not calls:
        return text, []
    content = ("".join(kept) + text[last:]).strip()
    return content or None, calls


# -------------------------------------------------------------------------------------------- app
def _chat_prompt_ids(served: ServedModel, req: ChatRequest) -> list[int]:
    tokenizer = served.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise APIError(400, f"model `{served.id}` has no chat template; use /v1/completions with a plain prompt",
                       param="messages")
    messages = [m.for_template() for m in req.messages]
    tools = None
    if req.tools_on():
        if "tools" not in tokenizer.chat_template:
            raise APIError(400, f"the chat template of `{served.id}` does not render tools, so the model cannot "
                           "call them; serve a model whose template does (see genai_roadmap.agents)", param="tools")
        tools = [t.model_dump(exclude_none=True) for t in req.tools]
    try:
        text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    except Exception as e:  # a template that rejects this conversation (e.g. roles out of order)
        raise APIError(400, f"the chat template of `{served.id}` rejected these messages: {e}",
                       param="messages") from None
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _budget(served: ServedModel, n_prompt: int, requested: int | None, param: str) -> int:
    room = served.context_length - n_prompt
    if requested is None:
        if room < 1:
            raise APIError(400, f"This model's maximum context length is {served.context_length} tokens; "
                           f"the prompt alone has {n_prompt}. Shorten it.", param="messages",
                           code="context_length_exceeded")
        return min(DEFAULT_MAX_TOKENS, room)
    if requested > room:
        raise APIError(400, f"This model's maximum context length is {served.context_length} tokens. However, "
                       f"you requested {n_prompt + requested} tokens ({n_prompt} in the prompt, {requested} for "
                       f"the completion). Reduce the prompt or {param}.", param=param,
                       code="context_length_exceeded")
    return requested


def create_app(models: ModelsArg = "course-chat"):
    """The FastAPI app serving `models` (see :func:`load_models`)."""
    import torch
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    served = models if isinstance(models, dict) and all(isinstance(v, ServedModel) for v in models.values()) \
        else load_models(models)
    app = FastAPI(title="GenAI Roadmap Lab: local OpenAI-compatible server")
    sampler = torch.Generator().manual_seed(0)  # requests without a seed draw from this, in order

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        if first.get("type") == "json_invalid":
            message = "We could not parse the JSON body of your request: send valid JSON."
        else:
            message = f"Invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
        return JSONResponse(APIError(400, message, param=param).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = f"Unknown request URL: {request.method} {request.url.path}" if exc.status_code == 404 \
            else str(exc.detail)
        return JSONResponse(APIError(exc.status_code, message).body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        body = APIError(500, f"the server failed on this request: {type(exc).__name__}: {exc}",
                        type="server_error").body()
        return JSONResponse(body, status_code=500)

    def get_model(model_id: str) -> ServedModel:
        if model_id not in served:
            raise APIError(404, f"The model `{model_id}` does not exist or is not served here. Served: "
                           f"{', '.join(served)}.", param="model", code="model_not_found")
        return served[model_id]

    def model_card(m: ServedModel) -> dict:
        return {"id": m.id, "object": "model", "created": m.created, "owned_by": "genai-roadmap"}

    @app.get("/health")
    def health():
        return {"status": "ok", "models": list(served)}

    @app.get("/v1/models")
    def list_models():
        return {"object": "list", "data": [model_card(m) for m in served.values()]}

    @app.get("/v1/models/{model_id:path}")
    def retrieve_model(model_id: str):
        return model_card(get_model(model_id))

    def run(m: ServedModel, req: _Sampling, prompt_ids: list[int], max_tokens: int, index: int):
        generator = torch.Generator().manual_seed(req.seed + index) if req.seed is not None else sampler
        return generate_stream(m, prompt_ids, max_tokens, req.temperature, req.top_p, req.stops(), generator)

    def complete(m: ServedModel, req: _Sampling, prompt_ids: list[int], max_tokens: int) -> list[Generation]:
        with m.lock:
            return [list(run(m, req, prompt_ids, max_tokens, i))[-1][1] for i in range(req.n)]

    def usage(gens: list[Generation], prompt_tokens: int) -> dict:
        completion = sum(g.completion_tokens for g in gens)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion}

    def sse(m: ServedModel, req: _Sampling, prompt_ids: list[int], max_tokens: int, chunk) -> StreamingResponse:
        include_usage = bool((req.stream_options or {}).get("include_usage"))

        def events():
            gens = []
            with m.lock:
                for i in range(req.n):
                    yield f"data: {json.dumps(chunk(i, None, None, first=True))}\n\n"
                    for delta, gen in run(m, req, prompt_ids, max_tokens, i):
                        if gen is not None:
                            gens.append(gen)
                            yield f"data: {json.dumps(chunk(i, None, gen.finish_reason))}\n\n"
                        elif delta:
                            yield f"data: {json.dumps(chunk(i, delta, None))}\n\n"
            if include_usage:
                yield f"data: {json.dumps(chunk(0, None, None, usage_=usage(gens, len(prompt_ids))))}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest):
        m = get_model(req.model)
        prompt_ids = _chat_prompt_ids(m, req)
        requested, param = ((req.max_completion_tokens, "max_completion_tokens")
                            if req.max_completion_tokens is not None else (req.max_tokens, "max_tokens"))
        max_tokens = _budget(m, len(prompt_ids), requested, param)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if req.stream and req.tools_on():
            return sse_tools(m, req, prompt_ids, max_tokens, cid, created)
        if req.stream:
            def chunk(i, delta, finish, first=False, usage_=None):
                if usage_ is not None:
                    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": m.id,
                            "choices": [], "usage": usage_}
                d = {"role": "assistant", "content": ""} if first else ({"content": delta} if delta else {})
                return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": m.id,
                        "choices": [{"index": i, "delta": d, "logprobs": None, "finish_reason": finish}]}
            return sse(m, req, prompt_ids, max_tokens, chunk)
        gens = complete(m, req, prompt_ids, max_tokens)
        choices = [chat_choice(i, g, req.tools_on()) for i, g in enumerate(gens)]
        return {"id": cid, "object": "chat.completion", "created": created, "model": m.id,
                "choices": choices, "usage": usage(gens, len(prompt_ids))}

    def chat_choice(i: int, g: Generation, tools_on: bool) -> dict:
        content, calls = extract_tool_calls(g.text) if tools_on else (g.text, [])
        message = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        return {"index": i, "message": message, "logprobs": None,
                "finish_reason": "tool_calls" if calls else g.finish_reason}

    def sse_tools(m: ServedModel, req: ChatRequest, prompt_ids: list[int], max_tokens: int, cid: str,
                  created: int) -> StreamingResponse:
        """Streaming with tools: the text is generated whole, then sent as content and tool_calls deltas."""
        def chunk(i, delta, finish=None):
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": m.id,
                    "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        def events():
            gens = complete(m, req, prompt_ids, max_tokens)
            for i, g in enumerate(gens):
                choice = chat_choice(i, g, True)
                yield f"data: {json.dumps(chunk(i, {'role': 'assistant', 'content': ''}))}\n\n"
                if choice["message"]["content"]:
                    yield f"data: {json.dumps(chunk(i, {'content': choice['message']['content']}))}\n\n"
                for k, call in enumerate(choice["message"].get("tool_calls", [])):
                    yield f"data: {json.dumps(chunk(i, {'tool_calls': [dict(call, index=k)]}))}\n\n"
                yield f"data: {json.dumps(chunk(i, {}, choice['finish_reason']))}\n\n"
            if (req.stream_options or {}).get("include_usage"):
                body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": m.id,
                        "choices": [], "usage": usage(gens, len(prompt_ids))}
                yield f"data: {json.dumps(body)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/completions")
    def completions(req: CompletionRequest):
        m = get_model(req.model)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if req.stream and len(prompts) > 1:
            raise APIError(400, "stream=true takes a single prompt", param="prompt")
        cid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        encoded = [m.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if any(not ids for ids in encoded):
            raise APIError(400, "prompt must not be empty", param="prompt")
        budgets = [_budget(m, len(ids), req.max_tokens, "max_tokens") for ids in encoded]
        if req.stream:
            def chunk(i, delta, finish, first=False, usage_=None):
                if usage_ is not None:
                    return {"id": cid, "object": "text_completion", "created": created, "model": m.id,
                            "choices": [], "usage": usage_}
                text = (prompts[0] if req.echo else "") if first else (delta or "")
                return {"id": cid, "object": "text_completion", "created": created, "model": m.id,
                        "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": finish}]}
            return sse(m, req, encoded[0], budgets[0], chunk)
        choices, all_gens = [], []
        for p, (prompt, ids, budget) in enumerate(zip(prompts, encoded, budgets)):
            gens = complete(m, req, ids, budget)
            all_gens += gens
            for g in gens:
                choices.append({"index": len(choices), "text": (prompt if req.echo else "") + g.text,
                                "logprobs": None, "finish_reason": g.finish_reason})
        return {"id": cid, "object": "text_completion", "created": created, "model": m.id, "choices": choices,
                "usage": usage(all_gens, sum(len(ids) for ids in encoded) * req.n)}

    app.state.served = served
    return app


# ----------------------------------------------------------------------------------- the server
class LocalServer:
    """The server in a background thread on a free port of 127.0.0.1; use as a context manager."""

    def __init__(self, models: ModelsArg = "course-chat", port: int = 0, startup_timeout: float = 60.0,
                 log_level: str = "warning"):
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be between 0 (a free one) and 65535, got {port}")
        self.models, self.port, self.startup_timeout, self.log_level = models, int(port), startup_timeout, log_level
        self._server = self._thread = self._socket = None

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client: ``http://127.0.0.1:PORT/v1``."""
        if self._server is None:
            raise RuntimeError("the server is not running: use `with serve(...) as server:` or call start()")
        return f"http://{HOST}:{self.port}/v1"

    def client(self, **kwargs):
        """An ``openai.OpenAI`` client for this server (any api_key works: the server checks none)."""
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=kwargs.pop("api_key", "local"), **kwargs)

    def hf_client(self, **kwargs):
        """A ``huggingface_hub.InferenceClient`` for this server (``InferenceClient(base_url=...)``).

        With ``HF_HUB_OFFLINE=1`` (how the course runs offline) huggingface_hub refuses every request, even
        to 127.0.0.1; this lets requests to this machine through and still refuses everything else.
        """
        from huggingface_hub import InferenceClient

        _allow_loopback_when_hub_offline()
        return InferenceClient(base_url=self.base_url, api_key=kwargs.pop("api_key", "local"), **kwargs)

    def start(self) -> "LocalServer":
        import uvicorn

        if self._server is not None:
            raise RuntimeError("the server is already running")
        app = create_app(self.models)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, self.port))  # bound here, handed to uvicorn: no race for a "free" port
        except OSError as e:
            sock.close()
            raise OSError(f"cannot listen on {HOST}:{self.port} ({e.strerror}); is another server using it? "
                          "Pass port=0 for a free port.") from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level=self.log_level, lifespan="off", timeout_graceful_shutdown=5)
        self._server, self._socket = uvicorn.Server(config), sock
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"genai-roadmap-serve-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start on {HOST}:{self.port} within "
                                   f"{self.startup_timeout:.0f} s")
            time.sleep(0.02)
        self._wait_healthy(deadline)
        return self

    def _wait_healthy(self, deadline: float) -> None:
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the server on {HOST}:{self.port} never answered /health") from None
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at http://{HOST}:{self.port}/v1" if self._server else "stopped"
        return f"LocalServer({self.models!r}, {state})"


def _allow_loopback_when_hub_offline() -> None:
    """In hub offline mode, let huggingface_hub's HTTP client reach 127.0.0.1 (and only it)."""
    from huggingface_hub import constants, set_client_factory
    from huggingface_hub.utils import _http

    if not constants.is_offline_mode() or getattr(_http, "_genai_roadmap_loopback", False):
        return

    def hook(request):
        if request.url.host in (HOST, "localhost"):
            return None
        return _http.hf_request_event_hook(request)  # raises OfflineModeIsEnabled, as before

    def factory():
        client = _http.default_client_factory()
        client.event_hooks["request"] = [hook]
        return client

    set_client_factory(factory)
    _http._genai_roadmap_loopback = True


def serve(models: ModelsArg = "course-chat", port: int = 0, **kwargs) -> LocalServer:
    """A :class:`LocalServer` for `models`; ``with serve("course-chat") as server: ...``."""
    return LocalServer(models, port=port, **kwargs)


# ------------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    """Serve course models (or saved Hugging Face models) with an OpenAI-compatible API on 127.0.0.1."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m genai_roadmap.serve", description=main.__doc__)
    parser.add_argument("--model", action="append", dest="models", metavar="NAME_OR_FOLDER",
                        help="a course model name or a folder saved with save_pretrained (repeatable; "
                             "default: course-chat)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 = a free one)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    try:
        app = create_app(args.models or ["course-chat"])
    except (ValueError, KeyError) as e:
        parser.error(str(e))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, args.port))
    except OSError as e:
        parser.error(f"cannot listen on {HOST}:{args.port} ({e.strerror}); choose another --port")
    port = sock.getsockname()[1]
    print(f"Serving {', '.join(app.state.served)} at http://{HOST}:{port}/v1 (Ctrl+C to stop)", flush=True)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level=args.log_level)).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then re-raises Ctrl+C
        pass
    print("Server stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tool-using agents: tool schemas, Hermes-style tool calls, a chat template with tools, the ReAct loop,
retries with backoff.

Taught in phase3_architecture/12_agentic_systems.ipynb; these are the reference versions of what it
teaches (its exercises are checked against them), for later notebooks and for the server's tests.

Messages are OpenAI's: ``{"role": "assistant", "content": ..., "tool_calls": [{"id", "type": "function",
"function": {"name", "arguments": "<a JSON string>"}}]}`` and ``{"role": "tool", "tool_call_id", "content"}``.
A model writes a call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (the Hermes / Qwen
format); :func:`genai_roadmap.serve.extract_tool_calls` turns that text into ``tool_calls``.
"""
from __future__ import annotations

import copy
import inspect
import json
import re
import time
import typing
from typing import Any, Callable

from genai_roadmap.models import CHAT_TEMPLATE

TOOL_ROLE = "<|tool|>"
TOOL_CALL_TOKENS = ("<tool_call>", "</tool_call>")
# course-chat's BPE learned prose, and spells JSON out a character at a time (70 tokens for one lookup call);
# the tokenizers of real models learned merges for JSON from code. These pieces of the Hermes call format
# make that call 23 tokens.
JSON_TOKENS = ('{"name": "', '", "arguments": {', '": "', '", "', '"}}', '<tools>', '</tools>')


# The course chat template, plus: the tools as one-line signatures in a system turn (real templates such as
# Qwen's put the whole JSON schemas there; 664 k parameters and a 512-token context cannot read them), an
# assistant turn's tool calls in the Hermes format, and tool results in a <|tool|> turn.
TOOL_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set system = messages[0]['content'] if messages and messages[0]['role'] == 'system' else '' %}"
    "{% if tools %}<|system|>{{ system }}<tools>"
    "{% for t in tools %}{% set f = t['function'] if 'function' in t else t %}"
    "{{ f['name'] }}({{ f['parameters']['properties'].keys() | join(', ') }})"
    "{% if not loop.last %}; {% endif %}{% endfor %}</tools><|end|>"
    "{% elif system %}<|system|>{{ system }}<|end|>{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% elif message['role'] == 'tool' %}{{ '<|tool|>' + message['content'] + '<|end|>' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + (message['content'] or '') }}"
    "{% for call in message.get('tool_calls') or [] %}{% set f = call['function'] if 'function' in call else call %}"
    "{{ '<tool_call>{\"name\": \"' + f['name'] + '\", \"arguments\": ' }}"
    "{% if f['arguments'] is string %}{{ f['arguments'] }}{% else %}{{ f['arguments'] | tojson }}{% endif %}"
    "{{ '}</tool_call>' }}{% endfor %}{{ '<|end|>' }}"
    "{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
assert CHAT_TEMPLATE.startswith("{{ bos_token }}")  # the tool template extends the course template


def add_tool_tokens(model, tokenizer) -> int:
    """Give a course model the tool-use vocabulary and template; returns the number of new tokens.

    ``<|tool|>`` is a special token (a role, dropped when decoding); ``<tool_call>`` and ``</tool_call>`` are
    ordinary added tokens, kept in decoded text so a parser can find them (as in Qwen's tokenizer).
    """
    from tokenizers import AddedToken

    n = tokenizer.add_special_tokens({"extra_special_tokens": [TOOL_ROLE]}, replace_extra_special_tokens=False)
    n += tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_CALL_TOKENS + JSON_TOKENS])
    if model is not None:  # None: only the tokenizer (e.g. for a stand-in model in a test)
        old = model.get_input_embeddings().weight.shape[0]
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        redraw_embeddings(model, list(range(old, len(tokenizer))), seed=0)
        tokenizer.model_max_length = model.config.max_position_embeddings  # tool episodes outgrow 128 tokens
    tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    return n


def redraw_embeddings(model, token_ids: list[int], seed: int = 0) -> None:
    """Give `token_ids` fresh input embeddings drawn from N(mean, covariance) of all the other rows.

    Distinct vectors at the scale of trained ones, so the model can tell the tokens apart from the first
    step. (transformers' ``mean_resizing`` draws with 1e-9 times the covariance: every new row is, to the
    eye of the model, the same vector.) With tied embeddings this sets the output rows too.
    """
    import torch

    weight = model.get_input_embeddings().weight
    keep = torch.ones(weight.shape[0], dtype=torch.bool)
    keep[token_ids] = False
    with torch.no_grad():
        rows = weight[keep].double()
        mean, centered = rows.mean(0), rows - rows.mean(0)
        cov = centered.T @ centered / len(rows) + 1e-6 * torch.eye(rows.shape[1], dtype=torch.float64)
        z = torch.randn(len(token_ids), rows.shape[1], generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        weight[token_ids] = (mean + z @ torch.linalg.cholesky(cov).T).to(weight.dtype)


# ---------------------------------------------------------------------------------- tool schemas
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _arg_descriptions(doc: str) -> dict[str, str]:
    out, in_args = {}, False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args = True
        elif in_args and (m := re.match(r"\s+(\w+)(?:\s*\(.*?\))?:\s*(.*)", line)):
            out[m[1]] = m[2].strip()
        elif in_args and line.strip() and not line.startswith(" "):
            in_args = False
    return out


def tool_schema(fn: Callable) -> dict:
    """The OpenAI tool schema of a typed, documented function (as langchain's convert_to_openai_tool).

    >>> def add(a: int, b: int = 1) -> int:
    ...     '''Add two numbers.'''
    >>> tool_schema(add)["function"]["parameters"]["required"]
    ['a']
    """
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\nArgs:")[0].split("\nReturns:")[0]
    description = " ".join(p.replace("\n", " ").strip() for p in summary.split("\n\n") if p.strip())
    arg_docs = _arg_descriptions(doc)
    hints = typing.get_type_hints(fn)
    properties, required = {}, []
    for name, param in inspect.signature(fn).parameters.items():
        hint = hints.get(name, str)
        if typing.get_origin(hint) is typing.Literal:
            values = list(typing.get_args(hint))
            prop = {"enum": values, "type": _JSON_TYPES[type(values[0])]}
        elif hint in _JSON_TYPES:
            prop = {"type": _JSON_TYPES[hint]}
        else:
            raise TypeError(f"tool_schema: parameter {name!r} of {fn.__name__} has type {hint!r}; "
                            "use str, int, float, bool or a Literal")
        if name in arg_docs:
            prop["description"] = arg_docs[name]
        if param.default is inspect.Parameter.empty:
            required.append(name)
        else:
            prop["default"] = param.default
        properties[name] = prop
    parameters = {"properties": properties, "type": "object"}
    if required:
        parameters["required"] = required
    return {"type": "function", "function": {"name": fn.__name__, "description": description,
                                             "parameters": parameters}}


# ---------------------------------------------------------------------------------- validating a call
def validate_tool_call(tool_call: dict, schemas: list[dict]) -> tuple[str | None, dict | None, str | None]:
    """Check one OpenAI-shaped tool call against the tools' schemas.

    Returns ``(name, arguments, None)`` when the call is valid, else ``(None, None, error)``: an error
    message written for the model to read and fix its call (it goes back as the tool message).
    """
    import jsonschema

    by_name = {s["function"]["name"]: s["function"] for s in schemas}
    function = tool_call.get("function") or {}
    name, raw = function.get("name"), function.get("arguments")
    if name not in by_name:
        return None, None, f"Error: unknown tool {name!r}; the tools are {', '.join(by_name)}."
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        return None, None, f"Error: the arguments of {name} are not valid JSON ({e.msg}); send a JSON object."
    if not isinstance(arguments, dict):
        return None, None, f"Error: the arguments of {name} must be a JSON object, got {type(arguments).__name__}."
    error = next(iter(sorted(jsonschema.Draft202012Validator(by_name[name]["parameters"]).iter_errors(arguments),
                             key=lambda e: list(e.path))), None)
    if error is not None:
        where = f" (argument {'.'.join(map(str, error.path))})" if error.path else ""
        return None, None, f"Error: invalid arguments for {name}{where}: {error.message}."
    return name, arguments, None


# ---------------------------------------------------------------------------------- the ReAct loop
def run_agent(model_fn: Callable, tools: dict[str, Callable], question: str, max_steps: int = 4,
              system: str | None = None) -> tuple[str | None, list[dict]]:
    """Thought / action / observation until the model answers or `max_steps` model calls are spent.

    ``model_fn(messages, schemas)`` returns an assistant message (a dict in OpenAI's shape). Every tool call
    is validated; invalid calls and tools that raise send an ``Error: ...`` back as the tool message.
    Returns ``(answer, messages)``; the answer is None when the step limit was reached.
    """
    schemas = [tool_schema(f) for f in tools.values()]
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    for _ in range(max_steps):
        reply = model_fn(messages, schemas)
        messages.append(reply)
        if not reply.get("tool_calls"):
            return (reply.get("content") or "").strip(), messages
        for call in reply["tool_calls"]:
            name, arguments, error = validate_tool_call(call, schemas)
            if error is None:
                try:
                    observation = str(tools[name](**arguments))
                except Exception as e:  # a tool's failure is an observation, not a crash of the agent
                    observation = f"Error: {e}"
            else:
                observation = error
            messages.append({"role": "tool", "tool_call_id": call.get("id"), "content": observation})
    return None, messages


# ---------------------------------------------------------------------------------- retries
class TransientError(Exception):
    """A failure worth retrying (a timeout, a rate limit, a 503): the same call may succeed next time."""


def call_with_retries(fn: Callable, kwargs: dict, max_attempts: int = 3, base_delay: float = 0.5,
                      sleep: Callable[[float], Any] = time.sleep) -> Any:
    """Call ``fn(**kwargs)``; on a TransientError wait base_delay * 2**k and try again, up to max_attempts.

    Any other exception (a bad argument) is raised at once: retrying it would fail the same way.
    """
    for attempt in range(max_attempts):
        try:
            return fn(**kwargs)
        except TransientError:
            if attempt == max_attempts - 1:
                raise
            sleep(base_delay * 2 ** attempt)


# ---------------------------------------------------------------------------------- batching agents
def run_in_lockstep(agent: Callable, generate_batch: Callable, jobs: list[tuple]) -> list[Any]:
    """Run ``agent(model_fn, *job)`` for every job at once, batching their model calls; results in job order.

    Each agent runs in its own thread with a ``model_fn(messages, schemas)`` that waits until every unfinished
    agent has asked for its next reply; then one ``generate_batch([(messages, schemas), ...])`` call (in job
    order) answers them all. The agents' code is unchanged. This is lockstep batching: one batch per round, and
    every agent waits for the slowest (a serving engine's continuous batching instead adds and retires requests
    at every decoding step). With greedy decoding the replies are those of one-by-one
    runs, up to the float rounding that padding a batch brings.
    """
    import threading

    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []
    cond = threading.Condition()
    pending: dict[int, tuple] = {}
    replies: dict[int, dict] = {}
    active = [len(jobs)]

    def flush() -> None:  # called with the lock held, when every live agent is waiting
        keys = sorted(pending)
        try:
            out = generate_batch([pending[k] for k in keys])
        except BaseException as e:  # wake everyone: a failed batch fails every waiting agent
            out = [e] * len(keys)
        for k, reply in zip(keys, out):
            replies[k] = reply
        pending.clear()
        cond.notify_all()

    def worker(i: int, job: tuple) -> None:
        def model_fn(messages, schemas):
            with cond:
                pending[i] = (copy.deepcopy(list(messages)), schemas)
                if len(pending) == active[0]:
                    flush()
                while i not in replies:
                    cond.wait()
                reply = replies.pop(i)
            if isinstance(reply, BaseException):
                raise reply
            return reply

        try:
            results[i] = agent(model_fn, *job)
        except BaseException as e:
            errors.append(e)
        finally:
            with cond:
                active[0] -= 1
                if pending and len(pending) == active[0]:
                    flush()

    threads = [threading.Thread(target=worker, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results

"""The checks of 12_agentic_systems pass correct answers and catch the stub and plausible bugs."""
import inspect
import json
import time
import typing

import pytest

from genai_roadmap import agents
from genai_roadmap.agents import TransientError
from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import agentic_systems as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ tool_schema
def schema_with(fn, *, all_required=False, number_for_int=False, no_enum=False, keep_args=False,
                empty_required=False, no_arg_docs=False):
    out = agents.tool_schema(fn)
    f = out["function"]
    props = f["parameters"]["properties"]
    if all_required:
        f["parameters"]["required"] = list(props)
    if empty_required:
        f["parameters"].setdefault("required", [])
    if number_for_int:
        for p in props.values():
            if p.get("type") == "integer":
                p["type"] = "number"
    if no_enum:
        for p in props.values():
            p.pop("enum", None)
    if keep_args:
        f["description"] = inspect.getdoc(fn)
    if no_arg_docs:
        for p in props.values():
            p.pop("description", None)
    return out


def test_tool_schema_correct(capsys):
    check.tool_schema(agents.tool_schema)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda fn: schema_with(fn, all_required=True), "default value is not required"),
    (lambda fn: schema_with(fn, number_for_int=True), "integer"),
    (lambda fn: schema_with(fn, no_enum=True), "enum"),
    (lambda fn: schema_with(fn, keep_args=True), "Args"),
    (lambda fn: schema_with(fn, empty_required=True), "leave `required` out"),
    (lambda fn: schema_with(fn, no_arg_docs=True), "description"),
    (lambda fn: {"name": fn.__name__, "parameters": {}}, '"type": "function"'),
])
def test_tool_schema_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.tool_schema(bad)


# ------------------------------------------------------------------ validate_tool_call
def no_schema_validation(tool_call, schemas):
    names = [s["function"]["name"] for s in schemas]
    f = tool_call["function"]
    if f["name"] not in names:
        return None, None, f"Error: unknown tool {f['name']!r}; the tools are {', '.join(names)}."
    try:
        args = json.loads(f["arguments"])
    except json.JSONDecodeError:
        return None, None, "Error: not valid JSON."
    if not isinstance(args, dict):
        return None, None, "Error: arguments must be an object."
    return f["name"], args, None


def raises_on_bad_json(tool_call, schemas):
    json.loads(tool_call["function"]["arguments"])
    return agents.validate_tool_call(tool_call, schemas)


def vague_unknown_tool(tool_call, schemas):
    name, args, err = agents.validate_tool_call(tool_call, schemas)
    return (name, args, "Error: unknown tool.") if err and "unknown tool" in err else (name, args, err)


def returns_string_arguments(tool_call, schemas):
    name, args, err = agents.validate_tool_call(tool_call, schemas)
    return (name, json.dumps(args), err) if err is None else (name, args, err)


def no_error_prefix(tool_call, schemas):
    name, args, err = agents.validate_tool_call(tool_call, schemas)
    return (name, args, err.removeprefix("Error: ")) if err else (name, args, err)


def test_validate_tool_call_correct(capsys):
    check.validate_tool_call(agents.validate_tool_call)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (no_schema_validation, "was accepted"),
    (raises_on_bad_json, "raised JSONDecodeError"),
    (vague_unknown_tool, "does not mention"),
    (returns_string_arguments, "json.loads"),
    (no_error_prefix, "should start with 'Error:'"),
    (lambda tc, s: (tc["function"]["name"], json.loads(tc["function"]["arguments"]), None), "raised|accepted"),
])
def test_validate_tool_call_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.validate_tool_call(bad)


# ------------------------------------------------------------------ run_agent
def make_agent(off_by_one=False, no_call_id=False, skip_assistant=False, crash_on_tool_error=False,
               raw_result=False, first_call_only=False, no_schemas=False, no_validation=False):
    def run(model_fn, tools, question, max_steps=4):
        schemas = [] if no_schemas else [agents.tool_schema(f) for f in tools.values()]
        messages = [{"role": "user", "content": question}]
        for _ in range(max_steps + (1 if off_by_one else 0)):
            reply = model_fn(messages, schemas)
            if not skip_assistant:
                messages.append(reply)
            if not reply.get("tool_calls"):
                return (reply.get("content") or "").strip(), messages
            for call in reply["tool_calls"][:1] if first_call_only else reply["tool_calls"]:
                name, args, error = agents.validate_tool_call(call, [agents.tool_schema(f) for f in tools.values()])
                if no_validation:                   # runs whatever Python accepts
                    try:
                        observation = str(tools[call["function"]["name"]](**json.loads(call["function"]["arguments"])))
                    except Exception as e:
                        observation = f"Error: {e}"
                elif error is None:
                    if crash_on_tool_error:
                        result = tools[name](**args)
                    else:
                        try:
                            result = tools[name](**args)
                        except Exception as e:
                            result = f"Error: {e}"
                    observation = result if raw_result else str(result)
                else:
                    observation = error
                msg = {"role": "tool", "content": observation}
                if not no_call_id:
                    msg["tool_call_id"] = call["id"]
                messages.append(msg)
        return None, messages
    return run


def test_run_agent_correct(capsys):
    check.run_agent(agents.run_agent)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (make_agent(off_by_one=True), "max_steps counts model calls"),
    (make_agent(no_call_id=True), "tool_call_id"),
    (make_agent(skip_assistant=True), "append the assistant message"),
    (make_agent(crash_on_tool_error=True), "raised ValueError"),
    (make_agent(raw_result=True), "string"),
    (make_agent(first_call_only=True), "every call"),
    (make_agent(no_schemas=True), "schemas"),
    (make_agent(no_validation=True), "Validate every call"),
])
def test_run_agent_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.run_agent(bad)


# ------------------------------------------------------------------ call_with_retries
def retries(constant=False, double_first=False, sleep_after_last=False, retry_everything=False, swallow=False,
            one_too_few=False):
    def run(fn, kwargs, max_attempts=3, base_delay=0.1, sleep=time.sleep):
        attempts = max_attempts - 1 if one_too_few else max_attempts
        for attempt in range(attempts):
            try:
                return fn(**kwargs)
            except (Exception if retry_everything else TransientError):
                delay = base_delay if constant else base_delay * 2 ** (attempt + (1 if double_first else 0))
                if attempt == attempts - 1:
                    if sleep_after_last:
                        sleep(delay)
                    if swallow:
                        return None
                    raise
                sleep(delay)
    return run


def test_call_with_retries_correct(capsys):
    check.call_with_retries(agents.call_with_retries)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (retries(constant=True), "constant"),
    (retries(double_first=True), "first wait"),
    (retries(sleep_after_last=True), "last attempt"),
    (retries(retry_everything=True), "not transient"),
    (retries(swallow=True), "raise the last TransientError"),
    (retries(one_too_few=True), "called 4 times"),
])
def test_call_with_retries_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.call_with_retries(bad)


def test_reference_tools_need_types():
    def untyped(x: typing.Any) -> str:
        """No JSON type for Any."""
    with pytest.raises(TypeError, match="use str, int, float, bool or a Literal"):
        agents.tool_schema(untyped)

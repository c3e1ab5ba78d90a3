"""Checks for phase3_architecture/12_agentic_systems.ipynb.

Each check runs the learner's code on small inputs (typed functions, hand-made tool calls, a scripted fake
model, a flaky fake tool), compares with a trusted reference (langchain_core's convert_to_openai_tool,
jsonschema, the reference versions in genai_roadmap.agents) and one hand-worked case, and when the answer
is wrong names the likely bug.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable, Literal

from genai_roadmap.checks._common import CheckFailed, call, expect, not_implemented, passed

# ------------------------------------------------------------------------------- exercise 1


def _sample_tools() -> list[Callable]:
    def lookup(person: str, relation: Literal["city", "job", "company", "hobby"]) -> str:
        """Look up one fact about a person.

        Args:
            person: the person's full name.
            relation: which fact to look up.
        """

    def power(base: int, exponent: int = 2, exact: bool = True, scale: float = 1.0) -> float:
        """Raise a number to a power.

        Slow for big exponents.
        """

    def ping() -> str:
        """Check that the service answers."""

    def pick(level: Literal[1, 2, 3], label: str = "x") -> str:
        """Pick a level.

        Args:
            level: how deep.
        """

    return [lookup, power, ping, pick]


def _first_difference(got: Any, want: Any, path: str = "") -> str | None:
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            if k not in got:
                return f"{path}.{k} is missing" if path else f"{k} is missing"
            d = _first_difference(got[k], want[k], f"{path}.{k}" if path else k)
            if d:
                return d
        extra = [k for k in got if k not in want]
        return f"{path} has unexpected key(s) {extra}" if extra else None
    if got != want:
        return f"{path} is {got!r}, expected {want!r}"
    return None


def tool_schema(fn: Callable) -> None:
    """Exercise 1: `fn(python_function)` returns the OpenAI tool schema, the same dict as langchain_core's
    convert_to_openai_tool."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    name = "tool_schema"
    for tool in _sample_tools():
        got = call(name, fn, tool)
        want = convert_to_openai_tool(tool)
        expect(isinstance(got, dict), name, f"return a dict, got {type(got).__name__}")
        if got == want:
            continue
        g = got.get("function", {}) if isinstance(got.get("function"), dict) else {}
        w = want["function"]
        gp = g.get("parameters", {}) if isinstance(g.get("parameters"), dict) else {}
        props = gp.get("properties", {}) if isinstance(gp.get("properties"), dict) else {}
        where = f"for `{tool.__name__}`: "
        expect(got.get("type") == "function" and "function" in got, name,
               where + 'the schema is {"type": "function", "function": {"name", "description", "parameters"}}')
        expect(g.get("name") == w["name"], name, where + f"the name should be the function's, {w['name']!r}")
        if g.get("description") != w["description"]:
            hint = ("the description should stop before the `Args:` section" if "Args" in str(g.get("description"))
                    else "paragraphs of the docstring are joined with one space" if "\n" in str(g.get("description"))
                    else f"the description should be {w['description']!r}")
            raise CheckFailed(f"{name}: {where}{hint}")
        required = gp.get("required", [])
        if sorted(required) != sorted(w["parameters"].get("required", [])):
            if set(required) > set(w["parameters"].get("required", [])):
                raise CheckFailed(f"{name}: {where}a parameter with a default value is not required "
                                  f"(required should be {w['parameters'].get('required', [])}, got {required})")
            raise CheckFailed(f"{name}: {where}`required` should list the parameters without a default: "
                              f"{w['parameters'].get('required', [])}, got {required}")
        if "required" in gp and not required:
            raise CheckFailed(f"{name}: {where}leave `required` out when no parameter is required (as langchain)")
        for arg, spec in w["parameters"]["properties"].items():
            mine = props.get(arg)
            expect(isinstance(mine, dict), name, where + f"no property for parameter {arg!r}")
            if "enum" in spec and mine.get("enum") != spec["enum"]:
                raise CheckFailed(f"{name}: {where}{arg!r} is a Literal: give its values as \"enum\": {spec['enum']}")
            if mine.get("type") != spec["type"]:
                raise CheckFailed(f"{name}: {where}{arg!r} should have JSON type {spec['type']!r}, got "
                                  f"{mine.get('type')!r} (str -> string, int -> integer, float -> number, "
                                  "bool -> boolean; a Literal takes the type of its values)")
            if mine.get("description") != spec.get("description"):
                raise CheckFailed(f"{name}: {where}{arg!r} should have description {spec.get('description')!r} "
                                  "(from the docstring's `Args:` section; none when it is not listed there)")
            if mine.get("default", "<none>") != spec.get("default", "<none>"):
                raise CheckFailed(f"{name}: {where}{arg!r} should have default {spec.get('default', '<none>')!r}")
        diff = _first_difference(got, want)
        raise CheckFailed(f"{name}: {where}{diff or 'the schema differs from convert_to_openai_tool'}")
    passed(name, f"{len(_sample_tools())} functions give the same schema as langchain's convert_to_openai_tool")


# ------------------------------------------------------------------------------- exercise 2


def _schemas() -> list[dict]:
    from genai_roadmap.agents import tool_schema as reference

    tools = _sample_tools()
    return [reference(tools[0]), reference(tools[1])]


def _tc(name: str, arguments: Any) -> dict:
    return {"id": "call_0", "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}


def validate_tool_call(fn: Callable) -> None:
    """Exercise 2: `fn(tool_call, schemas)` returns (name, arguments, None) for a valid call and
    (None, None, error message) for an invalid one, never raising."""
    name = "validate_tool_call"
    schemas = _schemas()

    def run(tool_call, case):
        try:
            out = fn(copy.deepcopy(tool_call), copy.deepcopy(schemas))
        except NotImplementedError:
            raise not_implemented(name) from None
        except Exception as e:
            raise CheckFailed(f"{name}: on {case}, your function raised {type(e).__name__}: {e}. Return "
                              "(None, None, error message) instead: the message goes back to the model") from e
        expect(isinstance(out, tuple) and len(out) == 3, name, f"on {case}: return a tuple (name, arguments, error)")
        return out

    good = _tc("lookup", {"person": "Ada Lovelace", "relation": "city"})
    n, args, err = run(good, "a valid call")
    expect(err is None, name, f"a valid call was rejected with {err!r}")
    expect(n == "lookup", name, f"the name of a valid call should be 'lookup', got {n!r}")
    expect(args == {"person": "Ada Lovelace", "relation": "city"}, name,
           f"arguments should be the parsed JSON object (a dict), got {args!r}" +
           (": json.loads the arguments string" if isinstance(args, str) else ""))
    n, args, err = run(_tc("power", {"base": 3}), "a call that leaves out a parameter with a default")
    expect(err is None and args == {"base": 3}, name, "a call may leave out parameters that have a default "
           f"(only `required` ones must be there); got error {err!r}")

    bad = [  # (tool call, description, words the error must contain, hint)
        (_tc("search", {"q": "x"}), "an unknown tool", ["search", "lookup", "power"],
         "name the unknown tool and list the tools there are, so the model can pick one"),
        (_tc("lookup", '{"person": "Ada", "relation": city}'), "arguments that are not valid JSON", ["JSON"],
         "say that the arguments are not valid JSON (json.loads raises json.JSONDecodeError)"),
        (_tc("lookup", '["Ada", "city"]'), "arguments that are a JSON list", ["object"],
         "the arguments must be a JSON object: say so when they are not"),
        (_tc("lookup", {"person": "Ada"}), "a missing required argument", ["relation"],
         "validate against the tool's `parameters` schema (jsonschema) and pass on its message, which names "
         "the missing argument"),
        (_tc("lookup", {"person": "Ada", "relation": "town"}), "a value outside the enum", ["town", "city"],
         "validate against the schema: 'town' is not one of the enum values, and the message should list them"),
        (_tc("power", {"base": "three"}), "a string where an integer is expected", ["three", "integer"],
         "validate the argument types against the schema (jsonschema)"),
    ]
    for tool_call, case, words, hint in bad:
        n, args, err = run(tool_call, case)
        expect(err is not None and n is None and args is None, name,
               f"{case} was accepted: return (None, None, error). {hint[0].upper() + hint[1:]}")
        expect(isinstance(err, str), name, f"on {case}: the error should be a string, got {type(err).__name__}")
        expect(err.startswith("Error:"), name, f"on {case} the error {err!r} should start with 'Error:' (the "
               "model, and run_agent's caller, tell an error observation from a result by that prefix)")
        missing = [w for w in words if w.lower() not in err.lower()]
        expect(not missing, name, f"on {case} the error {err!r} does not mention {missing}: {hint}")
    passed(name, "valid calls parsed; unknown tool, bad JSON, non-object, missing, enum and type errors explained")


# ------------------------------------------------------------------------------- exercise 3


class _ScriptedModel:
    """A fake model: answers with the scripted assistant messages in order, recording what it was shown."""

    def __init__(self, replies: list[dict]):
        self.replies, self.seen, self.schemas = list(replies), [], []

    def __call__(self, messages, schemas):
        self.seen.append(copy.deepcopy(list(messages)))
        self.schemas.append(schemas)
        if not self.replies:
            raise AssertionError("the fake model was called more times than scripted")
        return copy.deepcopy(self.replies.pop(0))


def _call(id_: str, tool: str, arguments: dict | str) -> dict:
    return {"id": id_, "type": "function", "function": {"name": tool, "arguments": arguments if isinstance(
        arguments, str) else json.dumps(arguments)}}


def _fake_tools() -> dict[str, Callable]:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def fails(x: str) -> str:
        """Always fails."""
        raise ValueError(f"no data for {x!r}")

    return {"add": add, "fails": fails}


def run_agent(fn: Callable) -> None:
    """Exercise 3: `fn(model_fn, tools, question, max_steps)` runs the ReAct loop and returns (answer, messages)."""
    name = "run_agent"
    tools = _fake_tools()

    def run(replies, max_steps=4, case=""):
        model = _ScriptedModel(replies)
        try:
            out = fn(model, tools, "What is 2 + 3?", max_steps)
        except AssertionError:
            raise CheckFailed(f"{name}: {case}: the loop called the model again after it had answered (a message "
                              "without tool_calls is the final answer: return it)") from None
        except NotImplementedError:
            raise not_implemented(name) from None
        except CheckFailed:
            raise
        except Exception as e:
            raise CheckFailed(f"{name}: {case}: your function raised {type(e).__name__}: {e}") from e
        expect(isinstance(out, tuple) and len(out) == 2, name, "return a tuple (answer, messages)")
        return out, model

    # 1. one tool call, then the answer
    (answer, messages), model = run([
        {"role": "assistant", "content": "Let me add.", "tool_calls": [_call("c1", "add", {"a": 2, "b": 3})]},
        {"role": "assistant", "content": "5"}], case="a call to add, then the answer")
    expect(answer == "5", name, f"the answer should be the final message's content '5', got {answer!r}")
    expect(len(model.seen) == 2, name, f"the model should be called twice (tool call, answer), was called "
           f"{len(model.seen)} times")
    expect(model.seen[0] == [{"role": "user", "content": "What is 2 + 3?"}], name,
           f"the first model call should see just the user's question, saw {model.seen[0]}")
    schemas = model.schemas[0]
    expect(isinstance(schemas, list) and [s.get("function", {}).get("name") for s in schemas] == list(tools), name,
           "pass the model the tools' schemas, [tool_schema(f) for f in tools.values()]")
    second = model.seen[1]
    roles = [m.get("role") for m in second]
    expect(roles == ["user", "assistant", "tool"], name, f"the second model call should see user, assistant (the "
           f"call), tool (the result); it saw roles {roles}" +
           (": append the assistant message before the tool result" if roles == ["user", "tool"] else ""))
    expect(second[1].get("tool_calls") and second[1]["tool_calls"][0]["id"] == "c1", name,
           "append the model's assistant message as it is, with its tool_calls")
    tool_msg = second[2]
    expect(tool_msg.get("tool_call_id") == "c1", name, "the tool message needs tool_call_id = the call's id ('c1'), "
           "so the model (and an OpenAI server) knows which call it answers")
    expect(str(tool_msg.get("content")) == "5", name, f"the tool message's content should be the tool's result as a "
           f"string, '5'; got {tool_msg.get('content')!r}")
    expect(isinstance(tool_msg.get("content"), str), name, "the tool message's content must be a string: str(result)")
    expect(len(messages) == 4 and messages[-1].get("content") == "5", name,
           "the returned messages should be the whole conversation: user, assistant, tool, assistant")

    # 2. an invalid call and a tool that raises: errors go back to the model, the loop goes on
    (answer, messages), model = run([
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "subtract", {"a": 2})]},
        {"role": "assistant", "content": "", "tool_calls": [_call("c2", "fails", {"x": "q"})]},
        {"role": "assistant", "content": "", "tool_calls": [_call("c3", "add", '{"a": 2, "b": ')]},
        {"role": "assistant", "content": "", "tool_calls": [_call("c4", "add", {"a": "2", "b": "3"})]},
        {"role": "assistant", "content": "unknown"}], max_steps=6, case="invalid calls and a failing tool")
    observations = [m.get("content", "") for m in model.seen[-1] if m.get("role") == "tool"]
    expect(len(observations) == 4, name, f"every call needs a tool message, even a failed one: expected 4, got "
           f"{len(observations)}")
    expect(observations[3] != "23", name, 'add({"a": "2", "b": "3"}) ran and returned \'23\': Python accepts the '
           "strings, the schema (integers) does not. Validate every call with validate_tool_call before running it")
    expect(all(isinstance(o, str) and o.startswith("Error") for o in observations), name,
           f"invalid calls and tools that raise should give a tool message starting with 'Error' (the model "
           f"reads it and can fix its call); got {observations}")
    expect("subtract" in observations[0], name, "an unknown tool: send back validate_tool_call's error, which names "
           f"it; got {observations[0]!r}")
    expect("no data for 'q'" in observations[1], name, "a tool that raises: send back 'Error: ' + the exception's "
           f"message; got {observations[1]!r}")
    expect(answer == "unknown", name, f"after errors the loop should go on to the final answer, got {answer!r}")

    # 3. two calls in one message: two tool messages, in order
    (answer, messages), model = run([
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "add", {"a": 1, "b": 1}),
                                                             _call("c2", "add", {"a": 2, "b": 2})]},
        {"role": "assistant", "content": "2 and 4"}], case="two calls in one message")
    tool_msgs = [m for m in model.seen[-1] if m.get("role") == "tool"]
    expect([(m.get("tool_call_id"), m.get("content")) for m in tool_msgs] == [("c1", "2"), ("c2", "4")], name,
           "run every call of the message, in order, one tool message each; got "
           f"{[(m.get('tool_call_id'), m.get('content')) for m in tool_msgs]}")

    # 4. the step limit: a model that never stops calling tools
    loop = [{"role": "assistant", "content": "", "tool_calls": [_call(f"c{i}", "add", {"a": i, "b": 1})]}
            for i in range(10)]
    (answer, messages), model = run(loop, max_steps=3, case="a model that never answers")
    expect(len(model.seen) == 3, name, f"with max_steps=3 the model should be called 3 times, not "
           f"{len(model.seen)} (max_steps counts model calls)")
    expect(answer is None, name, f"when the step limit is reached without an answer return None, got {answer!r}")
    expect(len(messages) == 7, name, f"after 3 steps the transcript has user + 3 x (assistant, tool) = 7 messages, "
           f"got {len(messages)}")
    passed(name, "tool results, error observations, parallel calls and the step limit all right")


# ------------------------------------------------------------------------------- exercise 4


class _Flaky:
    def __init__(self, failures: int, error: type):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self, x: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls} failed")
        return 2 * x


def call_with_retries(fn: Callable) -> None:
    """Exercise 4: `fn(tool, kwargs, max_attempts, base_delay, sleep)` retries TransientErrors with
    exponential backoff (base_delay * 2**k between attempts) and raises anything else at once."""
    from genai_roadmap.agents import TransientError

    name = "call_with_retries"

    def run(failures, error=TransientError, max_attempts=4, base_delay=0.5):
        tool, sleeps = _Flaky(failures, error), []
        try:
            out = fn(tool, {"x": 21}, max_attempts, base_delay, sleeps.append)
            raised = None
        except NotImplementedError:
            raise not_implemented(name) from None
        except (TransientError, ValueError) as e:
            out, raised = None, e
        except Exception as e:
            raise CheckFailed(f"{name}: your function raised {type(e).__name__}: {e}") from e
        return out, raised, tool.calls, sleeps

    out, raised, calls, sleeps = run(0)
    expect(raised is None and out == 42, name, f"a call that succeeds at once should return its result 42, got {out!r}")
    expect(calls == 1 and sleeps == [], name, f"a call that succeeds at once: one call and no sleep, got {calls} "
           f"calls and sleeps {sleeps}")
    out, raised, calls, sleeps = run(2)
    expect(raised is None and out == 42, name, "two transient failures then success: return the result (42); got "
           + (f"{type(raised).__name__}: {raised}" if raised else repr(out)))
    expect(calls == 3, name, f"two failures then success takes 3 calls, got {calls}")
    if sleeps == [0.5, 0.5]:
        raise CheckFailed(f"{name}: the delay is constant: back off exponentially, base_delay * 2**attempt")
    if sleeps == [1.0, 2.0]:
        raise CheckFailed(f"{name}: the first wait should be base_delay (0.5), not 2 * base_delay: 2**0 = 1")
    expect(sleeps == [0.5, 1.0], name, f"with base_delay 0.5 the waits should be [0.5, 1.0], got {sleeps}")
    out, raised, calls, sleeps = run(10)
    expect(isinstance(raised, TransientError), name, "when every attempt fails, raise the last TransientError (the "
           "caller decides what to do); got " + (f"a return value {out!r}" if raised is None else repr(raised)))
    expect(calls == 4, name, f"with max_attempts=4 the tool should be called 4 times, got {calls}")
    expect(sleeps == [0.5, 1.0, 2.0], name, f"4 attempts need 3 waits, [0.5, 1.0, 2.0]; got {sleeps}" +
           (": don't sleep after the last attempt" if len(sleeps) == 4 else ""))
    out, raised, calls, sleeps = run(1, error=ValueError)
    expect(calls == 1 and sleeps == [], name, f"a ValueError is not transient: raise it at once, without retrying "
           f"(got {calls} calls): retrying a bad argument fails the same way")
    expect(isinstance(raised, ValueError), name, "a ValueError (a bad argument) should be raised, not swallowed")
    passed(name, "waits 0.5, 1, 2 s between 4 attempts; non-transient errors raised at once")

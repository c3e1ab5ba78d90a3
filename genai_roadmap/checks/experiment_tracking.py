"""Checks for phase2_tooling/09_experiment_tracking.ipynb.

Each check calls the learner's function on inputs it builds itself (sweep spaces, JSON-lines files in a
fresh temporary folder, run tables), compares the answer with a short reference below and one
hand-worked case, and when the answer is wrong compares it with the usual wrong answers to name the bug.
"""
from __future__ import annotations

import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, not_implemented, passed

# ------------------------------------------------------------------------------- exercise 1


def _grid(space: dict, last_fastest: bool = True) -> list[dict]:
    """Reference: itertools.product over the values, keys in the space's order, last key fastest."""
    keys = list(space)
    values = [v if isinstance(v, (list, tuple)) else [v] for v in space.values()]
    if last_fastest:
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    combos = itertools.product(*values[::-1])
    return [dict(zip(keys, combo[::-1])) for combo in combos]


def _as_dicts(name: str, got: Any) -> list[dict]:
    expect(isinstance(got, list), name, f"return a list of dicts, got {type(got).__name__}")
    expect(all(isinstance(d, dict) for d in got), name,
           "each configuration should be a dict {name: value} (zip the keys with each product tuple)")
    return got


def sweep_grid(fn: Callable) -> None:
    """Exercise 1: `fn(space)` lists every combination, like itertools.product, last key varying fastest."""
    name = "sweep_grid"
    hand = {"a": [1, 2], "b": ["x", "y"]}
    got = _as_dicts(name, call(name, fn, dict(hand)))
    expected = [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    if got != expected:
        if len(got) == 2:
            raise CheckFailed(f"{name}: {{'a': [1, 2], 'b': ['x', 'y']}} gave 2 configurations, expected 4: "
                              "zip pairs the lists up; a grid needs every combination (itertools.product)")
        if len(got) == 4 and all(d == got[0] for d in got):
            raise CheckFailed(f"{name}: all 4 configurations are the same dict: build a new dict per "
                              "combination instead of updating one and appending it")
        if sorted(map(repr, got)) == sorted(map(repr, expected)):
            raise CheckFailed(f"{name}: the right 4 configurations in the wrong order: the LAST key should vary "
                              f"fastest, as in itertools.product. Expected {expected}, got {got}")
        raise CheckFailed(f"{name}: {{'a': [1, 2], 'b': ['x', 'y']}} should give {expected}, got {got}")

    space = {"width": [32, 64, 128], "lr": (3e-3, 1e-2), "optimizer": "adamw", "steps": 200}
    try:
        got = fn(dict(space))
    except NotImplementedError:
        raise
    except Exception as e:
        raise CheckFailed(f"{name}: {type(e).__name__} ({e}) on a space with fixed values "
                          "({'optimizer': 'adamw', 'steps': 200}): a value that is not a list or tuple is one "
                          "fixed value, used as it is") from e
    got = _as_dicts(name, got)
    expected = _grid(space)
    if got != expected:
        if any(isinstance(d.get("optimizer"), str) and len(d["optimizer"]) == 1 for d in got):
            raise CheckFailed(f"{name}: 'optimizer': 'adamw' was split into letters: a string is one fixed "
                              "value; only lists and tuples hold alternatives")
        expect(len(got) == len(expected), name,
               f"3 widths x 2 learning rates x 1 x 1 should give {len(expected)} configurations, got {len(got)}")
        raise CheckFailed(f"{name}: expected {expected}, got {got}")
    expect(len({id(d) for d in got}) == len(got), name, "every configuration should be its own dict")
    expect(all(list(d) == list(space) for d in got), name, "keep the keys in the space's order in every dict")

    # scikit-learn's ParameterGrid gives the same set (it sorts the keys, so its order differs).
    from sklearn.model_selection import ParameterGrid

    listed = {k: (v if isinstance(v, (list, tuple)) else [v]) for k, v in space.items()}
    reference = {tuple(sorted(d.items())) for d in ParameterGrid(listed)}
    expect({tuple(sorted(d.items())) for d in got} == reference, name,
           "the configurations differ from scikit-learn's ParameterGrid")
    passed(name, f"{len(got)} configurations, the same set as sklearn's ParameterGrid, in itertools.product order")


# ------------------------------------------------------------------------------- exercise 2

EVENTS = ("start_run", "param", "metric", "end_run")


def _read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_tracker(fn: Callable) -> None:
    """Exercise 2: `fn(path)` returns a tracker whose start_run/log_param/log_metric/end_run append JSON lines."""
    name = "make_tracker"
    with tempfile.TemporaryDirectory(prefix="check-tracker-") as tmp:
        path = Path(tmp) / "runs.jsonl"
        path.write_text(json.dumps({"event": "start_run", "run_id": "older", "name": "old", "time": 0.0}) + "\n")
        tracker = call(name, fn, path)
        for method in ("start_run", "log_param", "log_metric", "end_run"):
            expect(callable(getattr(tracker, method, None)), name, f"the tracker has no `{method}` method")

        run_a = call(name, tracker.start_run, "baseline")
        expect(isinstance(run_a, str) and run_a, name, f"start_run should return the run id (a str), got {run_a!r}")
        call(name, tracker.log_param, "lr", 0.01)
        call(name, tracker.log_param, "width", 64)
        call(name, tracker.log_param, "lr", 0.01)  # the same value again: fine, nothing new to record
        try:
            tracker.log_param("lr", 0.5)
        except ValueError:
            pass
        except NotImplementedError:
            raise not_implemented(name) from None
        except Exception as e:
            raise CheckFailed(f"{name}: changing a logged param raised {type(e).__name__}; raise ValueError") from e
        else:
            raise CheckFailed(f"{name}: log_param('lr', 0.5) after log_param('lr', 0.01) in the same run was "
                              "accepted: a run's params are fixed once logged; raise ValueError (as MLflow does)")
        for step, value in enumerate([2.0, 1.5, 1.25]):
            call(name, tracker.log_metric, "loss", value, step)
        call(name, tracker.end_run)

        run_b = call(name, tracker.start_run, "wider")  # the same tracker, a new run: other values are fine
        try:
            tracker.log_param("lr", 0.5)
        except NotImplementedError:
            raise not_implemented(name) from None
        except Exception as e:
            raise CheckFailed(f"{name}: log_param('lr', 0.5) in a NEW run raised {type(e).__name__}: the params "
                              "already seen belong to the previous run; forget them in start_run") from e
        call(name, tracker.log_metric, "loss", 3, 0)
        call(name, tracker.end_run, "FAILED")

        second = call(name, fn, path)  # a second tracker (another process of the sweep) on the same file
        run_c = call(name, second.start_run, "baseline")
        call(name, second.log_metric, "loss", 1.0, 0)
        call(name, second.end_run)

        try:
            records = _read_lines(path)
        except json.JSONDecodeError as e:
            raise CheckFailed(f"{name}: the file is not one JSON object per line ({e}); "
                              "write json.dumps(record) + '\\n' per record") from e

    expect(records[:1] and records[0].get("run_id") == "older", name,
           "the line that was already in the file is gone: open the file in append mode ('a'), never 'w'")
    expect(len(records) > 2, name, f"the file holds only {len(records)} line(s): each call must append a line; "
           "opening it with 'w' overwrites everything before")
    expect(len({run_a, run_b, run_c}) == 3, name, "two runs got the same run id: make ids unique across "
           "trackers sharing a file (uuid.uuid4().hex), not a counter that restarts at 0")
    bad = [r for r in records if r.get("event") not in EVENTS]
    expect(not bad, name, f"unknown event {bad[:1]}: the events are {EVENTS}")
    ours = records[1:]
    kinds = [(r["event"], r.get("key")) for r in ours]
    expected_kinds = ([("start_run", None), ("param", "lr"), ("param", "width")] + [("metric", "loss")] * 3
                      + [("end_run", None), ("start_run", None), ("param", "lr"), ("metric", "loss"), ("end_run", None)]
                      + [("start_run", None), ("metric", "loss"), ("end_run", None)])
    if kinds != expected_kinds:
        if kinds.count(("param", "lr")) > 2:
            raise CheckFailed(f"{name}: the param 'lr' was written {kinds.count(('param', 'lr'))} times: logging "
                              "the same value again should write nothing (and a different one raise ValueError)")
        raise CheckFailed(f"{name}: expected the events {expected_kinds}, got {kinds}")
    for r, rid in zip(ours, [run_a] * 7 + [run_b] * 4 + [run_c] * 3):
        expect(r.get("run_id") == rid, name, f"every line needs the run_id of its run; got {r}")
    start = ours[0]
    expect(start.get("name") == "baseline" and isinstance(start.get("time"), (int, float)), name,
           f"a start_run line needs the run's name and its start time (time.time()); got {start}")
    expect(abs(start["time"] - time.time()) < 3600, name, "the start time should be time.time() (seconds)")
    params = [r for r in ours if r["event"] == "param"]
    expect([(p["key"], p.get("value")) for p in params] == [("lr", 0.01), ("width", 64), ("lr", 0.5)], name,
           f"param lines should hold the key and value as given; got {params}")
    metrics = [r for r in ours if r["event"] == "metric"]
    expect(all("step" in m for m in metrics), name, "every metric line needs its step")
    got = [(m["key"], m.get("value"), m["step"]) for m in metrics]
    want = [("loss", 2.0, 0), ("loss", 1.5, 1), ("loss", 1.25, 2), ("loss", 3.0, 0), ("loss", 1.0, 0)]
    expect(got == want, name, f"metric lines should be (key, value, step) = {want}, got {got}")
    expect(all(isinstance(m["value"], float) and isinstance(m["step"], int) for m in metrics), name,
           "store metric values as float and steps as int (log_metric('loss', 3, 0) should store 3.0)")
    ends = [r for r in ours if r["event"] == "end_run"]
    expect([e.get("status") for e in ends] == ["FINISHED", "FAILED", "FINISHED"], name,
           f"end_run() records status 'FINISHED' by default, end_run('FAILED') 'FAILED'; got {ends}")
    passed(name, f"{len(records) - 1} lines appended by two trackers after a run already in the file")


# ------------------------------------------------------------------------------- exercise 3


def _runs_reference(records: list[dict]) -> dict:
    runs: dict[str, dict] = {}
    for r in records:
        if r["event"] == "start_run":
            runs[r["run_id"]] = {"name": r["name"], "start": r["time"], "params": {}, "metrics": {},
                                 "status": "RUNNING"}
        elif r["event"] == "param":
            runs[r["run_id"]]["params"][r["key"]] = r["value"]
        elif r["event"] == "metric":
            runs[r["run_id"]]["metrics"].setdefault(r["key"], []).append((r["step"], r["value"]))
        elif r["event"] == "end_run":
            runs[r["run_id"]]["status"] = r["status"]
    for run in runs.values():
        for key, history in run["metrics"].items():
            run["metrics"][key] = sorted(history, key=lambda sv: sv[0])
    return runs


def _sweep_records() -> list[dict]:
    """Three runs written by parallel workers: lines interleave, one run's metrics arrive out of step order,
    two runs share a name, and one run crashed (no end_run line)."""
    rec = []

    def start(rid, name, t):
        rec.append({"event": "start_run", "run_id": rid, "name": name, "time": t})

    def param(rid, k, v):
        rec.append({"event": "param", "run_id": rid, "key": k, "value": v})

    def metric(rid, k, v, s):
        rec.append({"event": "metric", "run_id": rid, "key": k, "value": v, "step": s})

    start("r1", "lr=0.01", 100.0)
    start("r2", "lr=0.01", 101.0)
    param("r1", "lr", 0.01)
    param("r2", "lr", 0.01)
    param("r1", "seed", 0)
    param("r2", "seed", 1)
    for s, (a, b) in enumerate([(2.0, 2.1), (1.6, 1.7), (1.4, 1.5), (1.3, 1.45)]):
        metric("r1", "loss", a, s * 10)
        metric("r2", "loss", b, s * 10)
    metric("r1", "val_loss", 1.5, 30)
    rec.append({"event": "end_run", "run_id": "r1", "status": "FINISHED", "time": 110.0})
    start("r3", "lr=0.1", 102.0)
    param("r3", "lr", 0.1)
    for s, v in [(20, 1.2), (0, 2.5), (10, 1.8), (30, 1.1)]:  # an async logger: lines out of step order
        metric("r3", "loss", v, s)
    metric("r2", "val_loss", 1.6, 30)
    rec.append({"event": "end_run", "run_id": "r2", "status": "FINISHED", "time": 111.0})
    metric("r3", "val_loss", 1.0, 30)  # r3 then crashed: no end_run line
    return rec


def read_runs(fn: Callable) -> None:
    """Exercise 3: `fn(path)` rebuilds {run_id: {name, start, params, metrics, status}} from the JSON lines."""
    name = "read_runs"
    records = _sweep_records()
    with tempfile.TemporaryDirectory(prefix="check-runs-") as tmp:
        path = Path(tmp) / "runs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        got = call(name, fn, path)
        hand_path = Path(tmp) / "one.jsonl"
        hand_path.write_text("".join(json.dumps(r) + "\n" for r in [
            {"event": "start_run", "run_id": "a", "name": "tiny", "time": 5.0},
            {"event": "param", "run_id": "a", "key": "width", "value": 8},
            {"event": "metric", "run_id": "a", "key": "loss", "value": 1.0, "step": 1},
            {"event": "metric", "run_id": "a", "key": "loss", "value": 2.0, "step": 0},
            {"event": "end_run", "run_id": "a", "status": "FINISHED", "time": 6.0}]))
        hand = call(name, fn, hand_path)
    expected = _runs_reference(records)

    expect(isinstance(got, dict), name, f"return a dict {{run_id: run}}, got {type(got).__name__}")
    if set(got) != set(expected):
        if set(got) >= {"lr=0.01", "lr=0.1"}:
            raise CheckFailed(f"{name}: runs are keyed by name; two runs may share a name (here 'lr=0.01'), "
                              "so key them by run_id")
        raise CheckFailed(f"{name}: expected the run ids {sorted(expected)}, got {sorted(got)}")
    for rid, run in expected.items():
        mine = got[rid]
        expect(isinstance(mine, dict), name, f"each run should be a dict, got {type(mine).__name__}")
        for field in ("name", "start", "params", "metrics", "status"):
            expect(field in mine, name, f"run {rid} has no {field!r}; each run needs name, start, params, "
                   "metrics and status")
        expect(mine["name"] == run["name"] and mine["start"] == run["start"], name,
               f"run {rid}: name and start should come from its start_run line")
        expect(mine["params"] == run["params"], name,
               f"run {rid}: params should be {run['params']}, got {mine['params']} (only this run's param lines)")
        metrics = {k: [tuple(sv) for sv in v] if isinstance(v, list) else v for k, v in mine["metrics"].items()}
        for key, history in run["metrics"].items():
            h = metrics.get(key)
            expect(h is not None, name, f"run {rid} lost its metric {key!r}")
            if not isinstance(h, list):
                raise CheckFailed(f"{name}: run {rid} metric {key!r} is {h!r}, not a history: each new line "
                                  "overwrote the last; append (step, value) to a list instead")
            if len(h) == 1 and len(history) > 1:
                raise CheckFailed(f"{name}: run {rid} metric {key!r} kept only {h}: each new line overwrote the "
                                  "last; append (step, value) to a list instead")
            if sorted(h) == history and h != history:
                raise CheckFailed(f"{name}: run {rid} metric {key!r} is not in step order ({[s for s, _ in h]}): "
                                  "lines can arrive out of order (parallel or async loggers); sort each "
                                  "history by step")
            expect(h == history, name, f"run {rid} metric {key!r}: expected [(step, value), ...] = {history}, got {h}")
        if mine["status"] != run["status"]:
            if run["status"] == "RUNNING":
                raise CheckFailed(f"{name}: run {rid} has no end_run line (it crashed or is still running): its "
                                  f"status should be 'RUNNING', got {mine['status']!r}")
            raise CheckFailed(f"{name}: run {rid} status should be {run['status']!r}, got {mine['status']!r}")
    expect(set(hand) == {"a"} and [tuple(sv) for sv in hand["a"]["metrics"]["loss"]] == [(0, 2.0), (1, 1.0)], name,
           "one run with loss logged at step 1 then step 0 should give {'loss': [(0, 2.0), (1, 1.0)]}")
    passed(name, f"{len(got)} runs rebuilt from {len(records)} interleaved lines")


# ------------------------------------------------------------------------------- exercise 4


def _run(name, val, n_params, start, status="FINISHED", history=None):
    history = history if history is not None else [(0, val + 1.0), (100, val + 0.2), (200, val)]
    return {"name": name, "start": start, "params": {"n_params": n_params}, "status": status,
            "metrics": {"val_loss": history, "loss": [(0, 3.0), (200, 1.0)]}}


def _best_reference(runs: dict, metric: str = "val_loss") -> str:
    eligible = [(rid, r) for rid, r in runs.items() if r["status"] == "FINISHED" and r["metrics"].get(metric)]
    return min(eligible, key=lambda x: (max(x[1]["metrics"][metric])[1], x[1]["params"]["n_params"],
                                        x[1]["start"]))[0]


def _best_with(runs: dict, metric: str, *, pick=min, score="final", tie=("n_params", "start"),
               finished_only=True) -> str | None:
    eligible = [(rid, r) for rid, r in runs.items()
                if (r["status"] == "FINISHED" or not finished_only) and r["metrics"].get(metric)]

    def key(x):
        h = x[1]["metrics"][metric]
        s = max(h)[1] if score == "final" else min(v for _, v in h)
        extra = tuple(x[1]["params"]["n_params"] if t == "n_params" else -x[1]["params"]["n_params"]
                      if t == "-n_params" else x[1]["start"] for t in tie)
        return (s, *extra) if pick is min else (s,)

    return pick(eligible, key=key)[0] if eligible else None


def best_run(fn: Callable) -> None:
    """Exercise 4: `fn(runs, metric)` picks the finished run with the lowest final metric, ties by size then start."""
    name = "best_run"
    cases = []
    # 1. the lowest final val_loss wins, even though another run dipped lower earlier
    runs = {"a": _run("a", 1.30, 10_000, 1.0), "b": _run("b", 1.20, 10_000, 2.0),
            "c": _run("c", 1.25, 10_000, 3.0, history=[(0, 2.0), (100, 1.05), (200, 1.25)]),
            "d": _run("d", 1.60, 10_000, 4.0)}
    cases.append(("lowest final value", runs, "val_loss"))
    # 2. a tie on val_loss: fewer parameters wins (listed first: the bigger model)
    runs = {"big": _run("big", 1.10, 80_000, 1.0), "small": _run("small", 1.10, 20_000, 2.0),
            "worse": _run("worse", 1.40, 5_000, 0.5)}
    cases.append(("tie broken by fewer parameters", runs, "val_loss"))
    # 3. a tie on both: the earlier start wins (listed first: the later one)
    runs = {"late": _run("late", 1.00, 20_000, 9.0), "early": _run("early", 1.00, 20_000, 3.0),
            "other": _run("other", 1.30, 20_000, 1.0)}
    cases.append(("tie broken by earlier start", runs, "val_loss"))
    # 4. a crashed run with a low last value is not eligible; nor is a run without the metric
    runs = {"crashed": _run("crashed", 0.50, 5_000, 1.0, status="RUNNING"),
            "failed": _run("failed", 0.70, 5_000, 1.5, status="FAILED"),
            "ok": _run("ok", 1.10, 5_000, 2.0), "fine": _run("fine", 1.20, 5_000, 3.0)}
    runs["no_metric"] = {"name": "no_metric", "start": 0.0, "params": {"n_params": 1}, "status": "FINISHED",
                         "metrics": {"loss": [(0, 0.1)]}}
    cases.append(("only finished runs with the metric", runs, "val_loss"))
    # 5. another metric by name; histories not in dict order of steps are still [(step, value)] sorted
    runs = {"x": _run("x", 1.0, 1, 1.0), "y": _run("y", 2.0, 1, 2.0)}
    runs["x"]["metrics"]["loss"] = [(0, 3.0), (200, 0.9)]
    runs["y"]["metrics"]["loss"] = [(0, 3.0), (200, 0.8)]
    cases.append(("the metric named by `metric`", runs, "loss"))

    bugs = {
        "max instead of min: lower loss is better": dict(pick=max),
        "the BEST value of the history was used; the spec asks for the FINAL value (the last step)":
            dict(score="best"),
        "ties should go to the run with FEWER parameters (params['n_params']), then the earlier start":
            dict(tie=("-n_params", "start")),
        "a tie on the metric is broken by fewer parameters first, then the earlier start":
            dict(tie=("start", "n_params")),
        "ties are not broken: compare (final value, n_params, start) together": dict(tie=()),
        "a run that did not finish (status RUNNING or FAILED) is not eligible, however low its loss":
            dict(finished_only=False),
    }
    for label, runs, metric in cases:
        got = call(name, fn, runs, metric)
        want = _best_reference(runs, metric)
        if got == want:
            continue
        for hint, kw in bugs.items():
            try:
                wrong = _best_with(runs, metric, **kw)
            except (KeyError, ValueError, TypeError):
                wrong = None
            if wrong == got:
                raise CheckFailed(f"{name}: case '{label}': expected {want!r}, got {got!r}: {hint}")
        raise CheckFailed(f"{name}: case '{label}': expected {want!r}, got {got!r}")
    passed(name, f"{len(cases)} cases: lowest final value, ties by size then start, finished runs only")

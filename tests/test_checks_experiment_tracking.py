"""The checks of 09_experiment_tracking pass correct answers and catch the stub and plausible bugs."""
import itertools
import json
import re
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import experiment_tracking as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ sweep_grid
def grid(space):
    values = [v if isinstance(v, (list, tuple)) else [v] for v in space.values()]
    return [dict(zip(space, combo)) for combo in itertools.product(*values)]


def grid_zip(space):
    values = [v if isinstance(v, (list, tuple)) else [v] * 3 for v in space.values()]
    return [dict(zip(space, combo)) for combo in zip(*values)]


def grid_first_fastest(space):
    values = [v if isinstance(v, (list, tuple)) else [v] for v in space.values()]
    return [dict(zip(space, combo[::-1])) for combo in itertools.product(*values[::-1])]


def grid_strings_split(space):
    values = [v if isinstance(v, (list, tuple, str)) else [v] for v in space.values()]
    return [dict(zip(space, combo)) for combo in itertools.product(*values)]


def grid_scalars_crash(space):
    return [dict(zip(space, combo)) for combo in itertools.product(*space.values())]


def grid_shared_dict(space):
    values = [v if isinstance(v, (list, tuple)) else [v] for v in space.values()]
    out, config = [], {}
    for combo in itertools.product(*values):
        config.update(zip(space, combo))
        out.append(config)
    return out


def grid_tuples(space):
    values = [v if isinstance(v, (list, tuple)) else [v] for v in space.values()]
    return list(itertools.product(*values))


# ------------------------------------------------------------------ make_tracker
def make_tracker_factory(mode="a", dedupe=True, immutable=True, reset=True, ids="uuid", cast=True,
                         default_status="FINISHED"):
    counter = itertools.count()

    def make_tracker(path):
        path = Path(path)
        state = {"run_id": None, "params": {}}
        local = itertools.count()

        def write(**record):
            with open(path, mode) as f:
                f.write(json.dumps(record) + "\n")

        def start_run(name):
            state["run_id"] = uuid.uuid4().hex if ids == "uuid" else f"run-{next(local)}"
            if reset:
                state["params"] = {}
            write(event="start_run", run_id=state["run_id"], name=name, time=time.time())
            return state["run_id"]

        def log_param(key, value):
            if key in state["params"]:
                if state["params"][key] != value and immutable:
                    raise ValueError(f"param {key!r} already logged as {state['params'][key]!r}")
                if dedupe:
                    return
            state["params"][key] = value
            write(event="param", run_id=state["run_id"], key=key, value=value)

        def log_metric(key, value, step):
            write(event="metric", run_id=state["run_id"], key=key, value=float(value) if cast else value,
                  step=int(step))

        def end_run(status=default_status):
            write(event="end_run", run_id=state["run_id"], status=status, time=time.time())
            state["run_id"] = None

        next(counter)
        return SimpleNamespace(start_run=start_run, log_param=log_param, log_metric=log_metric, end_run=end_run)

    return make_tracker


def tracker_no_step(path):
    t = make_tracker_factory()(path)

    def log_metric(key, value, step):
        with open(path, "a") as f:
            f.write(json.dumps({"event": "metric", "run_id": t._rid, "key": key, "value": float(value)}) + "\n")

    start = t.start_run

    def start_run(name):
        t._rid = start(name)
        return t._rid

    return SimpleNamespace(start_run=start_run, log_param=t.log_param, log_metric=log_metric, end_run=t.end_run)


# ------------------------------------------------------------------ read_runs
def make_reader(key_by="run_id", history=True, sort=True, default_status="RUNNING"):
    def read_runs(path):
        runs, by_id = {}, {}
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            if r["event"] == "start_run":
                run = {"name": r["name"], "start": r["time"], "params": {}, "metrics": {}, "status": default_status}
                by_id[r["run_id"]] = run
                runs[r["run_id"] if key_by == "run_id" else r["name"]] = run
                continue
            run = by_id[r["run_id"]]
            if r["event"] == "param":
                run["params"][r["key"]] = r["value"]
            elif r["event"] == "metric":
                if history:
                    run["metrics"].setdefault(r["key"], []).append((r["step"], r["value"]))
                else:
                    run["metrics"][r["key"]] = [(r["step"], r["value"])]
            elif r["event"] == "end_run":
                run["status"] = r["status"]
        if sort:
            for run in runs.values():
                for k in run["metrics"]:
                    run["metrics"][k].sort(key=lambda sv: sv[0])
        return runs

    return read_runs


def reader_scalar_metrics(path):
    runs = make_reader()(path)
    for run in runs.values():
        run["metrics"] = {k: h[-1][1] for k, h in run["metrics"].items()}
    return runs


# ------------------------------------------------------------------ best_run
def make_best(pick=min, score="final", tie=("n_params", "start"), finished_only=True):
    def best_run(runs, metric="val_loss"):
        eligible = {rid: r for rid, r in runs.items()
                    if (r["status"] == "FINISHED" or not finished_only) and r["metrics"].get(metric)}

        def key(rid):
            r = eligible[rid]
            h = r["metrics"][metric]
            s = h[-1][1] if score == "final" else min(v for _, v in h)
            return (s, *[r["params"]["n_params"] if t == "n_params" else -r["params"]["n_params"]
                         if t == "-n_params" else r["start"] for t in tie])

        return pick(eligible, key=key)

    return best_run


CASES = {
    "sweep_grid": (grid, {
        "zip": (grid_zip, "zip pairs"),
        "first key fastest": (grid_first_fastest, "wrong order"),
        "string split": (grid_strings_split, "split into letters"),
        "scalars crash": (grid_scalars_crash, "fixed value"),
        "one shared dict": (grid_shared_dict, "same dict"),
        "tuples": (grid_tuples, "dict"),
    }),
    "make_tracker": (make_tracker_factory(), {
        "overwrites": (make_tracker_factory(mode="w"), "append mode"),
        "param written twice": (make_tracker_factory(dedupe=False), "written 3 times"),
        "changed param accepted": (make_tracker_factory(immutable=False), "raise ValueError"),
        "params not reset per run": (make_tracker_factory(reset=False), "NEW run"),
        "counter ids": (make_tracker_factory(ids="counter"), "same run id"),
        "no step": (tracker_no_step, "step"),
        "ints kept": (make_tracker_factory(cast=False), "float"),
        "default status": (make_tracker_factory(default_status="DONE"), "FINISHED"),
    }),
    "read_runs": (make_reader(), {
        "overwrites history": (make_reader(history=False), "overwrote the last"),
        "scalar metrics": (reader_scalar_metrics, "not a history"),
        "not sorted": (make_reader(sort=False), "step order"),
        "keyed by name": (make_reader(key_by="name"), "keyed by name"),
        "crashed run finished": (make_reader(default_status="FINISHED"), "'RUNNING'"),
    }),
    "best_run": (make_best(), {
        "max": (make_best(pick=max), "max instead of min"),
        "best not final": (make_best(score="best"), "FINAL value"),
        "no tie-break": (make_best(tie=()), "FEWER parameters"),
        "more parameters": (make_best(tie=("-n_params", "start")), "FEWER parameters"),
        "start first": (make_best(tie=("start", "n_params")), "FEWER parameters"),
        "unfinished runs": (make_best(finished_only=False), "not eligible"),
    }),
}


@pytest.mark.parametrize("name", CASES)
def test_correct_passes(name, capsys):
    getattr(check, name)(CASES[name][0])
    assert f"✓ {name} passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", CASES)
def test_stub_fails(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        getattr(check, name)(stub)


@pytest.mark.parametrize("name,bug", [(n, b) for n, (_, bugs) in CASES.items() for b in bugs])
def test_bug_fails_with_named_cause(name, bug):
    fn, message = CASES[name][1][bug]
    with pytest.raises(CheckFailed, match=re.escape(message)):
        getattr(check, name)(fn)


def test_tracker_stub_that_raises_in_a_method_fails():
    def make_tracker(path):
        return SimpleNamespace(start_run=stub, log_param=stub, log_metric=stub, end_run=stub)

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check.make_tracker(make_tracker)


def test_reader_reads_what_the_reference_tracker_writes(tmp_path):
    # the two exercises agree on the format: what make_tracker writes, read_runs rebuilds
    path = tmp_path / "runs.jsonl"
    tracker = make_tracker_factory()(path)
    rid = tracker.start_run("demo")
    tracker.log_param("width", 32)
    tracker.log_param("n_params", 1000)
    for step in (2, 0, 1):
        tracker.log_metric("loss", 1.0 / (step + 1), step)
    tracker.end_run()
    runs = make_reader()(path)
    assert runs[rid]["params"] == {"width": 32, "n_params": 1000}
    assert runs[rid]["metrics"]["loss"] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert runs[rid]["status"] == "FINISHED"
    assert make_best()(runs, "loss") == rid

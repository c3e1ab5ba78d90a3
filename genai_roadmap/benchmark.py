"""Time the course notebooks, each in a fresh kernel: wall seconds and peak memory, kept in a CSV.

    python -m genai_roadmap.benchmark                        # every notebook of the course map that exists
    python -m genai_roadmap.benchmark phase1_foundations/04_transformers.ipynb --repeat 3
    python -m genai_roadmap.benchmark --cores 2              # on a bigger Linux machine: pin to 2 cores

Writes benchmarks/notebooks.csv (`notebook,seconds,peak_mib,cores,date`), keeping the rows of notebooks
not run this time, prints a markdown table, the median over notebooks, and flags every notebook whose
median time is over the 120 s budget, any run over the 300 s limit, or a peak over 3 GiB. Exit code 0
when every notebook ran and none is flagged, 1 otherwise, 2 for bad arguments.

How it measures. Each notebook runs in its own child process (`python -m genai_roadmap.benchmark
--child`), which executes it with nbclient in a fresh `python3` kernel whose working folder is a
temporary directory; the executed notebook stays in memory and is never written anywhere, so nothing
lands in the repository.

- seconds: wall time of nbclient's `execute()` in the child: kernel start, every cell, kernel shutdown,
  i.e. what "Restart kernel and run all" costs a learner (the child's own Python start is not counted).
  With --repeat N the CSV keeps the median of the N runs.
- peak_mib: the peak resident memory of the kernel's process tree (the kernel and anything it starts:
  data-loader workers, a local server), as the larger of two lower bounds on the true peak:
  1. the parent samples the summed RSS of every descendant of the child except the child itself (that
     is nbclient, not the learner's kernel) every 0.2 s, with psutil when installed, else from /proc.
     This sees a multi-process tree but can miss a peak shorter than the interval;
  2. the child reports `getrusage(RUSAGE_CHILDREN).ru_maxrss` after the kernel has exited and been
     reaped: the kernel's exact peak RSS as counted by the OS (the largest single process among the
     child's reaped descendants), which misses nothing in time but does not add processes up.
  One child per notebook is what makes (2) per notebook: RUSAGE_CHILDREN only ever grows within a
  process. Summed RSS counts pages shared between processes twice, so (1) errs high for forked trees.
- cores: the CPU cores the kernel could use (its affinity mask; --cores N pins the child, and so the
  kernel, to N cores and sets OMP/MKL threads to N).

The course cache (GENAI_ROADMAP_CACHE) is used as it is: a first run that builds the course models is
slower than later ones, so run `make models` first (the Makefile's `benchmark` target does).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from genai_roadmap.course import BENCHMARK_CSV, CARDS, REPO_ROOT, existing_notebooks

FIELDS = ("notebook", "seconds", "peak_mib", "cores", "date")
DEFAULT_CSV = BENCHMARK_CSV
BUDGET_S = 120.0  # the median run of a notebook should fit in this (conventions)
LIMIT_S = 300.0  # no single run may take longer
MEMORY_MIB = 3 * 1024.0  # nor use more memory
SAMPLE_S = 0.2
RESULT_PREFIX = "GENAI-BENCHMARK-RESULT "
_RUNTIME = re.compile(r"\*\*Runtime:\*\*\s*about (\d+) s")


@dataclass
class Row:
    """One line of the CSV: a notebook's median seconds and peak MiB on `cores` cores, measured on `date`."""

    notebook: str
    seconds: float
    peak_mib: float
    cores: int
    date: str


@dataclass
class Run:
    """One execution of one notebook."""

    seconds: float = float("nan")
    peak_mib: float = float("nan")
    error: str | None = None


@dataclass
class Result:
    """All the runs of one notebook this time."""

    notebook: str
    runs: list[Run] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return next((r.error for r in self.runs if r.error), None)


# ------------------------------------------------------------------------------------------ CSV, table


def _course_order(notebook: str) -> tuple:
    order = {c.notebook: c.number for c in CARDS}
    return (0, order[notebook], "") if notebook in order else (1, 0, notebook)


def read_csv(path: Path) -> list[Row]:
    """The rows of an existing benchmark CSV ([] when there is none)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path}: expected the columns {','.join(FIELDS)}, got {reader.fieldnames}")
        return [Row(r["notebook"], float(r["seconds"]), float(r["peak_mib"]), int(r["cores"]), r["date"])
                for r in reader]


def write_csv(path: Path, rows: list[Row]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(FIELDS)
        for r in rows:
            writer.writerow([r.notebook, f"{r.seconds:.1f}", f"{r.peak_mib:.0f}", r.cores, r.date])


def merge(old: list[Row], new: list[Row]) -> list[Row]:
    """Old rows updated by new ones (same notebook: the new row wins), in roadmap order."""
    rows = {r.notebook: r for r in old}
    rows.update({r.notebook: r for r in new})
    return sorted(rows.values(), key=lambda r: _course_order(r.notebook))


def markdown_table(rows: list[Row], stated: dict[str, int] | None = None) -> str:
    """The rows as a markdown table; with `stated`, a column of each notebook's `**Runtime:**` claim."""
    head = ["notebook", "seconds", "peak MiB", "cores", "date"] + (["stated"] if stated is not None else [])
    lines = ["| " + " | ".join(head) + " |",
             "|---|---:|---:|---:|---|" + ("---:|" if stated is not None else "")]
    for r in rows:
        cells = [r.notebook, f"{r.seconds:.1f}", f"{r.peak_mib:.0f}", str(r.cores), r.date]
        if stated is not None:
            cells.append(f"about {stated[r.notebook]} s" if r.notebook in stated else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def median_line(rows: list[Row]) -> str:
    if not rows:
        return "no notebooks measured"
    return f"median over {len(rows)} notebook{'s' if len(rows) != 1 else ''}: {statistics.median(r.seconds for r in rows):.1f} s"


def flags(rows: list[Row], runs: dict[str, list[float]] | None = None) -> list[str]:
    """Notebooks over budget: median > 120 s, a run > 300 s (the row's median when no runs given), > 3 GiB."""
    runs = runs or {}
    out = []
    for r in rows:
        if r.seconds > BUDGET_S:
            out.append(f"{r.notebook}: median {r.seconds:.0f} s is over the {BUDGET_S:.0f} s budget")
        slowest = max(runs.get(r.notebook) or [r.seconds])
        if slowest > LIMIT_S:
            out.append(f"{r.notebook}: a run took {slowest:.0f} s, over the {LIMIT_S:.0f} s limit")
        if r.peak_mib > MEMORY_MIB:
            out.append(f"{r.notebook}: peak memory {r.peak_mib / 1024:.2f} GiB is over the "
                       f"{MEMORY_MIB / 1024:.0f} GiB budget")
    return out


def stated_runtime(path: Path) -> int | None:
    """The `**Runtime:** about N s` a notebook claims in its title cell, if any."""
    try:
        import nbformat

        nb = nbformat.read(path, as_version=4)
    except Exception:
        return None
    for cell in nb.cells[:2]:
        if cell.cell_type == "markdown" and (m := _RUNTIME.search(cell.source)):
            return int(m.group(1))
    return None


# ------------------------------------------------------------------------------------------ measuring


def _tree_rss_psutil(root: int) -> int:
    import psutil

    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in children:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _proc_descendants(root: int) -> list[int]:
    """Descendants of `root`, parents before children, from /proc (the fallback without psutil)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _tree_rss_proc(root: int) -> int:
    page, total = os.sysconf("SC_PAGE_SIZE"), 0
    for pid in _proc_descendants(root):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            pass
    return total


def tree_rss(root: int) -> int:
    """Summed RSS in bytes of every descendant of process `root` (not `root` itself); 0 if unknown."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        return _tree_rss_proc(root) if os.path.isdir("/proc") else 0
    return _tree_rss_psutil(root)


def _descendants(root: int) -> list[int]:
    try:
        import psutil
    except ImportError:
        return _proc_descendants(root) if os.path.isdir("/proc") else []
    try:
        return [p.pid for p in psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return []


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the child and its descendants (the kernel runs in a session of its own), by pid."""
    for pid in reversed(_descendants(proc.pid)):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    proc.kill()
    proc.wait()


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def measure(notebook: Path, *, cores: int | None = None, cell_timeout: int = 600,
            timeout: float = 1800.0) -> Run:
    """Execute `notebook` once in a child process and a fresh kernel; see the module docstring."""
    env = dict(os.environ)
    preexec = None
    if cores:
        cpus = sorted(os.sched_getaffinity(0))[:cores]

        def preexec() -> None:  # runs in the child before exec; the kernel inherits the mask
            os.sched_setaffinity(0, cpus)

        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(cores)
    with tempfile.TemporaryDirectory(prefix="genai-roadmap-benchmark-") as tmp:
        workdir = Path(tmp) / "kernel"
        workdir.mkdir()
        out_path, err_path = Path(tmp) / "child.out", Path(tmp) / "child.err"
        cmd = [sys.executable, "-m", "genai_roadmap.benchmark", "--child", str(notebook),
               "--cell-timeout", str(cell_timeout), "--workdir", str(workdir)]
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, preexec_fn=preexec)
            peak, start, timed_out = 0, time.monotonic(), False
            try:
                while proc.poll() is None:
                    peak = max(peak, tree_rss(proc.pid))
                    if time.monotonic() - start > timeout:
                        timed_out = True
                        _kill_tree(proc)
                        break
                    time.sleep(SAMPLE_S)
            except BaseException:  # Ctrl-C: leave no kernel behind
                _kill_tree(proc)
                raise
        if timed_out:
            return Run(error=f"timed out after {timeout:.0f} s")
        result = next((json.loads(line[len(RESULT_PREFIX):]) for line in out_path.read_text().splitlines()
                       if line.startswith(RESULT_PREFIX)), None)
        if result is None:
            tail = err_path.read_text().strip().splitlines()[-5:]
            return Run(error=f"the child exited with {proc.returncode}: " + " / ".join(tail))
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = max(peak, result["kernel_maxrss"] * scale)
    return Run(seconds=result["seconds"], peak_mib=peak / 2**20, error=result["error"])


def _child(notebook: str, cell_timeout: int, workdir: str) -> int:
    """Run in the child process: execute the notebook, print one result line as JSON."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=cell_timeout, allow_errors=False,
                            resources={"metadata": {"path": workdir}})
    error = None
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as e:
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and
                      any(o.output_type == "error" for o in c.get("outputs", []))), "?")
        error = f"cell {index}: {e.ename}: {e.evalue}"
    except (CellTimeoutError, DeadKernelError) as e:
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    seconds = time.perf_counter() - start
    kernel_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(RESULT_PREFIX + json.dumps({"seconds": seconds, "kernel_maxrss": kernel_maxrss, "error": error}),
          flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ main


def _name(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genai_roadmap.benchmark",
                                     description="Time each notebook in a fresh kernel and record it in a CSV.")
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: every course notebook that exists)")
    parser.add_argument("--out", default=str(DEFAULT_CSV), help="the CSV to update (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook; the CSV keeps the median")
    parser.add_argument("--cores", type=int, default=None, help="pin each run to this many cores (Linux)")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds one cell may take")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds one notebook run may take")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.cell_timeout, args.workdir or tempfile.gettempdir())

    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.cores is not None and not (hasattr(os, "sched_setaffinity") and 1 <= args.cores <= available_cores()):
        parser.error(f"--cores needs Linux and 1..{available_cores()} cores")
    paths = [Path(p) for p in args.notebooks] if args.notebooks else existing_notebooks()
    for p in paths:
        if not (p.is_file() and p.suffix == ".ipynb"):
            parser.error(f"{p}: no such notebook")
    if not paths:
        print("no course notebooks exist yet: nothing to benchmark")
        return 0

    cores = args.cores or available_cores()
    today = dt.date.today().isoformat()
    results: list[Result] = []
    for path in paths:
        result = Result(_name(path))
        for k in range(1, args.repeat + 1):
            run = measure(path, cores=args.cores, cell_timeout=args.cell_timeout, timeout=args.timeout)
            result.runs.append(run)
            what = run.error or f"{run.seconds:.1f} s, {run.peak_mib:.0f} MiB"
            print(f"{result.notebook} run {k}/{args.repeat}: {what}", flush=True)
            if run.error:
                break
        results.append(result)

    fresh = [Row(r.notebook, statistics.median(x.seconds for x in r.runs), max(x.peak_mib for x in r.runs), cores,
                 today) for r in results if not r.error]
    out = Path(args.out)
    rows = merge(read_csv(out), fresh)
    if fresh:
        write_csv(out, rows)
        print(f"updated {out} ({len(fresh)} notebook{'s' if len(fresh) != 1 else ''} measured)")
    stated = {r.notebook: n for r in rows if (n := stated_runtime(REPO_ROOT / r.notebook)) is not None}
    print()
    print(markdown_table(rows, stated))
    print()
    print(median_line(rows))
    problems = flags(rows, {r.notebook: [x.seconds for x in r.runs] for r in results if not r.error})
    problems += [f"{r.notebook}: failed: {r.error}" for r in results if r.error]
    for line in problems:
        print(f"⚠ {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

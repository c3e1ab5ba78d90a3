"""genai_roadmap.benchmark's bookkeeping: CSV merge, the markdown table, the flags (no notebook is run here)."""
from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from genai_roadmap import benchmark as bm
from genai_roadmap.benchmark import Row

NB4 = "phase1_foundations/04_transformers.ipynb"
NB1 = "phase1_foundations/01_math_and_statistics.ipynb"
NB10 = "phase3_architecture/10_rag_systems.ipynb"


def test_csv_round_trip_and_format(tmp_path):
    path = tmp_path / "benchmarks" / "notebooks.csv"
    bm.write_csv(path, [Row(NB4, 85.26, 1234.4, 2, "2026-01-02")])
    assert path.read_text() == f"notebook,seconds,peak_mib,cores,date\n{NB4},85.3,1234,2,2026-01-02\n"
    assert bm.read_csv(path) == [Row(NB4, 85.3, 1234.0, 2, "2026-01-02")]
    assert bm.read_csv(tmp_path / "missing.csv") == []


def test_read_csv_refuses_other_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("notebook,seconds\na,1\n")
    with pytest.raises(ValueError, match="expected the columns"):
        bm.read_csv(path)


def test_merge_replaces_rerun_keeps_others_in_roadmap_order():
    old = [Row(NB10, 50, 900, 2, "2026-01-01"), Row(NB4, 90, 1200, 2, "2026-01-01"),
           Row("elsewhere/x.ipynb", 1, 1, 2, "2026-01-01")]
    new = [Row(NB4, 80, 1100, 2, "2026-02-01"), Row(NB1, 30, 400, 2, "2026-02-01")]
    merged = bm.merge(old, new)
    assert [r.notebook for r in merged] == [NB1, NB4, NB10, "elsewhere/x.ipynb"]
    assert merged[1] == Row(NB4, 80, 1100, 2, "2026-02-01")
    assert merged[2].date == "2026-01-01"


def test_markdown_table():
    rows = [Row(NB1, 30.04, 400.4, 2, "2026-02-01"), Row(NB4, 80, 1100, 2, "2026-02-01")]
    assert bm.markdown_table(rows).splitlines() == [
        "| notebook | seconds | peak MiB | cores | date |",
        "|---|---:|---:|---:|---|",
        f"| {NB1} | 30.0 | 400 | 2 | 2026-02-01 |",
        f"| {NB4} | 80.0 | 1100 | 2 | 2026-02-01 |",
    ]
    with_stated = bm.markdown_table(rows, {NB4: 90}).splitlines()
    assert with_stated[0].endswith("| stated |") and with_stated[1].endswith("---:|")
    assert with_stated[2].endswith("|  |") and with_stated[3].endswith("| about 90 s |")


def test_median_line():
    rows = [Row(NB1, 10, 1, 2, "d"), Row(NB4, 30, 1, 2, "d"), Row(NB10, 200, 1, 2, "d")]
    assert bm.median_line(rows) == "median over 3 notebooks: 30.0 s"
    assert bm.median_line([]) == "no notebooks measured"


def test_flags():
    ok = Row(NB1, 119, 3000, 2, "d")
    slow = Row(NB4, 130, 100, 2, "d")
    very_slow = Row(NB10, 310, 100, 2, "d")
    big = Row("x.ipynb", 10, 3 * 1024 + 1, 2, "d")
    assert bm.flags([ok]) == []
    assert bm.flags([slow]) == [f"{NB4}: median 130 s is over the 120 s budget"]
    assert len(bm.flags([very_slow])) == 2  # over the budget, and over the limit
    assert bm.flags([big]) == ["x.ipynb: peak memory 3.00 GiB is over the 3 GiB budget"]
    # the median is fine but one of the runs took too long
    assert bm.flags([ok], {NB1: [100, 119, 320]}) == [f"{NB1}: a run took 320 s, over the 300 s limit"]


def test_stated_runtime(tmp_path):
    path = tmp_path / "01_x.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 01 · X\n\n**Runtime:** about 45 s on 2 CPU cores")]), path)
    assert bm.stated_runtime(path) == 45
    assert bm.stated_runtime(tmp_path / "missing.ipynb") is None


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_tree_rss_sees_children_with_and_without_psutil():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        import time

        time.sleep(0.3)
        via_proc = bm._tree_rss_proc(os.getpid())
        assert via_proc > 1 << 20, "a python child holds more than 1 MiB"
        try:
            import psutil  # noqa: F401
        except ImportError:
            return
        via_psutil = bm._tree_rss_psutil(os.getpid())
        assert abs(via_proc - via_psutil) < 0.2 * via_psutil
    finally:
        child.kill()
        child.wait()


def test_main_refuses_missing_notebook(tmp_path):
    with pytest.raises(SystemExit) as info:
        bm.main([str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "x.csv")])
    assert info.value.code == 2
    assert not (tmp_path / "x.csv").exists()

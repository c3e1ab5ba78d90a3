"""Print how long each notebook took (nbval runs a notebook as one test item per cell)."""
from collections import defaultdict

_durations: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    if report.nodeid.split("::")[0].endswith(".ipynb"):
        _durations[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    if _durations:
        terminalreporter.section("notebook durations")
        for nb, seconds in sorted(_durations.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {nb}")

"""How pytest-xdist shares the test modules out (scripts/test.sh runs `--dist loadfile`): a
module and its module-scoped servers stay in one process, as with loadfile, and the modules
of LOADED run one after another in one process, never beside each other.

Why: they load the machine or need it lightly loaded, and are fine beside any other module but
not beside each other: the benchmark smoke test saturates both cores with wrk for ~30 s, and
meanwhile the test Virtuoso's 10 s MaxQueryExecutionTime stopped the `ADD` of the real build's
59K-triple graph that test_remote_competency publishes (SR171, 37 errors in one CI run); the
short load test drives concurrent clients against a 4 s query limit.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

LOADED = frozenset({
    "tests/test_bench_smoke.py", "tests/test_load_short.py", "tests/test_remote_competency.py",
})


class FileScheduling(LoadScopeScheduling):
    """loadfile's scope (the module), but one scope for all of LOADED."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return "loaded modules" if module in LOADED else module


class SchedulingPlugin:
    @staticmethod
    def pytest_xdist_make_scheduler(config: object, log: object) -> FileScheduling | None:
        if getattr(config, "option", None) is not None and config.option.dist == "loadfile":
            return FileScheduling(config, log)
        return None

"""Gauntlet's pytest plugin (entry point `pytest11: gauntlet`): wires the hooks of the feature
modules beside it (settings, corpus, fuzz_marker, differential, summary). Importing it imports
neither torch nor tensorflow; they load inside items and fixtures, when a test uses them."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from fuzz.pytest_plugin.corpus import BugFile, corpus_items, is_bug_file
from fuzz.pytest_plugin.differential import Differential
from fuzz.pytest_plugin.fuzz_marker import MARKER, FuzzOutcome, check, run_marked
from fuzz.pytest_plugin.settings import SETTINGS, add_options, read_settings
from fuzz.pytest_plugin.summary import LOG, SessionLog

__all__ = ["pytest_addoption", "pytest_configure"]

RUNNERS = pytest.StashKey[dict[tuple[str, ...], Any]]()
CI_PROFILE = "gauntlet-ci"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    parser.addini("gauntlet_dir", "where fuzz campaigns and reproducers are kept (relative to the rootdir)",
                  default=".gauntlet")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(budget=, ops=, backends=, seed=, max_nodes=, dtypes=, expect_bugs=): run a bounded "
        "Gauntlet differential campaign; its unique bugs fail the test with their reproducers")
    settings = read_settings(config)
    config.stash[SETTINGS] = settings
    config.stash[LOG] = SessionLog(seed=settings.seed)
    config.stash[RUNNERS] = {}
    from hypothesis import settings as hypothesis_settings

    hypothesis_settings.register_profile(CI_PROFILE, derandomize=True, deadline=None, print_blob=True)
    if settings.ci:
        hypothesis_settings.load_profile(CI_PROFILE)


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash[SETTINGS]
    how = "given" if settings.seed_given else ("ci profile" if settings.ci else "random")
    return (f"gauntlet: seed {settings.seed} ({how}; rerun with --gauntlet-seed {settings.seed})"
            + ("; ci profile: derandomized, no deadlines" if settings.ci else ""))


def _out_root(config: pytest.Config) -> Path:
    root = Path(str(config.getini("gauntlet_dir")))
    return (root if root.is_absolute() else config.rootpath / root) / "pytest"


# --- the regression corpus -----------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_bug_file(file_path):
        collector: pytest.Collector = BugFile.from_parent(parent, path=file_path)
        return collector
    return None


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection sees the list
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[SETTINGS]
    directories = list(settings.corpora)
    # The default corpus joins full runs only, not a run of named tests.
    if settings.default_corpus is not None and config.args_source != pytest.Config.ArgsSource.ARGS:
        directories.append(settings.default_corpus)
    known = {item.path.resolve() for item in items if is_bug_file(item.path)}
    for directory in dict.fromkeys(directories):
        for item in corpus_items(session, directory, known):
            known.add(item.path.resolve())
            items.append(item)


# --- fuzz marker -------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if item.get_closest_marker(MARKER) is None:
        return (yield)
    outcome = run_marked(item, _out_root(item.config))
    result = yield
    check(item, outcome)
    return result


@pytest.fixture
def gauntlet_fuzz(request: pytest.FixtureRequest) -> FuzzOutcome:
    """The campaign of a test marked `@pytest.mark.gauntlet_fuzz(...)`, run before the test body
    (`.bugs`, `.tests`, `.directory`)."""
    item = request.node
    if not isinstance(item, pytest.Item) or item.get_closest_marker(MARKER) is None:
        raise pytest.UsageError(f"the gauntlet_fuzz fixture needs @pytest.mark.{MARKER}(...) on the test")
    return run_marked(item, _out_root(request.config))


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def differential(request: pytest.FixtureRequest) -> Differential:
    """`differential.assert_backends_agree(graph_or_fn, inputs, backends=None)`."""
    config = request.config
    settings = config.stash[SETTINGS]
    record = config.stash[LOG].record(request.node.nodeid, "differential")
    record.seed = settings.seed
    out = _out_root(config) / "differential" / request.node.name
    return Differential(record, out, config.stash[RUNNERS], settings.backends, settings.seed)


class Robustness:
    """`robustness.assert_robust(model, inputs, labels, eps=..., ...)`: the verifier's
    `verify.api.assert_robust`, recorded in Gauntlet's summary."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._record = request.config.stash[LOG].record(request.node.nodeid, "robustness")

    def assert_robust(self, model: Any, inputs: Any, labels: Any = None, **options: Any) -> Any:
        from verify.api import assert_robust

        result = assert_robust(model, inputs, labels, **options)
        self._record.graphs += len(getattr(result, "samples", ()) or ())
        return result


@pytest.fixture
def robustness(request: pytest.FixtureRequest) -> Robustness:
    return Robustness(request)


# --- reporting ---------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    record = item.config.stash[LOG].tests.get(item.nodeid)
    if record is not None and (call.when == "call" or report.outcome != "passed"):
        record.seconds += call.duration
        record.outcome = "xfailed" if hasattr(report, "wasxfail") and report.outcome == "skipped" else report.outcome
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    log = config.stash.get(LOG, None)
    if log is None or not log.tests:
        return
    terminalreporter.write_sep("=", "Gauntlet")
    for line in log.summary_lines():
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    for runner in config.stash.get(RUNNERS, {}).values():
        runner.close()
    settings = config.stash.get(SETTINGS, None)
    if settings is not None and settings.report is not None:
        config.stash[LOG].write(settings.report)

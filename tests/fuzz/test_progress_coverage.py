"""Progress lines for people, and the coverage steering arithmetic (pure parts)."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from fuzz.coverage import LineTracker, Steering, line_id, lines_by_package, package_files, packages_for
from fuzz.progress import PlainDisplay, Snapshot, fmt_duration


def snapshot(tests: int = 10) -> Snapshot:
    return Snapshot(elapsed=3725, remaining=60, tests=tests, max_tests=None, tests_per_s=2.5, valid_pct=96.0,
                    bugs_by_symptom={"abort": 1, "wrong_result": 2}, ops_covered=40, ops_total=150)


def test_a_status_line_says_what_a_person_wants_to_know() -> None:
    line = snapshot().line()
    assert line.startswith("[1h02m05s, 1m00s left] 10 tests, 2.5 tests/s, 96% valid, 3 unique bug(s)")
    assert "(abort 1, wrong_result 2)" in line and "40/150 operators" in line
    assert fmt_duration(59) == "0m59s" and fmt_duration(None) == "-"


def test_plain_display_prints_at_most_every_interval_and_once_at_the_end() -> None:
    out = io.StringIO()
    display = PlainDisplay(out, every_s=3600)
    for n in range(5):
        display.update(snapshot(n))
    display.log("new bug candidate B0001")
    display.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "B0001" in lines[1] and " 4 tests" in lines[2]


def test_steering_favours_operators_that_reach_new_lines_and_starves_none() -> None:
    s = Steering(["conv2d", "exp", "add"], steer=True)
    assert s.add(range(100), ()) == list(range(100))  # set-up lines: counted, credited to nobody
    for k in range(10):
        s.add(range(1000 + 50 * k, 1050 + 50 * k), ["conv2d"])  # new lines every time
        s.add([1, 2, 3], ["exp"])  # nothing new
    weights = dict(s.weights())
    assert weights["conv2d"] == 5.0 and weights["exp"] == 1.0
    assert weights["add"] == 5.0  # never tried: treated as promising
    assert s.lines == 100 + 500


def test_measuring_alone_never_changes_the_operator_choice() -> None:
    s = Steering(["exp", "add"], steer=False)
    s.add(range(10), ["exp"])
    assert s.weights() == ()


@given(st.text(min_size=1, max_size=50), st.integers(0, 10**6))
def test_line_ids_are_stable_and_keep_the_line(path: str, line: int) -> None:
    assert line_id(path, line) == line_id(path, line)
    assert line_id(path, line) & 0xFFFFFF == line & 0xFFFFFF


def test_packages_follow_the_backends_lowerings() -> None:
    assert "torch._inductor" in packages_for(["torch"]) and not packages_for(["onnx"])
    assert any(p.startswith("tensorflow") for p in packages_for(["tensorflow", "onnx"]))


def test_steering_weights_the_options_of_choice_attributes() -> None:
    s = Steering(["gelu"], steer=True, choices={("gelu", "approximate"): 2})
    for k in range(10):
        s.add(range(100 * k, 100 * k + 10), ["gelu", "gelu.approximate=1"])  # new lines with tanh
        s.add([0], ["gelu", "gelu.approximate=0"])
    s.weights()
    assert s.choice_weights() == (("gelu", "approximate", (1.0, 5.0)),)


def test_choice_weights_steer_the_generated_attributes() -> None:
    from fuzz.coverage import choice_keys
    from generators.graph_gen import GenOptions, GraphGenerator
    from generators.ops import catalog

    cat = catalog()
    only_tanh = GenOptions(max_nodes=3, ops=("gelu", "add"), choice_weights=(("gelu", "approximate", (0.0, 1.0)),))
    graphs = [GraphGenerator(cat, only_tanh).generate(seed) for seed in range(20)]
    values = {n.attr_map["approximate"] for g in graphs for n in g.nodes if n.op == "gelu"}
    assert values == {"tanh"}
    keys = {k for g in graphs for k in choice_keys(g, cat)}
    assert "gelu.approximate=1" in keys and "gelu.approximate=0" not in keys


def test_covered_lines_are_split_by_the_package_they_lie_in() -> None:
    import json

    tracker = LineTracker(["json", "email"])
    try:
        json.loads(json.dumps({"a": [1, 2.5, None]}, indent=1))
        ids, _ = tracker.after_test(["op"])
    finally:
        tracker.cov.stop()
    counts = lines_by_package(ids, ["json", "email", "torch._inductor"])
    assert counts["json"] > 10 and counts["email"] == 0 and counts["torch._inductor"] == 0
    assert sum(counts.values()) == len(set(ids))  # every measured line belongs to a measured package


def test_package_files_lists_an_installed_packages_sources() -> None:
    files = package_files("torch._inductor")
    assert len(files) > 100 and all(f.suffix == ".py" and "_inductor" in f.parts for f in files)
    assert package_files("no_such_package.sub") == [] and package_files("json.decoder")[0].name == "decoder.py"

"""The campaign report page: structure (balanced tags, one SVG per plot, every bug, the matrix),
escaping of everything from the report, self-containment, robustness to empty or partial reports."""

from __future__ import annotations

import copy
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.report_html import _nice_ticks, render_html, write_html
from generators.errors import GauntletError

# Any text, with markup characters drawn often enough that most examples contain some.
MARKUPISH = st.lists(st.text() | st.sampled_from(["<", ">", "&", '"', "'", "<script>", "&amp;"])).map("".join)
EVIL = "<script>alert(1)</script> & \"double\" 'single'"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}
# Every element the page may contain; anything else means report text leaked in as markup.
ALLOWED = VOID | {
    "html", "head", "title", "style", "body", "main", "header", "section", "article", "h1", "h2", "h3",
    "p", "div", "span", "small", "strong", "i", "code", "pre", "a", "table", "thead", "tbody", "tr",
    "th", "td", "dl", "dt", "dd", "details", "summary",
    "svg", "line", "polyline", "path", "rect", "circle", "text",
}  # fmt: skip


class Checker(HTMLParser):
    """Checks that tags balance and collects tags, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [], checker.errors[:5]
    assert checker.stack == [], f"unclosed: {checker.stack}"
    assert {tag for tag, _ in checker.tags} <= ALLOWED
    return checker


def make_bug(i: int, **overrides: Any) -> dict[str, Any]:
    bug = {
        "id": f"B{i:04d}",
        "signature": f"{i:08x}deadbeef",
        "symptom": "wrong_result" if i % 2 else "segfault",
        "stage": "compare" if i % 2 else "run",
        "backends": ["torch_compile"],
        "ops": ["bmm", "exp"],
        "dtypes": ["int32"],
        "duplicates": 3 * i,
        "first_seen": "2025-01-02T03:04:05Z",
        "first_seed": 17 + i,
        "message": f"torch_compile: max abs error 4.0 (bug {i})",
        "detail": 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: a < b && c > d',
        "reduction": {"nodes_before": 9, "nodes_after": 1, "checks": 42, "complete": True},
        "dir": f"bugs/B{i:04d}",
        "repro": f"bugs/B{i:04d}/repro.py",
        "issue": f"bugs/B{i:04d}/issue.md",
        "repro_source": "import torch\nx = torch.ones(2) < 3\nprint(x)\n",
    }
    bug.update(overrides)
    return bug


def make_report(samples: int = 12, bugs: int = 3, coverage: bool = False) -> dict[str, Any]:
    """A report as a 2-minute campaign on two backends would write it."""
    ops = [{"op": f"op{k}", "tests": (k * 7) % 50, "bug_tests": 1 if k % 17 == 3 else 0} for k in range(150)]
    return {
        "schema": 1,
        "campaign": {
            "out": "runs/x",
            "status": "finished",
            "started": "2025-01-02T03:00:00Z",
            "updated": "2025-01-02T03:02:00Z",
            "elapsed_s": 123.4,
            "seed": 0,
            "backends": ["torch_eager", "torch_compile"],
            "versions": {"torch_eager": "2.13.0", "torch_compile": "2.13.0"},
            "options": {"max_nodes": 10, "dtypes": ["float32", "int32"]},
            "command": "gauntlet fuzz --out runs/x --time 120",
            "workers": 2,
            "ray": None,
        },
        "totals": {
            "tests": 1234,
            "verdicts": {
                "pass": 1000,
                "bug": 3,
                "rejected": 10,
                "skipped": 1,
                "unstable": 2,
                "reference_suspect": 0,
                "no_stable_inputs": 40,
            },  # fmt: skip
            "valid_pct": 96.1,
            "tests_per_s": 10.3,
            "unique_bugs": bugs,
            "duplicates": 5,
            "ops_covered": 140,
            "ops_total": 150,
            "internal_failures": 1,
        },
        "timeline": [
            {
                "t": 10.0 * (k + 1),
                "tests": 100 * (k + 1),
                "unique_bugs": min(k // 3, bugs),
                "bug_tests": k,
                "tests_per_s": 9.5 + (k % 3) * 0.4,
                "ops_covered": min(90 + 5 * k, 140),
                "coverage_lines": 5000 + 100 * k if coverage else None,
            }  # fmt: skip
            for k in range(samples)
        ],
        "operators": ops,
        "matrix": {
            "backends": ["torch_eager", "torch_compile"],
            "symptoms": ["segfault", "wrong_result"],
            "counts": [[0, 0], [1, 2]],
        },
        "bugs": [make_bug(i + 1) for i in range(bugs)],
        "internal_failures": [
            {"seed": 3, "symptom": "error", "stage": "generate", "detail": "KeyError: 'x'"}
        ],
    }


def plot_count(page: str) -> int:
    return page.count('<div class="plot"><svg')


def test_realistic_report_renders_every_section() -> None:
    report = make_report()
    page = render_html(report)
    checker = parse(page)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert plot_count(page) == 3  # tests+bugs, throughput, operators covered; no coverage samples
    assert "Line coverage" not in page
    for bug in report["bugs"]:
        assert f'id="bug-{bug["id"]}"' in page and f'href="#bug-{bug["id"]}"' in page
        assert f'href="{bug["repro"]}"' in page and f'href="{bug["issue"]}"' in page
    assert "9 &rarr; 1 nodes (42 checks, complete)" in page
    assert "<details><summary>Reproducer source</summary>" in page
    # The matrix: a heat table with each backend row and symptom column and the totals.
    matrix = page[page.index('<table class="heat">') :]
    matrix = matrix[: matrix.index("</table>")]
    assert all(name in matrix for name in ("torch_eager", "torch_compile", "segfault", "wrong_result"))
    assert '<td class="n"><strong>3</strong></td>' in matrix  # torch_compile's row total
    # Header figures and the operator grid (one square with a tooltip per catalog operator).
    text = " ".join(checker.text)
    assert "1,234" in text and "10.30" in text and "96.1%" in text and "2 min 03 s" in text
    assert sum(1 for tag, _ in checker.tags if tag == "rect") >= 150
    assert "op3: 21 tests, 1 bug tests" in text
    assert "Internal failures (1)" in text and "KeyError: 'x'" in text


def test_plots_have_axes_ticks_and_labels() -> None:
    page = render_html(make_report(samples=10, coverage=True))
    parse(page)
    assert plot_count(page) == 4
    assert page.count("campaign time (s)") == 4  # 100 s of samples: the axis stays in seconds
    assert "campaign time (min)" in render_html(make_report(samples=30))
    charts = re.findall(r'<div class="plot">(.*?)</svg>', page)
    for chart in charts:
        assert "<polyline" in chart and chart.count("<text") >= 8  # title, tick labels, axis labels
    assert ">100<" in charts[0]  # the last time tick
    first = charts[0]
    assert "unique bugs" in first and "tests" in first  # the bug count has its own right axis


def test_long_campaign_switches_units_and_thins_points() -> None:
    report = make_report(samples=20_000)  # 20,000 samples 10 s apart: 55 h
    page = render_html(report)
    parse(page)
    assert "campaign time (h)" in page
    vertices = [len(p.split()) for p in re.findall(r'<polyline points="([^"]*)"', page)]
    assert max(vertices) <= 2 * 620  # ~600 samples kept; a staircase draws two vertices per sample
    assert len(page) < 600_000


def test_report_text_is_escaped_everywhere() -> None:
    report = make_report()
    report["campaign"]["out"] = EVIL
    report["campaign"]["command"] = EVIL
    report["campaign"]["backends"].append(EVIL)
    report["campaign"]["options"][EVIL] = EVIL
    report["operators"][0]["op"] = EVIL
    report["matrix"]["symptoms"][0] = EVIL
    report["bugs"][0].update(message=EVIL, detail=EVIL, repro_source=EVIL, ops=[EVIL], id=EVIL, stage=EVIL)
    report["bugs"][1].update(repro=f"bugs/{EVIL}.py", symptom=EVIL)
    report["internal_failures"][0]["detail"] = EVIL
    page = render_html(report)
    checker = parse(page)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;double&quot; &#x27;single&#x27;" in page
    assert sum(EVIL in chunk for chunk in checker.text) >= 8  # and it reads back as the same text
    assert all("<" not in (value or "") for _, attrs in checker.tags for value in attrs.values())


def test_page_is_self_contained() -> None:
    report = make_report(coverage=True)
    report["bugs"][0]["repro"] = "https://evil.example/x.py"
    report["bugs"][1]["repro"] = "//cdn.example/x.py"
    report["bugs"][2]["issue"] = "javascript:alert(1)"
    page = render_html(report)
    checker = parse(page)
    for forbidden in ("<link", "<script", "<img", "@import", "url("):
        assert forbidden not in page.lower()
    hrefs = [attrs["href"] or "" for tag, attrs in checker.tags if tag == "a"]
    assert hrefs and all(not re.match(r"^([a-z]+:|//|/)", href) for href in hrefs)
    assert "https://evil.example/x.py" in page  # still shown, as text, not as a link
    clean = render_html(make_report(coverage=True)).lower()
    assert "http://" not in clean and "https://" not in clean and "//cdn" not in clean


@settings(max_examples=150, deadline=None)
@given(message=MARKUPISH, detail=MARKUPISH, op=MARKUPISH)
def test_arbitrary_text_never_becomes_markup(message: str, detail: str, op: str) -> None:
    # Guillemets make the field findable: "<" alone is in every page, "«<»" only if unescaped.
    # One marker per field, so one field's escaped text can never be another field's raw text.
    message, detail, op = f"«m{message}»", f"«d{detail}»", f"«o{op}»"
    report = make_report(samples=2, bugs=1)
    report["bugs"][0].update(message=message, detail=detail, repro_source=detail)
    report["operators"][0]["op"] = op
    report["internal_failures"][0]["detail"] = detail
    page = render_html(report)
    checker = parse(page)
    for raw in (message, detail, op):
        if "<" in raw or "&" in raw:
            assert raw not in page
    text = "".join(checker.text)
    assert message in text and detail in text and op in text


@pytest.mark.parametrize(
    "report",
    [
        {"schema": 1},
        {},
        {
            "schema": 1,
            "campaign": {"status": "running"},
            "totals": {"tests": 0, "verdicts": {}},
            "timeline": [],
            "operators": [],
            "matrix": {"backends": [], "symptoms": [], "counts": []},
            "bugs": [],
            "internal_failures": [],
        },  # fmt: skip
    ],
    ids=["bare", "no-schema", "zero-tests"],
)
def test_empty_reports_render(report: dict[str, Any]) -> None:
    page = render_html(report)
    checker = parse(page)
    text = " ".join(checker.text)
    assert "No bugs found." in text and "no samples yet" in text and "No verdicts yet." in text
    assert plot_count(page) == 3 and "Internal failures" not in text


def test_one_sample_and_partial_fields() -> None:
    report = make_report(samples=1, bugs=2)
    report["bugs"][0] = {"id": "B0001"}  # everything optional missing
    report["bugs"][1].update(reduction=None, repro=None, issue=None, repro_source=None, duplicates=None)
    report["campaign"]["elapsed_s"] = float("nan")
    report["totals"].pop("valid_pct")
    report["matrix"]["counts"] = [[1]]  # ragged: missing cells count as 0
    del report["operators"][5]["tests"]
    page = render_html(report)
    checker = parse(page)
    assert sum(1 for tag, _ in checker.tags if tag == "circle") >= 3  # the single sample is a visible dot
    text = " ".join(checker.text)
    assert "B0001" in text and "not reduced" in text and not re.search(r"\bnan\b", text, re.I)
    assert "Reproducer source" not in text
    card = page[page.index('id="bug-B0002"') :]
    assert "repro.py" not in card[: card.index("</article>")]


def test_operator_grid_colours_and_untested_list() -> None:
    report = make_report()
    page = render_html(report)
    parse(page)
    grid = page[page.index('aria-label="operator coverage"') :]
    grid = grid[: grid.index("</svg>")]
    untested = [op["op"] for op in report["operators"] if op["tests"] == 0]
    with_bugs = [op["op"] for op in report["operators"] if op["bug_tests"]]
    assert grid.count('fill="#c9ced6"') == len(untested)
    assert grid.count('fill="#c8312c"') == len(with_bugs)
    assert f"Untested operators ({len(untested)})" in page
    assert f"{sum(1 for op in report['operators'] if op['tests'])} of 150 operators tested" in page


def test_round_trips_through_json_and_writes_a_file(tmp_path: Path) -> None:
    report = json.loads(json.dumps(make_report(coverage=True)))
    path = tmp_path / "report.html"
    write_html(report, path)
    assert path.read_text(encoding="utf-8") == render_html(report)
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(GauntletError, match="cannot write"):
        write_html(report, tmp_path / "missing" / "report.html")


def test_rejects_other_schemas_and_non_objects() -> None:
    with pytest.raises(GauntletError, match="schema 2"):
        render_html({"schema": 2})
    with pytest.raises(GauntletError, match="JSON object"):
        render_html([1, 2])  # type: ignore[arg-type]
    report = make_report()
    before = copy.deepcopy(report)
    render_html(report)
    assert report == before  # rendering never mutates the report


@given(st.floats(min_value=1e-6, max_value=1e12), st.booleans())
def test_ticks_cover_the_range_with_few_round_steps(hi: float, whole: bool) -> None:
    ticks = _nice_ticks(hi, whole=whole)
    assert ticks[0] == 0 and ticks[-1] >= hi * (1 - 1e-9)
    assert 2 <= len(ticks) <= (7 if not whole or hi >= 5 else math.ceil(hi) + 2)
    step = ticks[1]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5, 3))

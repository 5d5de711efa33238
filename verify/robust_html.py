"""The robustness report page: report.json (schema 1) -> one self-contained HTML page: inline
CSS, an inline SVG histogram of certified radii, counterexample images as PNG data URIs next
to the originals. Pure rendering: reads no files, links nothing external, escapes every string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from generators.png import data_uri
from generators.reports import as_list, as_map, as_number, escape

__all__ = ["render_html"]

_GREEN, _RED, _AMBER, _GREY, _BLUE = "#2e9d4a", "#c8312c", "#e07b00", "#8b95a5", "#1f6fb4"
_STATUS_COLOURS = {
    "verified": _GREEN, "robust": _GREEN, "counterexample": _RED, "adversarial": _RED,
    "unknown": _AMBER, "misclassified": _GREY,
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9;margin:0}
main{max-width:1100px;margin:0 auto;padding:20px 24px 48px}h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
h3{font-size:15px;margin:0}code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.muted{color:#667085}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;color:#fff;font-size:12px;font-weight:600;vertical-align:middle}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.tile{background:#fff;border:1px solid #e1e5ea;border-radius:6px;padding:8px 14px;min-width:110px}
.tile .v{font-size:22px;font-weight:650}.tile .k{font-size:12px;color:#667085}
.tile.alert .v{color:#c8312c}
.plot,.card,.panel{background:#fff;border:1px solid #e1e5ea;border-radius:6px;padding:10px 12px}
svg{display:block;width:100%;height:auto;max-width:640px}table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #e1e5ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.card{margin:12px 0}.card dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
.card dt{color:#667085}.card dd{margin:0}
.pair{display:flex;flex-wrap:wrap;gap:16px;margin:8px 0}.pair figure{margin:0;text-align:center}
.pair img{width:112px;height:auto;image-rendering:pixelated;border:1px solid #d0d5dd;background:#fff}
.pair figcaption{font-size:12px;color:#667085}
summary{cursor:pointer;color:#1f6fb4}
"""










def _fmt(value: Any, spec: str = ".4g") -> str:
    number = as_number(value)
    return "-" if number is None else format(number, spec)


def _badge(status: Any) -> str:
    colour = _STATUS_COLOURS.get(str(status), _BLUE)
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _pixels(flat: np.ndarray, image: Mapping[str, Any], lo: float, hi: float) -> np.ndarray:
    c, h, w = int(image["channels"]), int(image["height"]), int(image["width"])
    planes = flat.reshape(c, h, w)
    scaled = np.clip((planes - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    scaled = np.nan_to_num(scaled, nan=0.0)
    values = np.round(scaled * 255).astype(np.uint8)
    # Three channels are RGB; any other count shows its first channel in grey.
    return np.moveaxis(values, 0, -1) if c == 3 else values[0]


def _images(original: Any, changed: Any, image: Mapping[str, Any], domain: Any) -> str:
    """The sample, the counterexample and their difference as three pixelated images."""
    try:
        size = int(image["channels"]) * int(image["height"]) * int(image["width"])
    except (KeyError, TypeError, ValueError):
        return ""
    a = np.array([as_number(v) if as_number(v) is not None else np.nan for v in as_list(original)], dtype=np.float64)
    b = np.array([as_number(v) if as_number(v) is not None else np.nan for v in as_list(changed)], dtype=np.float64)
    if a.size != size or b.size != size:
        return ""
    bounds = as_list(domain)
    if len(bounds) == 2 and as_number(bounds[0]) is not None and as_number(bounds[1]) is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
    else:
        both = np.concatenate([a, b])
        lo, hi = float(np.nanmin(both)), float(np.nanmax(both))
    diff = np.abs(b - a)
    top = float(np.nanmax(diff)) if diff.size else 0.0
    figures = [
        (_pixels(a, image, lo, hi), "original"),
        (_pixels(b, image, lo, hi), "counterexample"),
        (_pixels(diff, image, 0.0, top if top > 0 else 1.0), f"|difference| (max {top:.3g})"),
    ]
    parts = [
        f'<figure><img src="{data_uri(p)}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
        for p, caption in figures
    ]
    return f'<div class="pair">{"".join(parts)}</div>'


# --- histogram --------------------------------------------------------------------------------


def _nice_step(hi: float, count: int) -> float:
    raw = hi / count
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw))


def _histogram(radii: list[float], norm: str) -> str:
    """Bars of how many samples have their certified radius in each bin, with axes."""
    if not radii:
        return '<p class="muted">No certified radii.</p>'
    top = max(radii)
    width_bin = _nice_step(top, 10) if top > 0 else 1.0
    bins = int(top / width_bin) + 1  # the largest radius falls in the last bin, even on an edge
    counts = [0] * bins
    for r in radii:
        counts[min(int(r / width_bin), bins - 1)] += 1
    w, h, left, top_px = 600.0, 240.0, 48.0, 16.0
    pw, ph = w - left - 16.0, h - top_px - 44.0
    peak = max(counts)
    step = max(1, math.ceil(peak / 5))
    y_ticks = list(range(0, peak + step, step))
    y_hi = y_ticks[-1] or 1
    bar_w = pw / bins
    out = [f'<svg viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="certified radii">']
    for t in y_ticks:
        y = top_px + ph - ph * t / y_hi
        out.append(f'<line x1="{left:.0f}" x2="{left + pw:.0f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e9ee"/>')
        out.append(f'<text x="{left - 6:.0f}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#4a5261">{t}</text>')
    for i, n in enumerate(counts):
        x = left + i * bar_w
        bh = ph * n / y_hi
        lo_edge, hi_edge = i * width_bin, (i + 1) * width_bin
        out.append(
            f'<rect x="{x + 1:.1f}" y="{top_px + ph - bh:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{bh:.1f}" '
            f'fill="{_GREEN}"><title>{n} samples with radius in [{lo_edge:.4g}, {hi_edge:.4g})</title></rect>'
        )
    label_every = max(1, math.ceil(bins / 8))
    for i in range(0, bins + 1, label_every):
        x = left + i * bar_w
        out.append(f'<text x="{x:.1f}" y="{top_px + ph + 16:.1f}" font-size="11" text-anchor="middle" '
                   f'fill="#4a5261">{i * width_bin:.4g}</text>')
    out.append(f'<path d="M{left:.0f},{top_px:.0f}V{top_px + ph:.0f}H{left + pw:.0f}" fill="none" stroke="#4a5261"/>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{h - 8:.0f}" font-size="12" text-anchor="middle" '
               f'fill="#4a5261">certified {escape(norm)} radius (lower bound)</text>')
    out.append("</svg>")
    return "".join(out)


# --- sections ---------------------------------------------------------------------------------


def _tile(label: str, value: Any, alert: bool = False) -> str:
    cls = "tile alert" if alert else "tile"
    return f'<div class="{cls}"><div class="v">{escape(value)}</div><div class="k">{escape(label)}</div></div>'


def _header(report: Mapping[str, Any]) -> str:
    model, prop, totals = as_map(report.get("model")), as_map(report.get("property")), as_map(report.get("totals"))
    seconds = as_number(totals.get("seconds"))
    tiles = [
        _tile("samples", totals.get("samples", 0)),
        _tile("verified", totals.get("verified", 0)),
        _tile("counterexample", totals.get("counterexample", 0), alert=bool(totals.get("counterexample"))),
        _tile("unknown", totals.get("unknown", 0)),
        _tile("misclassified", totals.get("misclassified", 0), alert=bool(totals.get("misclassified"))),
        _tile("time", "-" if seconds is None else f"{seconds:.1f} s"),
    ]
    domain = as_list(prop.get("domain"))
    facts = [
        ("model", f"<code>{escape(model.get('description'))}</code>"),
        ("input / output", f"{escape(model.get('input_shape'))} &rarr; {escape(model.get('output_shape'))}"),
        ("property", f"{escape(prop.get('norm'))} ball, eps {_fmt(prop.get('eps'), 'g')}"
         + (f", domain [{_fmt(domain[0], 'g')}, {_fmt(domain[1], 'g')}]" if len(domain) == 2 else "")
         + (f", margin {_fmt(prop.get('margin'), 'g')}" if as_number(prop.get("margin")) else "")),
        ("timeout per sample", f"{_fmt(prop.get('timeout_per_sample'), 'g')} s"),
        ("manipulations", ", ".join(f"<code>{escape(as_map(m).get('spec'))}</code>" for m in as_list(report.get("manipulations"))) or "-"),
        ("samples file", f"<code>{escape(report.get('data'))}</code>"),
        ("created", escape(report.get("created"))),
    ]
    if report.get("command"):
        facts.append(("command", f"<code>{escape(report.get('command'))}</code>"))
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f"<header><h1>Robustness of <code>{escape(model.get('description'))}</code></h1>"
        f'<div class="tiles">{"".join(tiles)}</div><div class="card"><dl>{dl}</dl></div></header>'
    )


def _radius_section(report: Mapping[str, Any]) -> str:
    if report.get("radius") is not True:
        return ""
    radii = [
        r for r in (as_number(as_map(as_map(s).get("radius")).get("lower")) for s in as_list(report.get("samples"))) if r is not None
    ]
    norm = as_map(report.get("property")).get("norm", "")
    note = ""
    if radii:
        note = (f"<p>{len(radii)} samples; median certified radius {float(np.median(radii)):.4g}, "
                f"min {min(radii):.4g}, max {max(radii):.4g}.</p>")
    return f'<section><h2>Certified radii</h2><div class="plot">{note}{_histogram(radii, str(norm))}</div></section>'


def _radius_text(radius: Mapping[str, Any]) -> str:
    if not radius:
        return "-"
    upper = radius.get("upper")
    return f"[{_fmt(radius.get('lower'))}, {'&infin;' if upper is None else _fmt(upper)}]"


def _table(samples: list[Mapping[str, Any]], with_radius: bool) -> str:
    head = "<th>sample</th><th>label</th><th>predicted</th><th>status</th><th>time</th>"
    head += "<th>radius bracket</th>" if with_radius else ""
    head += "<th>evidence</th>"
    rows = []
    for s in samples:
        index = s.get("index")
        link = f'<a href="#sample-{escape(index)}">{escape(index)}</a>' if _has_example(s) else escape(index)
        cells = (
            f'<td class="n">{link}</td><td class="n">{escape(s.get("label"))}</td><td class="n">{escape(s.get("predicted"))}</td>'
            f'<td>{_badge(s.get("status"))}</td><td class="n">{_fmt(s.get("seconds"), ".2f")} s</td>'
        )
        if with_radius:
            cells += f'<td class="n">{_radius_text(as_map(s.get("radius")))}</td>'
        cells += f"<td>{escape(s.get('summary'), '')}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return f"<section><h2>Samples</h2><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"


def _has_example(sample: Mapping[str, Any]) -> bool:
    if as_map(as_map(sample.get("ball")).get("counterexample")):
        return True
    return any(as_map(as_map(m).get("example")) for m in as_list(sample.get("manipulations")))


def _outputs(y: Any) -> str:
    values = [_fmt(v) for v in as_list(y)]
    shown = ", ".join(values[:20]) + (", ..." if len(values) > 20 else "")
    return f"<code>[{escape(shown)}]</code>"


def _cards(report: Mapping[str, Any]) -> str:
    image = as_map(report.get("image"))
    domain = as_map(report.get("property")).get("domain")
    cards = []
    for s in (as_map(s) for s in as_list(report.get("samples"))):
        examples = []
        cex = as_map(as_map(s.get("ball")).get("counterexample"))
        if cex:
            examples.append((f"eps-ball counterexample by {as_map(s.get('ball')).get('method')} at distance "
                             f"{_fmt(cex.get('distance'))}", cex))
        for m in (as_map(m) for m in as_list(s.get("manipulations"))):
            example = as_map(m.get("example"))
            if example:
                examples.append((f"{m.get('spec')}: {m.get('message')}", example))
        if not examples:
            continue
        parts = [f'<article class="card" id="sample-{escape(s.get("index"))}"><h3>Sample {escape(s.get("index"))} '
                 f'(label {escape(s.get("label"))}) {_badge(s.get("status"))}</h3>',
                 f"<p class=\"muted\">original outputs {_outputs(s.get('output'))}</p>"]
        for title, ex in examples:
            parts.append(f"<h4>{escape(title)}</h4>")
            parts.append(f"<p>predicted class {escape(ex.get('predicted'))}; outputs {_outputs(ex.get('y'))}</p>")
            if image:
                parts.append(_images(s.get("x"), ex.get("x"), image, domain))
            else:
                parts.append(f"<details><summary>input values</summary><p>{_outputs(ex.get('x'))}</p></details>")
        parts.append("</article>")
        cards.append("".join(parts))
    if not cards:
        return ""
    note = ""
    if image.get("guessed"):
        note = '<p class="muted">The flat input is shown as a square image.</p>'
    return f"<section><h2>Counterexamples</h2>{note}{''.join(cards)}</section>"


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page for a schema-1 robustness report dict; missing fields render as '-'."""
    samples = [as_map(s) for s in as_list(report.get("samples"))]
    body = [
        _header(report),
        _radius_section(report),
        _table(samples, report.get("radius") is True),
        _cards(report),
    ]
    title = f"Gauntlet robustness: {as_map(report.get('model')).get('description', 'model')}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in body if part)
        + '\n<p class="muted"><small>Generated by gauntlet verify from report.json (schema 1).</small></p>\n'
        "</main>\n</body>\n</html>\n"
    )

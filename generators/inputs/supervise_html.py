"""The supervisor report page: report.json (schema 1) -> one self-contained HTML page (inline
CSS, an inline SVG ROC plot per category, the AUC table in colour, sample thumbnails as PNG data
URIs), plus the image helpers it shares with `gauntlet inputs`. Reads no files; escapes every string."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from generators.inputs.result import HardInputs
from generators.png import data_uri
from generators.reports import as_list, as_map, as_number, escape

__all__ = ["image_grid", "image_layout", "render_html", "thumbnails", "to_pixels"]

_PALETTE = ("#1f6fb4", "#c8312c", "#2e9d4a", "#e07b00", "#7b4fb8", "#008b8b", "#b8336a", "#6b7a00", "#4a5261")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9;margin:0}
main{max-width:1100px;margin:0 auto;padding:20px 24px 48px}h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px}code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.muted{color:#667085}.card{background:#fff;border:1px solid #e1e5ea;border-radius:6px;padding:10px 12px;margin:12px 0}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:4px 0}.card dt{color:#667085}.card dd{margin:0}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #e1e5ea;padding:4px 10px;text-align:left}
th{background:#f1f3f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:14px}.plot{background:#fff;border:1px solid #e1e5ea;border-radius:6px;padding:10px}
svg{display:block;width:340px;height:auto}.legend{font-size:12px;margin:6px 0 0;padding:0;list-style:none}
.legend span{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:6px}
.thumbs{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0 14px}
.thumbs img{width:64px;height:64px;image-rendering:pixelated;border:1px solid #d0d5dd;background:#fff}
"""










# --- images -----------------------------------------------------------------------------------


def image_layout(shape: Sequence[int]) -> str | None:
    """"CHW", "HWC" or "HW" when one sample of this shape looks like an image, else None."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 2 and min(dims) >= 4:
        return "HW"
    if len(dims) == 3 and dims[0] in (1, 3) and min(dims[1:]) >= 4:
        return "CHW"
    if len(dims) == 3 and dims[2] in (1, 3) and min(dims[:2]) >= 4:
        return "HWC"
    return None


def to_pixels(sample: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """One image sample as uint8 [H, W] (grey) or [H, W, 3], scaled from `bounds` to 0..255."""
    layout = image_layout(sample.shape)
    if layout is None:
        raise ValueError(f"a sample of shape {sample.shape} is not an image")
    planes = np.asarray(sample, dtype=np.float64)
    if layout == "CHW":
        planes = np.moveaxis(planes, 0, -1)
    elif layout == "HW":
        planes = planes[..., None]
    low, high = float(bounds[0]), float(bounds[1])
    scaled = np.nan_to_num(np.clip((planes - low) / (high - low if high > low else 1.0), 0.0, 1.0))
    values = np.round(scaled * 255).astype(np.uint8)
    return values if values.shape[-1] == 3 else values[..., 0]


def image_grid(x: np.ndarray, bounds: Sequence[float], columns: int = 10, scale: int = 1) -> np.ndarray:
    """The images of x [N, *image shape] side by side, `columns` per row, one pixel of white
    between them, each pixel repeated `scale` times (small digits are unreadable otherwise)."""
    tiles = [to_pixels(sample, bounds) for sample in x]
    if not tiles:
        raise ValueError("no images to lay out")
    h, w = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / columns)
    cols = min(columns, len(tiles))
    shape = (rows * (h + 1) - 1, cols * (w + 1) - 1) + tiles[0].shape[2:]
    grid = np.full(shape, 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = tile
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1) if scale > 1 else grid


def thumbnails(sets: Sequence[HardInputs], bounds: Sequence[float], per_category: int = 8) -> dict[str, list[str]]:
    """Up to `per_category` PNG data URIs per category (the first inputs of its sets, taken in
    turn so every method shows); empty when the inputs are not images."""
    out: dict[str, list[str]] = {}
    for category in dict.fromkeys(h.category for h in sets):
        group = [h for h in sets if h.category == category and len(h)]
        if not group or image_layout(group[0].x.shape[1:]) is None:
            continue
        picked: list[str] = []
        for i in range(max(len(h) for h in group)):
            for h in group:
                if i < len(h) and len(picked) < per_category:
                    picked.append(data_uri(to_pixels(h.x[i], bounds)))
        out[category] = picked
    return out


# --- pieces of the page -----------------------------------------------------------------------


def _auc_colour(auc: float | None) -> str:
    """Red at 0.5 or below, amber at 0.75, green at 1: how well the supervisor separates."""
    if auc is None:
        return "#eef0f3"
    t = min(max((auc - 0.5) / 0.5, 0.0), 1.0)
    stops = [(0.0, (244, 199, 195)), (0.5, (252, 228, 181)), (1.0, (183, 225, 193))]
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            r, g, b = (round(a + (b_ - a) * f) for a, b_ in zip(c0, c1))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#b7e1c1"


def _auc_table(report: Mapping[str, Any]) -> str:
    categories = [as_map(c) for c in as_list(report.get("categories"))]
    auc = as_map(report.get("auc"))
    head = "<th>supervisor</th>" + "".join(f"<th>{escape(c.get('category'))}</th>" for c in categories)
    head += "<th>time</th><th>ms / input</th>"
    rows = []
    for s in (as_map(s) for s in as_list(report.get("supervisors"))):
        name = s.get("name")
        cells = []
        for c in categories:
            value = as_number(as_map(auc.get(str(name))).get(str(c.get("category"))))
            text = "no inputs" if value is None else f"{value:.3f}"
            cells.append(f'<td class="n" style="background:{_auc_colour(value)}">{escape(text)}</td>')
        seconds, per = as_number(s.get("seconds")), as_number(s.get("per_input_ms"))
        rows.append(
            f'<tr><td><b>{escape(name)}</b><br><span class="muted">{escape(s.get("description"), "")}</span></td>{"".join(cells)}'
            f'<td class="n">{"-" if seconds is None else f"{seconds:.2f} s"}</td>'
            f'<td class="n">{"-" if per is None else f"{per:.3f}"}</td></tr>'
        )
    counts = "".join(f'<td class="n">{escape(c.get("count"))}</td>' for c in categories)
    rows.append(f"<tr><th>inputs</th>{counts}<td></td><td></td></tr>")
    shares = [as_number(c.get("accuracy")) for c in categories]
    accuracy = "".join(f'<td class="n">{"-" if a is None else f"{a:.1%}"}</td>' for a in shares)
    rows.append(f"<tr><th>model accuracy</th>{accuracy}<td></td><td></td></tr>")
    unavailable = "".join(
        f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in as_map(report.get("unavailable")).items()
    )
    note = f'<p class="muted">Not scored:</p><ul>{unavailable}</ul>' if unavailable else ""
    return (
        "<section><h2>AUC-ROC per category</h2><p class=\"muted\">Nominal inputs are the negatives, the category's "
        "inputs the positives; 0.5 is chance, 1 a perfect separation, below 0.5 the supervisor ranks them backwards.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}</section>"
    )


def _roc_svg(category: str, curves: list[tuple[str, str, list[float], list[float], float | None]]) -> str:
    left, top, span = 44.0, 10.0, 240.0
    width, height = left + span + 12, top + span + 40

    def xy(fpr: float, tpr: float) -> tuple[float, float]:
        return left + fpr * span, top + (1 - tpr) * span

    grey = 'fill="#4a5261"'
    out = [f'<svg viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="ROC curves for {escape(category)}">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = xy(tick, tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.0f}" y2="{top + span:.0f}" stroke="#eef0f3"/>')
        out.append(f'<line x1="{left:.0f}" x2="{left + span:.0f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f3"/>')
        out.append(f'<text x="{x:.1f}" y="{top + span + 14:.0f}" font-size="10" text-anchor="middle" {grey}>{tick:g}</text>')
        out.append(f'<text x="{left - 5:.0f}" y="{y + 3:.1f}" font-size="10" text-anchor="end" {grey}>{tick:g}</text>')
    (x0, y0), (x1, y1) = xy(0, 0), xy(1, 1)
    out.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#8b95a5" stroke-dasharray="4 3"/>')
    for name, colour, fpr, tpr, auc in curves:
        if not fpr:
            continue
        points = " ".join("{:.1f},{:.1f}".format(*xy(f, t)) for f, t in zip(fpr, tpr))
        title = f"{name}: AUC {auc:.3f}" if auc is not None else name
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8">'
                   f"<title>{escape(title)}</title></polyline>")
    out.append(f'<path d="M{left:.0f},{top:.0f}V{top + span:.0f}H{left + span:.0f}" fill="none" stroke="#4a5261"/>')
    out.append(f'<text x="{left + span / 2:.0f}" y="{height - 6:.0f}" font-size="11" text-anchor="middle" {grey}>'
               "false positive rate (nominal flagged)</text>")
    middle = top + span / 2
    out.append(f'<text x="12" y="{middle:.0f}" font-size="11" text-anchor="middle" {grey} '
               f'transform="rotate(-90 12 {middle:.0f})">true positive rate</text>')
    out.append("</svg>")
    return "".join(out)


def _plots(report: Mapping[str, Any]) -> str:
    roc, auc = as_map(report.get("roc")), as_map(report.get("auc"))
    names = [str(as_map(s).get("name")) for s in as_list(report.get("supervisors"))]
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}
    panels = []
    for c in (as_map(c) for c in as_list(report.get("categories"))):
        category = str(c.get("category"))
        if not c.get("count"):
            panels.append(f'<div class="plot"><h3>{escape(category)}</h3><p class="muted">no inputs in this category</p></div>')
            continue
        curves = []
        for name in names:
            curve = as_map(as_map(roc.get(category)).get(name))
            fpr = [v for v in (as_number(f) for f in as_list(curve.get("fpr"))) if v is not None]
            tpr = [v for v in (as_number(t) for t in as_list(curve.get("tpr"))) if v is not None]
            if len(fpr) == len(tpr):
                curves.append((name, colours[name], fpr, tpr, as_number(as_map(auc.get(name)).get(category))))
        legend = "".join(
            f'<li><span style="background:{colour}"></span>{escape(name)} '
            f'({"-" if value is None else f"{value:.3f}"})</li>'
            for name, colour, _f, _t, value in curves
        )
        panels.append(f'<div class="plot"><h3>{escape(category)} ({escape(c.get("count"))} inputs)</h3>'
                      f'{_roc_svg(category, curves)}<ul class="legend">{legend}</ul></div>')
    return f'<section><h2>ROC curves</h2><div class="plots">{"".join(panels)}</div></section>'


def _samples(report: Mapping[str, Any], images: Mapping[str, Sequence[str]]) -> str:
    parts = []
    for c in (as_map(c) for c in as_list(report.get("categories"))):
        category = str(c.get("category"))
        uris = [u for u in images.get(category, ()) if isinstance(u, str) and u.startswith("data:image/png;base64,")]
        if not uris:
            continue
        methods = ", ".join(f"{escape(k)} {escape(v)}" for k, v in as_map(c.get("methods")).items())
        tags = "".join(f'<img src="{escape(u)}" alt="{escape(category)} input">' for u in uris)
        parts.append(f'<h3>{escape(category)} <span class="muted">({methods})</span></h3><div class="thumbs">{tags}</div>')
    return f"<section><h2>Sample inputs</h2>{''.join(parts)}</section>" if parts else ""


def _header(report: Mapping[str, Any]) -> str:
    model, nominal, data = as_map(report.get("model")), as_map(report.get("nominal")), as_map(report.get("data"))
    accuracy = as_number(nominal.get("accuracy"))
    facts = [
        ("model", f"<code>{escape(model.get('description'))}</code>"),
        ("input", f"{escape(model.get('input_shape'))} in {escape(model.get('bounds'))}, {escape(model.get('classes'))} classes"),
        ("nominal inputs", f"{escape(nominal.get('count'))}" + ("" if accuracy is None else f" (model accuracy {accuracy:.1%})")),
    ]
    facts += [(f"{k} data", f"<code>{escape(v)}</code>") for k, v in data.items() if v]
    facts += [
        ("parameters", f"<code>{escape(as_map(report.get('parameters')))}</code>"),
        ("seed", escape(report.get("seed"))),
        ("versions", escape(", ".join(f"{k} {v}" for k, v in as_map(report.get("versions")).items()))),
        ("created", escape(report.get("created"))),
    ]
    if report.get("command"):
        facts.append(("command", f"<code>{escape(report.get('command'))}</code>"))
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return f"<header><h1>Supervisors of <code>{escape(model.get('description'))}</code></h1><div class=\"card\"><dl>{dl}</dl></div></header>"


def render_html(report: Mapping[str, Any], images: Mapping[str, Sequence[str]] | None = None) -> str:
    """The whole page for a schema-1 supervisor report dict; `images` (category -> PNG data URIs)
    adds sample thumbnails. Missing fields render as '-'."""
    body = [_header(report), _auc_table(report), _plots(report), _samples(report, images or {})]
    title = f"Gauntlet supervisors: {as_map(report.get('model')).get('description', 'model')}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in body if part)
        + '\n<p class="muted"><small>Generated by gauntlet supervise from report.json (schema 1).</small></p>\n'
        "</main>\n</body>\n</html>\n"
    )

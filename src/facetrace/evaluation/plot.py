"""ROC and DET curves drawn with Pillow (no plotting dependency).

Left panel: ROC, TAR against FAR on a log axis. Right panel: DET, FNMR against
FMR, both log axes. One line per named curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facetrace.evaluation.demographics import COMBINE

if TYPE_CHECKING:
    from facetrace.evaluation.demographics import DemographicsReport

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))
PANEL = 420
MARGIN = 60


def _panel(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    title: str,
    xlabel: str,
    ylabel: str,
    xlog: tuple[float, float],
    ylim: tuple[float, float],
    ylog: bool,
) -> tuple[int, int, int, int]:
    font = ImageFont.load_default()
    x0, y0 = origin[0] + MARGIN, origin[1] + 30
    x1, y1 = x0 + PANEL - MARGIN - 10, y0 + PANEL - MARGIN - 30
    draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0))
    draw.text((x0, origin[1] + 8), title, fill=(0, 0, 0), font=font)
    draw.text(((x0 + x1) // 2 - 30, y1 + 24), xlabel, fill=(0, 0, 0), font=font)
    draw.text((origin[0] + 4, y0 - 18), ylabel, fill=(0, 0, 0), font=font)
    lo, hi = math.log10(xlog[0]), math.log10(xlog[1])
    for e in range(math.ceil(lo), math.floor(hi) + 1):
        x = x0 + (e - lo) / (hi - lo) * (x1 - x0)
        draw.line((x, y0, x, y1), fill=(225, 225, 225))
        draw.text((x - 12, y1 + 6), f"1e{e}", fill=(0, 0, 0), font=font)
    if ylog:
        ylo, yhi = math.log10(ylim[0]), math.log10(ylim[1])
        ticks = [(float(10**e), f"1e{e}") for e in range(math.ceil(ylo), math.floor(yhi) + 1)]
    else:
        ticks = [(v / 10, f"{v / 10:.1f}") for v in range(int(ylim[0] * 10), int(ylim[1] * 10) + 1)]
    for v, label in ticks:
        y = _y(v, ylim, ylog, y0, y1)
        draw.line((x0, y, x1, y), fill=(225, 225, 225))
        draw.text((x0 - 36, y - 5), label, fill=(0, 0, 0), font=font)
    draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0))
    return x0, y0, x1, y1


def _y(v: float, ylim: tuple[float, float], ylog: bool, y0: int, y1: int) -> float:
    if ylog:
        lo, hi = math.log10(ylim[0]), math.log10(ylim[1])
        f = (math.log10(min(max(v, ylim[0]), ylim[1])) - lo) / (hi - lo)
    else:
        f = (min(max(v, ylim[0]), ylim[1]) - ylim[0]) / (ylim[1] - ylim[0])
    return y1 - f * (y1 - y0)


def _x(v: float, xlog: tuple[float, float], x0: int, x1: int) -> float:
    lo, hi = math.log10(xlog[0]), math.log10(xlog[1])
    return x0 + (math.log10(min(max(v, xlog[0]), xlog[1])) - lo) / (hi - lo) * (x1 - x0)


def plot_roc_det(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]], path: Path, floor: float = 1e-4
) -> Path:
    """Write a PNG of ROC and DET panels. ``curves``: ``(label, far, tar)``, FAR ascending."""
    img = Image.new("RGB", (2 * PANEL, PANEL + 20 * max(1, len(curves))), "white")
    draw = ImageDraw.Draw(img)
    xlog = (floor, 1.0)
    roc = _panel(draw, (0, 0), "ROC", "false accept rate", "TAR", xlog, (0.0, 1.0), False)
    det = _panel(draw, (PANEL, 0), "DET", "false match rate", "FNMR", xlog, (floor, 1.0), True)
    font = ImageFont.load_default()
    for n, (label, far, tar) in enumerate(curves):
        colour = COLOURS[n % len(COLOURS)]
        x0, y0, x1, y1 = roc
        pts = [
            (_x(max(f, floor), xlog, x0, x1), _y(t, (0.0, 1.0), False, y0, y1))
            for f, t in zip(far, tar, strict=True)
        ]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        x0, y0, x1, y1 = det
        pts = [
            (_x(max(f, floor), xlog, x0, x1), _y(max(1 - t, floor), (floor, 1.0), True, y0, y1))
            for f, t in zip(far, tar, strict=True)
        ]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        y = PANEL + 4 + 20 * n
        draw.line((MARGIN, y + 6, MARGIN + 30, y + 6), fill=colour, width=3)
        draw.text((MARGIN + 40, y), label, fill=(0, 0, 0), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path


def plot_group_rates(report: DemographicsReport, path: Path) -> Path:
    """Write a PNG with one row per group: same-group FMR (log axis, the target as
    a dashed line) and FNMR, each a dot with its 95% interval. A group with no
    error is drawn as an open dot at the axis floor with its upper bound."""
    rows = [(gr.name, g) for gr in report.groupings for g in gr.groups]
    font = ImageFont.load_default()
    label_w, panel_w, row_h, top = 230, 330, 16, 46
    img = Image.new("RGB", (label_w + 2 * panel_w + 20, top + row_h * len(rows) + 40), "white")
    draw = ImageDraw.Draw(img)
    fmr_floor = 10 ** math.floor(math.log10(min(report.target_fmr, 1.0) / 100))
    panels = (
        ("same-group false-match rate (log)", label_w, (fmr_floor, 1.0), True),
        ("false-non-match rate (log)", label_w + panel_w, (1e-3, 1.0), True),
    )
    y1 = top + row_h * len(rows)
    for title, x_left, (lo, hi), _ in panels:
        x0, x1 = x_left + 10, x_left + panel_w - 10
        draw.text((x0, 6), title, fill=(0, 0, 0), font=font)
        for e in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1):
            x = _x(10.0**e, (lo, hi), x0, x1)
            draw.line((x, top - 4, x, y1), fill=(225, 225, 225))
            draw.text((x - 12, y1 + 4), f"1e{e}", fill=(0, 0, 0), font=font)
        draw.rectangle((x0, top - 4, x1, y1), outline=(0, 0, 0))
    x0, x1 = label_w + 10, label_w + panel_w - 10
    xt = _x(report.target_fmr, panels[0][2], x0, x1)
    for y in range(top - 4, y1, 8):
        draw.line((xt, y, xt, y + 4), fill=(214, 39, 40), width=2)
    draw.text(
        (x0, 22),
        f"target {report.target_fmr:g} at threshold {report.threshold:.3f}",
        fill=(214, 39, 40),
        font=font,
    )
    if not any(g.fnmr.trials for _, g in rows):
        draw.text(
            (label_w + panel_w + 20, top + 4),
            "no genuine pairs (no identity labels)",
            fill=(0, 0, 0),
            font=font,
        )
    previous = ""
    for n, (grouping, g) in enumerate(rows):
        y = top + row_h * n + row_h // 2
        if grouping != previous:
            draw.line((0, y - row_h // 2, img.width, y - row_h // 2), fill=(160, 160, 160))
            previous = grouping
        shade = (0, 0, 0) if g.known else (130, 130, 130)
        label = f"{grouping}: {g.name}".replace(COMBINE, " x ")
        draw.text((4, y - 6), label[:38], fill=shade, font=font)
        for rate, (_, x_left, lim, _) in ((g.fmr_same, panels[0]), (g.fnmr, panels[1])):
            if not rate.trials:
                continue
            a, b = x_left + 10, x_left + panel_w - 10
            lo, hi = rate.ci95
            xa, xb = _x(max(lo, lim[0]), lim, a, b), _x(max(hi, lim[0]), lim, a, b)
            colour = (31, 119, 180) if g.usable or rate is g.fnmr else (150, 150, 150)
            draw.line((xa, y, xb, y), fill=colour, width=2)
            xv = _x(max(rate.value or 0.0, lim[0]), lim, a, b)
            box = (xv - 3, y - 3, xv + 3, y + 3)
            if rate.errors:
                draw.ellipse(box, fill=colour)
            else:
                draw.ellipse(box, outline=colour)
    draw.text(
        (4, y1 + 20),
        "grey: too few pairs to compare, or an unknown group; open dot: "
        "no error seen (bar = 95% upper bound)",
        fill=(0, 0, 0),
        font=font,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path

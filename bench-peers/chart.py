"""Draws BENCHMARKS.svg: ns per node against chain length, one line per runner.

The figures are those quoted in BENCHMARKS.md (criterion medians from
`cargo bench --manifest-path bench-peers/Cargo.toml`, LangGraph from
`langgraph_chain.py`); update both together. Needs only the standard library.
"""

import math
import sys

# runner -> {N: ns per node}
FIGURES = {
    "hand-written .await": {10: 0.44, 100: 0.30},
    "tower 0.5 and_then": {10: 2.8},
    "boxed dyn Fn loop": {10: 13.0, 100: 11.3},
    "stroma lean": {10: 23.7, 100: 3.16},
    "stroma default": {10: 50.2, 100: 39.1},
    "graph-flow 0.8": {10: 230.7, 100: 215.4},
    "LangGraph 1.2 (Python)": {10: 168_400.0, 100: 152_900.0},
}
COLOURS = ["#444444", "#8c564b", "#9467bd", "#d62728", "#ff7f0e", "#2ca02c", "#1f77b4"]

WIDTH, HEIGHT = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 30, 50
Y_MIN, Y_MAX = 0.1, 1_000_000.0
X_MIN, X_MAX = 5, 200


def x_of(n):
    span = math.log10(X_MAX) - math.log10(X_MIN)
    return LEFT + (math.log10(n) - math.log10(X_MIN)) / span * (WIDTH - LEFT - RIGHT)


def y_of(ns):
    span = math.log10(Y_MAX) - math.log10(Y_MIN)
    return HEIGHT - BOTTOM - (math.log10(ns) - math.log10(Y_MIN)) / span * (HEIGHT - TOP - BOTTOM)


def main(path):
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="14">ns per node (log) against chain length N (log)</text>',
    ]
    for exponent in range(-1, 7):
        y = y_of(10.0**exponent)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#dddddd"/>')
        label = f"{10.0**exponent:g}"
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for n in (10, 100):
        x = x_of(n)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#dddddd"/>')
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">N = {n}</text>')
    for i, (runner, points) in enumerate(FIGURES.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = [(x_of(n), y_of(ns)) for n, ns in sorted(points.items())]
        if len(coords) > 1:
            path_data = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(f'<polyline points="{path_data}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in coords:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
        legend_y = TOP + 18 * i + 10
        out.append(f'<rect x="{WIDTH - RIGHT + 15}" y="{legend_y - 9}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 33}" y="{legend_y + 1}">{runner}</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "BENCHMARKS.svg")

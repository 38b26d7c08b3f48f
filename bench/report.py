"""Rows of the side-by-side table: each figure with its reference, measured in the same run.

``ratio`` is oriented so that higher is better for us (ours / reference for a rate, reference /
ours for a latency or a count of round trips); ``aim`` is the ratio we want (None: no target,
the figure is for information). The JSON file is what CI or a person diffs between runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Row", "compare", "print_table", "write_json"]


@dataclass(frozen=True)
class Row:
    name: str
    value: float | None
    unit: str
    reference: str | None
    reference_value: float | None
    ratio: float | None
    aim: float | None

    @property
    def verdict(self) -> str:
        if self.aim is None or self.ratio is None:
            return ""
        return "ok" if self.ratio >= self.aim else "MISS"


def compare(
    name: str,
    value: float | None,
    unit: str,
    reference: str | None = None,
    reference_value: float | None = None,
    *,
    higher_is_better: bool = True,
    aim: float | None = None,
) -> Row:
    """A row; the ratio is computed so that > 1 always means "better than the reference"."""
    ratio = None
    if value and reference_value:
        ratio = value / reference_value if higher_is_better else reference_value / value
    return Row(name, value, unit, reference, reference_value, ratio, aim)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def print_table(rows: list[Row], title: str) -> None:
    """One plain-text table, widths fitted to the content."""
    header = ("figure", "value", "unit", "reference", "ref value", "ratio", "aim", "")
    cells = [
        (r.name, _num(r.value), r.unit, r.reference or "-", _num(r.reference_value),
         f"{r.ratio:.2f}x" if r.ratio is not None else "-",
         f">={r.aim:.2f}x" if r.aim is not None else "", r.verdict)
        for r in rows
    ]  # fmt: skip
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    right = {1, 4, 5, 6}

    def line(c: tuple[str, ...]) -> str:
        return "  ".join(
            str(v).rjust(w) if i in right else str(v).ljust(w)
            for i, (v, w) in enumerate(zip(c, widths, strict=True))
        ).rstrip()

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line(c))


def write_json(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"rows": [_json_row(r) for r in rows]}, indent=2) + "\n", encoding="utf-8"
    )


def _json_row(row: Row) -> dict[str, object]:
    data = asdict(row)
    for key in ("value", "reference_value", "ratio", "aim"):
        if isinstance(data[key], float):
            data[key] = round(data[key], 4)
    return data

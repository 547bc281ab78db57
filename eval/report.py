"""A self-contained HTML report: a title, then sections of text, images and metrics tables.

    write_report("quickstart/report.html", "fourm quickstart", [
        Section("rgb -> semseg", text="Val split, 64 x 64.",
                images=[Figure("quickstart/semseg_grid.png", "input / prediction / ground truth")],
                tables=[Table("Scores", {"FourM": {"miou": 0.61}, "U-Net": {"miou": 0.66}})]),
    ])

Images are linked by paths relative to the report's folder (the folder can be moved or
zipped whole); the file is written under a temp name and renamed, so it is never half-written.
"""
from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#eee}figure{display:inline-block;margin:.5em 1em .5em 0}
figcaption{font-size:.9em;color:#555}img{image-rendering:pixelated;max-width:100%}"""


@dataclass(frozen=True)
class Figure:
    """An image file shown in the report, with an optional caption."""

    path: str | Path
    caption: str = ""


@dataclass(frozen=True)
class Table:
    """Rows of metrics: {row name: {column: value}}; columns are the union of the rows' keys in
    first-seen order, a missing value shows as an empty cell."""

    title: str
    rows: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Section:
    title: str
    text: str = ""  # plain text; blank lines separate paragraphs
    images: Sequence[Figure] = field(default_factory=tuple)
    tables: Sequence[Table] = field(default_factory=tuple)


def format_value(value: Any) -> str:
    """Numbers to 4 significant digits (integers as they are), None/NaN as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table_html(table: Table) -> str:
    columns: list[str] = []
    for row in table.rows.values():
        columns += [c for c in row if c not in columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        f"<tr><td>{html.escape(str(name))}</td>" + "".join(f"<td>{format_value(row.get(c))}</td>" for c in columns) + "</tr>"
        for name, row in table.rows.items())
    title = f"<h3>{html.escape(table.title)}</h3>" if table.title else ""
    return f"{title}<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure_html(figure: Figure, report_dir: Path) -> str:
    src = Path(os.path.relpath(Path(figure.path).resolve(), report_dir.resolve())).as_posix()
    caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
    return f'<figure><img src="{html.escape(src, quote=True)}" alt="{html.escape(figure.caption, quote=True)}">{caption}</figure>'


def section_html(section: Section, report_dir: Path) -> str:
    paragraphs = "".join(f"<p>{html.escape(p.strip())}</p>" for p in section.text.split("\n\n") if p.strip())
    figures = "".join(_figure_html(f, report_dir) for f in section.images)
    tables = "".join(table_html(t) for t in section.tables)
    return f"<section><h2>{html.escape(section.title)}</h2>{paragraphs}{tables}<div>{figures}</div></section>"


def render_report(title: str, sections: Sequence[Section], report_dir: str | Path = ".") -> str:
    """The report as an HTML string; image paths become relative to `report_dir`."""
    body = "".join(section_html(s, Path(report_dir)) for s in sections)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def write_report(path: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """Write the HTML report to `path` atomically (temp name, then rename); returns the path.
    Missing image files are an error here rather than a broken picture later."""
    path = Path(path)
    missing = [str(f.path) for s in sections for f in s.images if not Path(f.path).is_file()]
    if missing:
        raise FileNotFoundError(f"report {path}: image not found: {missing[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_report(title, sections, path.parent), encoding="utf-8")
    os.replace(tmp, path)
    return path

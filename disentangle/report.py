"""Reports over one run or a sweep directory: ``report.html`` (self-contained) and ``report.md``.

The report has a table of groups x metrics (mean +- std over seeds: members whose names
differ only in ``-seedN`` form a group), one row per member with its status, and per
member: the NMI heatmaps, training curves and every other figure the run's analyses
wrote (traversals, active/passive, ...), with the analyses' JSON summaries. Images are
embedded as base64 PNG in the HTML; all text is escaped; the page needs no network and
no script.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import re
from pathlib import Path

import numpy as np

from disentangle import viz
from disentangle.train import read_log

# Column label -> key in the primary representation's scores (first key found wins).
COLUMNS: dict[str, tuple[str, ...]] = {
    "InfoM": ("infom",), "InfoE": ("infoe",), "InfoC": ("infoc",), "MIG": ("mig",),
    "DCI-D": ("dci_disentanglement", "disentanglement"), "SAP": ("sap",),
}
RECONSTRUCTION = "recon."


def find_runs(directory: Path) -> list[Path]:
    """The run itself, or the run directories directly inside a sweep directory."""
    if (directory / "config.json").exists():
        return [directory]
    runs = [p for p in directory.iterdir() if p.is_dir() and
            ((p / "config.json").exists() or (p / "status.json").exists())]

    def order(p: Path):
        status = _read_json(p / "status.json")
        return (status.get("index", 1 << 30), p.name)

    return sorted(runs, key=order)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def group_of(name: str) -> str:
    return re.sub(r"-seed\d+", "", name)


def run_scores(run: Path) -> dict[str, float]:
    """Column label -> value for one run (primary representation), where evaluated."""
    ev = _read_json(run / "eval.json")
    if not ev:
        return {}
    scores = ev["representations"][ev["primary"]]
    out = {}
    for label, keys in COLUMNS.items():
        for key in keys:
            if isinstance(scores.get(key), int | float):
                out[label] = float(scores[key])
                break
    out[RECONSTRUCTION] = float(ev["reconstruction"])
    return out


def summary_table(runs: list[Path]) -> tuple[list[str], list[list[str]]]:
    groups: dict[str, list[dict]] = {}
    for run in runs:
        scores = run_scores(run)
        if scores:
            groups.setdefault(group_of(run.name), []).append(scores)
    header = ["group", "n", *COLUMNS, RECONSTRUCTION]
    rows = []
    for name, members in groups.items():
        row = [name, str(len(members))]
        for col in header[2:]:
            vals = np.asarray([m[col] for m in members if col in m])
            if vals.size == 0:
                row.append("-")
            elif vals.size == 1:
                row.append(f"{vals[0]:.3f}")
            else:
                row.append(f"{vals.mean():.3f} ± {vals.std(ddof=1):.3f}")
        rows.append(row)
    return header, rows


def member_table(runs: list[Path]) -> tuple[list[str], list[list[str]]]:
    header = ["member", "status", "step", *COLUMNS, RECONSTRUCTION]
    rows = []
    for run in runs:
        status = _read_json(run / "status.json")
        ev = _read_json(run / "eval.json")
        state = status.get("status", "done" if ev else "not evaluated")
        if state == "failed":
            state = f"failed at {status.get('stage')}: {status.get('error', '')}"[:200]
        scores = run_scores(run)
        rows.append([run.name, state, str(ev.get("step", "-")),
                     *[f"{scores[c]:.3f}" if c in scores else "-" for c in header[3:]]])
    return header, rows


def run_figures(run: Path) -> list[tuple[str, Path]]:
    """(caption, png) for a run: NMI first, training curves, then every other figure."""
    figs = run / "figures"
    out = []
    log = read_log(run)
    if log:
        out.append(("training curves", viz.training_curves(log, figs / "training_curves.png",
                                                           title=run.name)))
    if figs.exists():
        pngs = sorted(figs.glob("*.png"))
        first = [p for p in pngs if p.name.startswith("nmi")]
        rest = [p for p in pngs if p not in first and p.name != "training_curves.png"]
        out = [(p.stem.replace("_", " "), p) for p in first] + out + [
            (p.stem.replace("_", " "), p) for p in rest]
    return out


ANALYSES = ("traversal.json", "active_passive.json")


def _analysis_summary(run: Path) -> list[tuple[str, str]]:
    out = []
    for name in ANALYSES:
        data = _read_json(run / name)
        if data:
            flat = {k: v for k, v in data.items() if isinstance(v, int | float | str)}
            text = json.dumps(flat or data, indent=1)
            out.append((name, text[:3000]))
    return out


# ----------------------------------------------------------------------------- writers
def _html_table(header, rows) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header, rows) -> str:
    cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:4px 0}
figure{display:inline-block;margin:0.5em;vertical-align:top}
figcaption{font-size:0.85em;color:#555}pre{background:#f7f7f7;padding:0.5em;font-size:0.8em}"""


def write_report(directory: str | Path, title: str | None = None) -> tuple[Path, Path]:
    """Write report.html and report.md into ``directory``; returns both paths."""
    directory = Path(directory)
    runs = find_runs(directory)
    title = title or f"disentangle report: {directory.name}"
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    s_head, s_rows = summary_table(runs)
    m_head, m_rows = member_table(runs)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>",
             f"<p>{esc(str(directory))} &middot; {len(runs)} run(s) &middot; {esc(when)}. "
             "Scores of the primary representation (codes for QLAE, means otherwise); "
             "mean ± std over seeds.</p>",
             "<h2>Summary</h2>", _html_table(s_head, s_rows),
             "<h2>Members</h2>", _html_table(m_head, m_rows)]
    md = [f"# {title}", "", f"{directory} · {len(runs)} run(s) · {when}.", "",
          "Scores of the primary representation (codes for QLAE, means otherwise); "
          "mean ± std over seeds.", "", "## Summary", "", _md_table(s_head, s_rows), "",
          "## Members", "", _md_table(m_head, m_rows), ""]
    for run in runs:
        parts.append(f"<h2 id='{esc(run.name)}'>{esc(run.name)}</h2>")
        md += [f"## {run.name}", ""]
        for caption, png in run_figures(run):
            parts.append(f"<figure>{_img(png)}<figcaption>{esc(caption)}</figcaption></figure>")
            md.append(f"![{caption}]({png.relative_to(directory).as_posix()})")
        for name, text in _analysis_summary(run):
            parts.append(f"<h3>{esc(name)}</h3><pre>{esc(text)}</pre>")
            md += ["", f"### {name}", "", "```", text, "```"]
        md.append("")
    parts.append("</body></html>")
    html_path, md_path = directory / "report.html", directory / "report.md"
    html_path.write_text("\n".join(parts))
    md_path.write_text("\n".join(md))
    return html_path, md_path

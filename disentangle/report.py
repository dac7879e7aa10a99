"""Reports over one run or a sweep directory: ``report.html`` (self-contained) and ``report.md``.

Read top to bottom, the report says: what was trained and on what (method, dataset, the
settings that differ, seeds); which method led on which metric, with the spread over
seeds (members whose names differ only in ``-seedN`` form a group); the table of groups x
metrics (mean +- std); the metrics against the training step (``eval.every`` runs);
per group, its traversals beside its NMI matrix, captioned; then per member its training
curves, its other figures and its analyses' scalars as tables; last, every member's
status. Images are embedded as base64 PNG in the HTML; all text is escaped; the page
needs no network and no script.
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
from disentangle.tracking import EVAL_LOG, read_log

# Column label -> key in the primary representation's scores (first key found wins).
COLUMNS: dict[str, tuple[str, ...]] = {
    "InfoM": ("infom",), "InfoE": ("infoe",), "InfoC": ("infoc",), "MIG": ("mig",),
    "DCI-D": ("dci_disentanglement", "disentanglement"), "SAP": ("sap",),
}
RECONSTRUCTION = "recon."
LOWER_IS_BETTER = {RECONSTRUCTION}
# A factor is captured when some latent carries at least this share of its entropy:
# max_j NMI_ij = max_j I(s_i; z_j) / H(s_i) >= CAPTURE_NMI.
CAPTURE_NMI = 0.5
CAPTURED = f"factors NMI≥{CAPTURE_NMI}"
CAPTIONS = {
    "nmi": "NMI between each factor (rows) and each latent (columns): a disentangled model has "
           "one bright cell per factor row, each in its own latent column (grey: inactive "
           "latent).",
    "traversal_linear": "Linear traversals: each row varies one latent from its 2nd to its 98th "
                        "percentile (codebook values for QLAE) with the others fixed at a "
                        "data image's code.",
    "traversal_flow": "Potential-flow traversals: each row follows one learned flow from a "
                      "data image's code.",
    "training_curves": "Training curves: every logged loss term against the step.",
}


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
    if scores.get("nmi"):
        out[CAPTURED] = float(captured_factors(np.asarray(scores["nmi"], float)))
    out[RECONSTRUCTION] = float(ev["reconstruction"])
    return out


def captured_factors(nmi: np.ndarray, threshold: float = CAPTURE_NMI) -> int:
    """The number of factors (rows of NMI [K, L]) with a latent of NMI >= ``threshold``."""
    return int((nmi.max(axis=1) >= threshold).sum()) if nmi.size else 0


def representative(members: list[Path]) -> Path:
    """The member shown for its group: the most captured factors, then the highest InfoM,
    then the first."""
    def key(item):
        i, run = item
        s = run_scores(run)
        return (-s.get(CAPTURED, -1), -s.get("InfoM", -1), i)
    return min(enumerate(members), key=key)[1]


def group_scores(runs: list[Path]) -> dict[str, list[dict]]:
    """Group name -> the scores of its evaluated members."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        scores = run_scores(run)
        if scores:
            groups.setdefault(group_of(run.name), []).append(scores)
    return groups


def _mean_std(values) -> str:
    v = np.asarray(values, float)
    return f"{v[0]:.3f}" if v.size == 1 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def leaders(runs: list[Path]) -> list[str]:
    """One sentence per metric: the group that led (mean over seeds) and the runner-up."""
    groups = group_scores(runs)
    out = []
    for col in [*COLUMNS, CAPTURED, RECONSTRUCTION]:
        ranked = sorted(((np.mean([m[col] for m in ms if col in m]), g,
                          [m[col] for m in ms if col in m]) for g, ms in groups.items()
                         if any(col in m for m in ms)), reverse=col not in LOWER_IS_BETTER)
        if not ranked:
            continue
        top, best, vals = ranked[0]
        tied = [g for m, g, _ in ranked if m == top]
        if len(tied) > 1:  # equal means (e.g. counts): a tie, not a leader by name order
            out.append(f"{col}: {', '.join(sorted(tied))} tie at {top:.3f}.")
            continue
        text = f"{col}: {best} leads with {_mean_std(vals)} (n={len(vals)})"
        if len(ranked) > 1:
            _, second, vals2 = ranked[1]
            text += f", ahead of {second} with {_mean_std(vals2)} (n={len(vals2)})"
        out.append(text + (" (lower is better)." if col in LOWER_IS_BETTER else "."))
    return out


def trained_table(runs: list[Path]) -> tuple[list[str], list[list[str]]]:
    """Per group: method, dataset, network, steps, seeds and the settings that differ
    between groups."""
    import disentangle.config as config_lib

    firsts: dict[str, dict] = {}
    seeds: dict[str, list] = {}
    for run in runs:
        cfg = _read_json(run / "config.json")
        if not cfg:
            continue
        g = group_of(run.name)
        firsts.setdefault(g, config_lib.flatten(cfg))
        seeds.setdefault(g, []).append(cfg["train"]["seed"])
    fixed = ("model.name", "data.name", "model.network", "train.steps", "train.seed")
    varying = sorted(k for k in set().union(*map(set, firsts.values())) if k not in fixed
                     and not k.startswith(("eval.", "data.options"))
                     and len({json.dumps(f.get(k)) for f in firsts.values()}) > 1)
    header = ["group", "method", "dataset", "network", "steps", "seeds", "settings"]
    rows = [[g, f.get("model.name", "-"), f.get("data.name", "-"), f.get("model.network", "-"),
             str(f.get("train.steps", "-")), ", ".join(map(str, seeds[g])),
             ", ".join(f"{k.split('.', 1)[1]}={f[k]}" for k in varying if k in f)]
            for g, f in firsts.items()]
    return header, rows


def summary_table(runs: list[Path]) -> tuple[list[str], list[list[str]]]:
    groups = group_scores(runs)
    header = ["group", "n", *COLUMNS, CAPTURED, RECONSTRUCTION]
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
                row.append(_mean_std(vals))
        rows.append(row)
    return header, rows


def member_table(runs: list[Path]) -> tuple[list[str], list[list[str]]]:
    header = ["member", "status", "step", *COLUMNS, CAPTURED, RECONSTRUCTION]
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


def caption(png: Path, run: str) -> str:
    """What a figure shows, from its file name."""
    for prefix, text in CAPTIONS.items():
        if png.stem.startswith(prefix):
            return f"{run}: {text}"
    return f"{run}: {png.stem.replace('_', ' ')}"


def side_by_side(run: Path) -> list[Path]:
    """The group's headline figures of one member: traversals, then the primary NMI."""
    figs = run / "figures"
    if not figs.exists():
        return []
    return (sorted(figs.glob("traversal_*.png")) +
            [p for p in (figs / "nmi.png",) if p.exists()])


def run_figures(run: Path) -> list[tuple[str, Path]]:
    """(caption, png) for a member: training curves, then every figure not shown beside
    its group's traversals."""
    figs = run / "figures"
    out = []
    log = read_log(run)
    if log:
        out.append((caption(figs / "training_curves.png", run.name),
                    viz.training_curves(log, figs / "training_curves.png", title=run.name)))
    if figs.exists():
        shown = set(side_by_side(run)) | {figs / "training_curves.png"}
        out += [(caption(p, run.name), p) for p in sorted(figs.glob("*.png")) if p not in shown]
    return out


def metrics_figure(runs: list[Path], directory: Path) -> Path | None:
    """Metrics against the training step for the runs with an ``eval_log.jsonl``."""
    series = {r.name: read_log(r, EVAL_LOG) for r in runs}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    keys = [k for k in ("infom", "infoc", "infoe", "mig") if any(k in v[0] for v in
                                                                 series.values())]
    return viz.metrics_over_steps(series, keys, directory / "metrics_over_steps.png",
                                  {name: group_of(name) for name in series})


ANALYSES = ("traversal.json", "active_passive.json")


def _analysis_summary(run: Path) -> list[tuple[str, list[list[str]]]]:
    """(analysis, [key, value] rows) of the scalars each analysis wrote (nested one level:
    ``section.key``)."""
    out = []
    for name in ANALYSES:
        data = _read_json(run / name)
        rows = []
        for key, value in data.items():
            items = value.items() if isinstance(value, dict) else [("", value)]
            for sub, v in items:
                if isinstance(v, int | float | str) and not isinstance(v, bool):
                    label = f"{key}.{sub}" if sub else key
                    rows.append([label, f"{v:.4g}" if isinstance(v, float) else str(v)])
        if rows:
            out.append((name, rows[:40]))
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
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>",
             f"<p>{esc(str(directory))} &middot; {len(runs)} run(s) &middot; {esc(when)}.</p>"]
    md = [f"# {title}", "", f"{directory} · {len(runs)} run(s) · {when}.", ""]

    def section(name: str, html_body: str, md_body: str) -> None:
        parts.extend([f"<h2>{esc(name)}</h2>", html_body])
        md.extend([f"## {name}", "", md_body, ""])

    def figure(png: Path, text: str) -> tuple[str, str]:
        return (f"<figure>{_img(png)}<figcaption>{esc(text)}</figcaption></figure>",
                f"![{text}]({png.relative_to(directory).as_posix()})")

    t_head, t_rows = trained_table(runs)
    section("What was trained", _html_table(t_head, t_rows), _md_table(t_head, t_rows))
    lead = leaders(runs)
    if lead:
        note = ("Scores of each run's primary representation (integer codes for QLAE, "
                "posterior means otherwise) on a fixed sample; mean ± sample std over seeds. "
                f"{CAPTURED}: the number of factors some single latent carries at least "
                f"{CAPTURE_NMI:g} of (max over latents of I(factor; latent) / H(factor)).")
        section("Which method led",
                "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in lead) + f"</ul><p>{esc(note)}</p>",
                "\n".join(f"- {x}" for x in lead) + "\n\n" + note)
        s_head, s_rows = summary_table(runs)
        section("Scores", _html_table(s_head, s_rows), _md_table(s_head, s_rows))
    curve = metrics_figure(runs, directory)
    if curve is not None:
        h, m = figure(curve, "Metrics of every run on a fixed sample against the training "
                             "step (eval.every): disentanglement emerging, or not, as the "
                             "runs train.")
        section("Metrics during training", h, m)
    members: dict[str, list[Path]] = {}
    for run in runs:
        members.setdefault(group_of(run.name), []).append(run)
    for group, group_runs in members.items():
        run = representative(group_runs)
        figs = [figure(p, caption(p, run.name)) for p in side_by_side(run)]
        which = (f" ({run.name}: of its {len(group_runs)} seeds, the one with the most "
                 f"captured factors)" if len(group_runs) > 1 else "")
        if figs:
            section(f"{group}: traversals and NMI{which}", "".join(h for h, _ in figs),
                    "\n\n".join(m for _, m in figs))
    for run in runs:
        h_parts, m_parts = [], []
        for text, png in run_figures(run):
            h, m = figure(png, text)
            h_parts.append(h)
            m_parts.append(m)
        for name, rows in _analysis_summary(run):
            h_parts.append(f"<h3>{esc(name)}</h3>" + _html_table(["key", "value"], rows))
            m_parts += [f"### {name}", "", _md_table(["key", "value"], rows)]
        if h_parts:
            section(run.name, "".join(h_parts), "\n\n".join(m_parts))
    m_head, m_rows = member_table(runs)
    section("Members", _html_table(m_head, m_rows), _md_table(m_head, m_rows))
    parts.append("</body></html>")
    html_path, md_path = directory / "report.html", directory / "report.md"
    html_path.write_text("\n".join(parts))
    md_path.write_text("\n".join(md))
    return html_path, md_path

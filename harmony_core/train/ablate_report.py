"""Markdown tables of the ablation (paper Table 3 shape, sync vs steps, guidance sweep) from cached
evaluation reports (the JSON of `metrics.to_json`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Report = dict[str, Any]


def stat(report: Report, metric: str = "lag0", group: str = "all", shuffled: bool = False) -> str:
    """'mean [lo, hi]' of one metric of one group ('-' when absent)."""
    summary = report["shuffled_summary" if shuffled else "summary"].get(group, {})
    s = summary.get(metric)
    if not s or not s.get("n") or s.get("mean") is None:
        return "-"
    return f"{s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


SYNC_COLUMNS = ("lag-0 corr, all", "shuffled lag-0", "margin", "lag-0, speaker", "lag-0, impact",
                "best lag = 0", "shuffled best lag = 0", "mean abs offset (s)", "hit rate")


def _margin(report: Report) -> str:
    """Real minus shuffled lag-0 correlation (all clips): what the pairing itself explains."""
    real, shuffled = report["summary"]["all"]["lag0"], report["shuffled_summary"].get("all", {}).get("lag0")
    if not shuffled or real.get("mean") is None or shuffled.get("mean") is None:
        return "-"
    return f"{real['mean'] - shuffled['mean']:+.3f}"


def sync_cells(report: Report) -> list[str]:
    """The sync columns of one evaluation (SYNC_COLUMNS order)."""
    return [stat(report), stat(report, shuffled=True), _margin(report), stat(report, group="speaker"),
            stat(report, group="impact"), stat(report, "best_is_zero"),
            stat(report, "best_is_zero", shuffled=True), stat(report, "mean_abs_offset"),
            stat(report, "hit_rate")]


def table3(rows: Sequence[tuple[str, str, str, str, Report | None]]) -> list[str]:
    """rows: (label, GLDI mark, CTS mark, SyncCFG mark, report)."""
    header = ("row", "GLDI", "CTS", "SyncCFG", *SYNC_COLUMNS)
    empty = ["(not run)"] + [""] * (len(SYNC_COLUMNS) - 1)
    body = [(label, g, c, s, *(sync_cells(r) if r else empty))
            for label, g, c, s, r in rows]
    return _table(header, body)


STEP_COLUMNS = ("lag-0, all", "margin", "lag-0, speaker", "best lag = 0")


def steps_table(steps: Sequence[int], runs: dict[str, dict[int, Report]]) -> list[str]:
    """Lag-0 correlation (all, its margin over shuffled pairs, speaker) and the share of clips peaking at
    lag 0, against training steps for each run."""
    header = ["steps"] + [f"{name}: {what}" for name in runs for what in STEP_COLUMNS]
    body = []
    for n in steps:
        row = [str(n)]
        for reports in runs.values():
            r = reports.get(n)
            row += ([stat(r), _margin(r), stat(r, group="speaker"), stat(r, "best_is_zero")] if r
                    else ["-"] * len(STEP_COLUMNS))
        body.append(row)
    return _table(header, body)


def sweep_table(scales: Sequence[float], text: dict[float, Report], sync: dict[float, Report]) -> list[str]:
    """Plain text CFG against SyncCFG at each scale (video = audio scale)."""
    header = ["scale", "guidance", *SYNC_COLUMNS]
    body = []
    for s in scales:
        for name, reports in (("plain CFG", text), ("SyncCFG", sync)):
            if s == 1.0 and name == "plain CFG":
                continue                                        # scale 1 = no guidance, one row
            r = reports.get(s)
            cells = sync_cells(r) if r else ["-"] * len(SYNC_COLUMNS)
            body.append([f"{s:g}", "none" if s == 1.0 else name, *cells])
    return _table(header, body)


def markdown(sections: Sequence[tuple[str, list[str]]], preface: Sequence[str] = ()) -> str:
    """Join titled sections of table lines into one markdown document body."""
    out = list(preface)
    for title, lines in sections:
        out += ["", f"### {title}", "", *lines]
    return "\n".join(out) + "\n"

"""`python -m harmony_core bench {attention,gldi,guidance,uniavgen,codecs,memory,gpu,cpu,all} [--json]`: tables of
ratios from one run; with --json the last line printed is one JSON object (`gldi`: its summary, else the rows)."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(title: str, rows: list[dict]) -> str:
    if not rows:
        return f"{title}: (no rows)"
    keys = list(rows[0])
    cells = [[_fmt(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = "  ".join(k.ljust(w) for k, w in zip(keys, widths))
    body = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells)
    return f"== {title} ==\n{line}\n{body}"


def _codec_rows(quick: bool) -> list[dict]:
    from .codec_audio import bench_audio_rows
    from .codec_demo import bench_demo_rows
    from .codec_video import bench_video_rows

    return [*bench_demo_rows(quick), *bench_video_rows(quick), *bench_audio_rows(quick)]


def _gldi(quick: bool) -> tuple[dict[str, list[dict]], dict]:
    from . import gldi

    return gldi.report(quick)


def suites(quick: bool) -> dict[str, Callable[[], list[dict] | tuple[dict[str, list[dict]], dict]]]:
    """name -> rows, or ({table title: rows}, summary) for suites with a summary."""
    from . import attention, cpu, gpu, guidance, kit, memory, uniavgen

    return {
        "attention": lambda: attention.rows(scales=(1,) if quick else (1, 2, 4)),
        "gldi": lambda: _gldi(quick),
        "guidance": guidance.rows,
        "uniavgen": lambda: uniavgen.rows(repeats=2 if quick else 5),
        "codecs": lambda: _codec_rows(quick),
        "memory": lambda: ({"estimate vs measured": memory.rows(memory.CASES[:2] if quick else memory.CASES),
                            "memory kit (0 / half / all swapped, fp8)": kit.rows(quick)}, None),
        "gpu": lambda: gpu.rows(quick),
        "cpu": lambda: cpu.rows(quick),
    }


def run(which: str, quick: bool = False, as_json: bool = False) -> str:
    all_suites = suites(quick)
    names = list(all_suites) if which == "all" else [which]
    out, results = [], {}
    for name in names:
        if name not in all_suites:
            raise ValueError(f"unknown bench {name!r}; choose from {sorted(all_suites)} or 'all'")
        result = all_suites[name]()
        tables, summary = result if isinstance(result, tuple) else ({name: result}, None)
        for title, rows in tables.items():
            text = table(title if title == name else f"{name}: {title}", rows)
            print(text, flush=True)  # noqa: T201  (CLI output)
            out.append(text)
        results[name] = summary if summary is not None else (tables if isinstance(result, tuple) else result)
    if as_json:
        line = json.dumps(results[which] if which != "all" else results)
        print(line, flush=True)  # noqa: T201  (CLI output: the last line)
        out.append(line)
    return "\n\n".join(out)

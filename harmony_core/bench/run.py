"""`python -m harmony_core bench {attention,guidance,codecs,memory,cpu,all}`: tables of ratios from one run."""
from __future__ import annotations

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


def suites(quick: bool) -> dict[str, Callable[[], list[dict]]]:
    from . import attention, cpu, guidance, memory

    return {
        "attention": lambda: attention.rows(scales=(1,) if quick else (1, 2, 4)),
        "guidance": guidance.rows,
        "codecs": lambda: _codec_rows(quick),
        "memory": lambda: memory.rows(memory.CASES[:2] if quick else memory.CASES),
        "cpu": lambda: cpu.rows(quick),
    }


def run(which: str, quick: bool = False) -> str:
    all_suites = suites(quick)
    names = list(all_suites) if which == "all" else [which]
    out = []
    for name in names:
        if name not in all_suites:
            raise ValueError(f"unknown bench {name!r}; choose from {sorted(all_suites)} or 'all'")
        text = table(name, all_suites[name]())
        print(text, flush=True)  # noqa: T201  (CLI output)
        out.append(text)
    return "\n\n".join(out)

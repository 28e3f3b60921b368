"""How every benchmark reports: one row per figure, each a ratio against a limit or a peer.

A benchmark script builds `Figure` rows and calls `print_figures`; `make bench` runs every
`benchmarks/bench_*.py` and each prints its own table. Rows are also appended as JSON lines to
`artifacts/bench.jsonl` so a run can be compared with an earlier one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@dataclass(frozen=True)
class Figure:
    """One measured figure, compared with what it should reach.

    `higher_is_better` says which way the comparison goes: a rate must reach `target`,
    a latency or a memory peak must stay under it.
    """

    name: str
    value: float
    unit: str
    target: float
    higher_is_better: bool = True
    peer: str = ""

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.value / self.target if self.target else float("inf")
        return self.target / self.value if self.value else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio >= 1.0


def print_figures(title: str, figures: list[Figure]) -> None:
    print(f"\n== {title}")
    header = f"{'figure':<58} {'value':>14} {'unit':<10} {'target':>12} {'ratio':>7}  ok"
    print(header)
    print("-" * len(header))
    for f in figures:
        sign = ">=" if f.higher_is_better else "<="
        print(
            f"{f.name:<58} {f.value:>14,.1f} {f.unit:<10} {sign}{f.target:>10,.1f} "
            f"{f.ratio:>7.2f}  {'yes' if f.met else 'NO'}"
        )
        if f.peer:
            print(f"    {f.peer}")
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "bench.jsonl").open("a") as out:
        for f in figures:
            out.write(json.dumps({"at": time.time(), "bench": title, **asdict(f)}) + "\n")

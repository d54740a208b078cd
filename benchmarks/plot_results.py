"""Bar chart of the benchmark results: ours vs TRL per benchmark and device, throughput relative to TRL.

Reads `benchmarks/results/*.json` (written by bench_sft.py, bench_rollout.py, bench_ppo.py) and writes
`benchmarks/results/speedup.png`. Each group is one result file; the bars are ours and TRL's throughput divided by
TRL's (so TRL is 1 and ours is the speedup), labelled with the absolute figures.

    python benchmarks/plot_results.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rlhf_lib.artifacts import atomic_path  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = {"sft": 0, "rollout": 1, "ppo": 2}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of result JSON files; the PNG goes there")
    results = p.parse_args().results
    records = [json.loads(f.read_text()) for f in sorted(results.glob("*.json"))]
    if not records:
        raise SystemExit(f"No results in {results}: run the benchmarks first.")
    records.sort(key=lambda r: (r["device"], r["tiny"], ORDER.get(r["benchmark"], 9), r["benchmark"]))
    fig, ax = plt.subplots(figsize=(1.9 * len(records) + 1.5, 4.2))
    width = 0.38
    for i, r in enumerate(records):
        trl, ours = r["trl"]["throughput"], r["ours"]["throughput"]
        for dx, value, absolute, color, label in ((-width / 2, ours / trl, ours, "tab:blue", "ours"),
                                                  (width / 2, 1.0, trl, "tab:gray", "TRL")):
            ax.bar(i + dx, value, width, color=color, label=label if i == 0 else None)
            ax.text(i + dx, value, f"{absolute:,.0f}" if absolute >= 100 else f"{absolute:.1f}", ha="center",
                    va="bottom", fontsize=7)
    labels = [f"{r['benchmark']} ({r['unit']})\n{r['device']}{' tiny' if r['tiny'] else ''}\n"
              f"speedup x{r['speedup']:.2f}" for r in records]
    ax.set_xticks(range(len(records)), labels, fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.6)
    ax.set_ylabel("throughput relative to TRL")
    ax.set_title("Ours vs TRL (bar labels: absolute throughput)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_ylim(0, max(1.0, *(r["speedup"] for r in records)) * 1.2)
    fig.tight_layout()
    out = results / "speedup.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

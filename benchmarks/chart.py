"""docs/images/performance.png from the latest result of each scenario in benchmarks/results.

    python -m benchmarks.chart [--results-dir DIR] [--output PNG] [--markdown]

Left: wall seconds of the extraction against the floor (fewest requests / 10 per second) and the ccxt
peer script, per rate-limited scenario (log scale). Right: the 1M-order run without a rate limit, split
into reading and everything after the last request (merge, sort, write), with peak RSS.
"""

import argparse
import json
import sys
from pathlib import Path

from benchmarks.run import RESULTS, ROOT, SCENARIOS, markdown_table

ORDER = list(SCENARIOS)


def latest(results_dir: Path) -> list[dict]:
    """The newest result file of each known scenario, in the scenarios' order."""
    found: dict[str, tuple[str, dict]] = {}
    for path in results_dir.glob("*.json"):
        try:
            r = json.loads(path.read_text())
        except ValueError:
            continue
        name = r.get("scenario")
        plain = "elapsed_s" in r and not r.get("variant")
        if name in SCENARIOS and plain and (name not in found or r["date"] >= found[name][0]):
            found[name] = (r["date"], r)
    return [found[n][1] for n in ORDER if n in found]


def _load(r: dict) -> str:
    """The machine is shared: the mean 1-min load average during each run, ours / ccxt's."""
    ours, base = r.get("mean_load_during_run"), (r.get("baseline") or {}).get("mean_load_during_run")
    return f"load {ours:.0f}" + (f" / {base:.0f}" if base is not None else "") if ours is not None else ""


def draw(results_dir: Path, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = latest(results_dir)
    limited = [r for r in results if r["parameters"]["server_rate_limit"]]
    unlimited = [r for r in results if not r["parameters"]["server_rate_limit"]]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [3.2, 1]})
    ax = axes[0]
    width = 0.26
    xs = range(len(limited))
    series = (("floor (fewest requests / 10 per s)", "floor_s", "#9e9e9e", -width),
              ("bitget_assets (this project)", "elapsed_s", "#1f77b4", 0.0),
              ("ccxt script, sequential", None, "#ff7f0e", width))
    for label, key, color, dx in series:
        vals = [(r.get(key) if key else (r.get("baseline") or {}).get("elapsed_s")) for r in limited]
        bars = ax.bar([x + dx for x in xs], [v or 0 for v in vals], width, label=label, color=color)
        for bar, v, r in zip(bars, vals, limited, strict=True):
            if not v:
                continue
            note = f"{v:.0f}s"
            if key == "elapsed_s":
                note += f"\n{r['elapsed_over_floor']}x"
            elif key is None:
                note += f"\n{v / r['floor_s']:.2f}x"
            ax.annotate(note, (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(list(xs), [f"{r['scenario']}\n{r['orders']:,} orders / {r['symbols']} sym\n" + _load(r)
                             for r in limited], fontsize=8)
    ax.set_ylabel("wall seconds, end to end (log scale)")
    ax.set_title("Extraction time vs the rate-limit floor (10 order requests/s)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax = axes[1]
    if unlimited:
        r = unlimited[0]
        ph = r["phases"]
        reading = (ph.get("last_request_s") or 0)
        after = ph.get("after_last_request_s") or 0
        ax.bar([0], [reading], 0.5, color="#1f77b4", label="start-up + reading (no rate limit)")
        ax.bar([0], [after], 0.5, bottom=[reading], color="#2ca02c", label="after last request: merge, sort, write")
        ax.annotate(f"{after:.0f}s after reads (target < 30s)\npeak RSS {r['peak_rss_mb'] / 1024:.2f} GiB "
                    "(target < 1.5)", (0, reading + after), ha="center", va="bottom", fontsize=7.5)
        ax.set_xticks([0], [f"{r['scenario']}\n{r['orders']:,} orders\n{_load(r)}"], fontsize=8)
        ax.set_ylabel("wall seconds")
        ax.set_xlim(-0.8, 0.8)
        ax.set_ylim(0, (reading + after) * 1.25)
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.33))
        ax.set_title("1M orders, limits off", fontsize=10)
    else:
        ax.axis("off")
    when = max((r["date"] for r in results), default="")
    m = results[0]["machine"] if results else {}
    fig.suptitle(f"bitget_assets benchmarks, {when}, {m.get('nproc')} x {m.get('cpu_model')}", fontsize=10)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def phases_table(results: list[dict]) -> str:
    """Where each run's wall time went, and the conditions it ran in."""
    cols = ("scenario", "start-up s", "reading s", "after last request s", "merge step s", "merge step RSS MB",
            "exit s", "peak PSS MB", "processes", "complete", "load ours / ccxt", "code")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        ph, code = r["phases"], r.get("code") or {}
        load = f"{r.get('mean_load_during_run')} / {(r.get('baseline') or {}).get('mean_load_during_run', '-')}"
        lines.append("| " + " | ".join(str(x) for x in (
            r["scenario"], ph.get("first_request_s"), ph.get("reading_s"), ph.get("after_last_request_s"),
            ph.get("merge_step_s"), ph.get("merge_step_peak_rss_mb"), ph.get("exit_after_summary_s"),
            r.get("peak_pss_mb"), r.get("max_processes"), r.get("complete"), load,
            f"{code.get('git_head')} ({code.get('bitget_assets_sha256')})")) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "images" / "performance.png")
    parser.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    args = parser.parse_args(argv)
    print(draw(args.results_dir, args.output))
    if args.markdown:
        results = latest(args.results_dir)
        print(markdown_table(results) + "\n\n" + phases_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

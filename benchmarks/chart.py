"""docs/images/performance.png from the latest result of each scenario in benchmarks/results.

    python -m benchmarks.chart [--results-dir DIR] [--output PNG] [--markdown]

Left: wall seconds of the extraction against Bitget's rate-limit floor (the busiest budget's fewest
requests / 10 per second) and the two ccxt peers (sequential; async with the product types concurrently),
per rate-limited scenario (log scale). Right: the runs without a rate limit (merge-1m, merge-3m), split
into reading and everything after the last request (merge, sort, write), with the tree's peak PSS.
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


PSS_TARGET_MB = {"merge-1m": 1024, "merge-3m": 1536}  # issue 14


def draw(results_dir: Path, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = latest(results_dir)
    limited = [r for r in results if r["parameters"]["server_rate_limit"]]
    unlimited = [r for r in results if not r["parameters"]["server_rate_limit"]]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.4), gridspec_kw={"width_ratios": [3.4, 1.2]})
    ax = axes[0]
    width = 0.2
    xs = range(len(limited))
    series = (("rate-limit floor (busiest budget / 10 per s)", lambda r: r.get("floor_s"), "#9e9e9e", -1.5 * width),
              ("bitget_assets (this project)", lambda r: r.get("elapsed_s"), "#1f77b4", -0.5 * width),
              ("ccxt script, sequential", lambda r: (r.get("baseline") or {}).get("elapsed_s"), "#ff7f0e",
               0.5 * width),
              ("ccxt async, product types concurrently", lambda r: (r.get("baseline_async") or {}).get("elapsed_s"),
               "#d62728", 1.5 * width))
    for label, get, color, dx in series:
        vals = [get(r) for r in limited]
        bars = ax.bar([x + dx for x in xs], [v or 0 for v in vals], width, label=label, color=color)
        for bar, v, r in zip(bars, vals, limited, strict=True):
            if not v:
                continue
            note = f"{v:.0f}s" if v >= 10 else f"{v:.1f}s"
            if label.startswith("bitget_assets") and r.get("elapsed_over_floor"):
                note += f"\n{r['elapsed_over_floor']}x"
            elif label.startswith("ccxt async") and not (r.get("baseline_async") or {}).get("counted", True):
                note += f"\n{r['baseline_async']['rate_limited']}x429:\nnot counted"
            ax.annotate(note, (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=6.5)
    ax.set_yscale("log")
    ax.set_xticks(list(xs), [f"{r['scenario']}\n{r['orders']:,} orders / {r['symbols']} sym\n"
                             f"{'+'.join(r.get('streams') or ['orders'])}\n" + _load(r) for r in limited], fontsize=7.5)
    ax.set_ylabel("wall seconds, end to end (log scale)")
    ax.set_title("Extraction time vs Bitget's rate-limit floor and the ccxt peers", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax = axes[1]
    if unlimited:
        xs = list(range(len(unlimited)))
        reading = [r["phases"].get("last_request_s") or 0 for r in unlimited]
        after = [r["phases"].get("after_last_request_s") or 0 for r in unlimited]
        ax.bar(xs, reading, 0.5, color="#1f77b4", label="start-up + reading (no rate limit)")
        ax.bar(xs, after, 0.5, bottom=reading, color="#2ca02c", label="after last request: merge, sort, write")
        for x, r, a, b in zip(xs, unlimited, reading, after, strict=True):
            target = PSS_TARGET_MB.get(r["scenario"])
            ax.annotate(f"{a + b:.0f}s\npeak PSS {r['peak_pss_mb'] / 1024:.2f} GiB"
                        + (f"\n(target {target / 1024:g})" if target else ""), (x, a + b), ha="center",
                        va="bottom", fontsize=7)
        ax.set_xticks(xs, [f"{r['scenario']}\n{r['orders']:,} orders\n{_load(r)}" for r in unlimited], fontsize=8)
        ax.set_ylabel("wall seconds")
        ax.set_xlim(-0.7, len(unlimited) - 0.3)
        ax.set_ylim(0, max(a + b for a, b in zip(reading, after, strict=True)) * 1.3)
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.36))
        ax.set_title("Limits off: merge and memory", fontsize=10)
    else:
        ax.axis("off")
    when = max((r["date"] for r in results), default="")
    m = results[0]["machine"] if results else {}
    code = (results[0].get("code") or {}).get("git_head") if results else ""
    fig.suptitle(f"bitget_assets benchmarks, {when}, code {code}, {m.get('nproc')} x {m.get('cpu_model')}",
                 fontsize=10)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def phases_table(results: list[dict]) -> str:
    """Where each run's wall time went, and the conditions it ran in."""
    cols = ("scenario", "start->1st order request s", "reading s", "after last request s", "Dagster floor s",
            "tail / Dagster floor", "merge step s", "merge step RSS MB", "peak PSS MB", "peak RSS MB", "processes",
            "complete", "load ours / ccxt", "code")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        ph, code = r["phases"], r.get("code") or {}
        load = f"{r.get('mean_load_during_run')} / {(r.get('baseline') or {}).get('mean_load_during_run', '-')}"
        lines.append("| " + " | ".join(str(x) for x in (
            r["scenario"], ph.get("first_request_s"), ph.get("reading_s"), ph.get("after_last_request_s"),
            r.get("dagster_floor_s"), r.get("tail_over_dagster_floor"),
            ph.get("merge_step_s"), ph.get("merge_step_peak_rss_mb"),
            r.get("peak_pss_mb"), r.get("peak_rss_mb"), r.get("max_processes"), r.get("complete"), load,
            f"{code.get('git_head')} ({code.get('bitget_assets_sha256')})")) + " |")
    return "\n".join(lines)


def streams_table(results: list[dict]) -> str:
    """Requests the server saw against the minimum, and each budget's floor, per scenario and endpoint."""
    lines = ["| scenario | endpoint | requests | minimal | floor s | max/s | 429 |", "|---|---|---|---|---|---|---|"]
    for r in results:
        for path, e in (r.get("per_stream") or {}).get("by_endpoint", {}).items():
            lines.append(f"| {r['scenario']} | `{path.split('/api/')[-1]}` | {e['requests']} | {e['minimal']} | "
                         f"{e['floor_s']} | {e['max_per_second'] if e['max_per_second'] is not None else '-'} | "
                         f"{e['rate_limited']} |")
    return "\n".join(lines)


def targets_table(results: list[dict]) -> str:
    lines = ["| scenario | target | measured | met |", "|---|---|---|---|"]
    for r in results:
        for name, t in r.get("targets", {}).items():
            lines.append(f"| {r['scenario']} | {name} {t['target']} | {t['measured']} | "
                         f"{'met' if t['met'] else '**missed**'} |")
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
        print("\n\n".join((markdown_table(results), phases_table(results), streams_table(results),
                             targets_table(results))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Dagster floor: what Dagster itself needs to record N partition materializations of K assets.

A trivial graph shaped like the pipeline's per-symbol step: one multi-asset with K per-symbol partitioned
assets (one per stream that is on), a single-run backfill policy, over N dynamic partitions, executed as ONE
run covering the whole partition range (the same range tags the CLI sets) on a SQLite instance in a fresh
folder, configured like the project's (its dagster.yaml). The asset bodies do nothing, so the time is
Dagster's: registering the partitions, planning the run, and writing one event per partition and asset.
In-process executor: no step process start-up, the cheapest way Dagster runs it.

    python -m benchmarks.dagster_floor --partitions N --assets K --home DIR [--instance-yaml FILE]

`--instance-yaml` measures another kind of instance (e.g. docs/deploy/dagster.postgres.yaml with its DAGSTER_PG_*
variables set), to see what a storage setting does to the floor itself.

Prints one JSON line: seconds to open the instance, to add the partitions, to run, and `floor_s`
(add + run), with the number of materializations the run recorded.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_job(n_assets: int):
    import dagster as dg

    partitions = dg.DynamicPartitionsDefinition(name="symbols")
    specs = [dg.AssetSpec(f"symbol_{i}") for i in range(n_assets)]

    @dg.multi_asset(specs=specs, partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(),
                    can_subset=False)
    def symbol_partitions(context: dg.AssetExecutionContext):
        for spec in specs:  # one output per asset; Dagster records it once per partition of the range
            yield dg.MaterializeResult(asset_key=spec.key)

    return dg.define_asset_job("floor_job", selection=[symbol_partitions], partitions_def=partitions,
                               executor_def=dg.in_process_executor).resolve(
        asset_graph=dg.Definitions(assets=[symbol_partitions]).resolve_asset_graph()), partitions


def measure(n_partitions: int, n_assets: int, home: Path, instance_yaml: Path = ROOT / "dagster.yaml") -> dict:
    import dagster as dg

    home.mkdir(parents=True, exist_ok=True)
    if instance_yaml.exists():
        shutil.copy(instance_yaml, home / "dagster.yaml")
    t0 = time.time()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)  # creates the SQLite storages, as the CLI does before its first run
        t1 = time.time()
        job, partitions = build_job(n_assets)
        keys = [f"SYM{i:04d}USDT:USDT-FUTURES" for i in range(n_partitions)]
        t2 = time.time()
        instance.add_dynamic_partitions(partitions.name, keys)
        t3 = time.time()
        result = job.execute_in_process(instance=instance, tags={
            "dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]})
        t4 = time.time()
        if not result.success:
            raise RuntimeError("the floor job failed")
        recorded = len(result.get_asset_materialization_events())
    expected = n_partitions * n_assets
    if recorded != expected:
        raise RuntimeError(f"the floor run recorded {recorded} materializations, expected {expected}")
    return {"partitions": n_partitions, "assets": n_assets, "materializations": recorded,
            "instance_s": round(t1 - t0, 2), "add_partitions_s": round(t3 - t2, 2), "run_s": round(t4 - t3, 2),
            "floor_s": round(t4 - t3 + t3 - t2, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--assets", type=int, default=1, help="per-symbol assets: one per stream that is on")
    parser.add_argument("--home", type=Path, required=True, help="a fresh folder for the SQLite instance")
    parser.add_argument("--instance-yaml", type=Path, default=ROOT / "dagster.yaml",
                        help="the instance settings (default: the project's dagster.yaml)")
    args = parser.parse_args(argv)
    if args.partitions < 1 or args.assets < 1:
        parser.error("--partitions and --assets must be >= 1")
    if not args.instance_yaml.is_file():  # else the floor would be measured on Dagster's defaults, unnoticed
        parser.error(f"--instance-yaml {args.instance_yaml}: no such file")
    print(json.dumps(measure(args.partitions, args.assets, args.home, args.instance_yaml)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

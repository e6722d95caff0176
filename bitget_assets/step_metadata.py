"""Per-partition metadata for a run over many partitions: the one place that uses a private Dagster attribute.

Dagster's public `add_asset_metadata(metadata, asset_key=, partition_key=)` lists every targeted partition key
(a storage query over all dynamic partitions) on each call, so a run over n symbols costs O(n^2): measured in
docs/performance.md. The keys here were checked against the run's targets by the caller, so they are folded
into the step's metadata accumulator directly. tests/test_step_metadata.py fails the day Dagster renames it;
until it is mended, the public call is used (correct, only slower) and a warning says so.
"""

import warnings

import dagster as dg

ACCUMULATOR = "_metadata_accumulator"


def fast_path_available(step) -> bool:
    accumulator = getattr(step, ACCUMULATOR, None)
    return accumulator is not None and hasattr(accumulator, "with_additional_asset_metadata")


def add_partition_metadata(context: dg.OpExecutionContext, asset_key: dg.AssetKey,
                           metadata_by_key: dict[str, dict]) -> None:
    step = context.get_step_execution_context()
    if not fast_path_available(step):
        warnings.warn("Dagster's step metadata accumulator moved: per-partition metadata uses the slower "
                      "public add_asset_metadata", stacklevel=2)
        for key, metadata in metadata_by_key.items():
            step.add_asset_metadata(metadata, asset_key=asset_key, partition_key=key)
        return
    accumulator = getattr(step, ACCUMULATOR)
    for key, metadata in metadata_by_key.items():
        accumulator = accumulator.with_additional_asset_metadata(asset_key, key, metadata)
    setattr(step, ACCUMULATOR, accumulator)

"""Checks across the published datasets: plans link to the orders they spawned, fills to their orders, and each
finished order's fills add up to its filled size. Pure functions over polars frames, so defects can be crafted.

Each check is judged only where both datasets cover the time: a row whose counterpart would be older than the
oldest row the other dataset holds (Bitget's 90-day edge, or history before the first run) is a warning, not a
failure. Orders that may still be open are left out of the sums (their fills are still arriving).
"""

from dataclasses import dataclass, field

import polars as pl

# partially_filled may be still open or ended (the published files do not say which): not judged.
FINISHED = ("filled", "canceled", "cancelled")
AMOUNT = pl.Decimal(38, 18)  # exact sums of the exchange's decimal strings


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)  # ids that break the rule where both datasets cover it
    warnings: list[str] = field(default_factory=list)  # ids outside what the other dataset covers

    @property
    def passed(self) -> bool:
        return not self.failures


def _first_ctime(df: pl.DataFrame) -> int | None:
    return df["cTime"].cast(pl.Int64).min() if df.height else None


def _split(missing: pl.DataFrame, id_col: str, time_col: str, covered_from: int | None) -> Verdict:
    if not missing.height:
        return Verdict()
    times = missing[time_col].cast(pl.Int64, strict=False).fill_null(0)
    early = times < (covered_from if covered_from is not None else 2**62)
    return Verdict(failures=missing.filter(~early)[id_col].to_list(), warnings=missing.filter(early)[id_col].to_list())


def plans_link_to_orders(plans: pl.DataFrame, orders: pl.DataFrame, orders_from: int | None = None) -> Verdict:
    """Every executed plan's `executeOrderId` is an order we hold."""
    if not plans.height or "executeOrderId" not in plans.columns:
        return Verdict()
    executed = plans.filter((pl.col("planStatus") == "executed") & (pl.col("executeOrderId").fill_null("") != ""))
    missing = executed.filter(~pl.col("executeOrderId").is_in(orders["orderId"].implode()))
    # The spawned order was created when the plan fired: its uTime, else its cTime.
    fired = pl.when(pl.col("uTime").fill_null("") != "").then(pl.col("uTime")).otherwise(pl.col("cTime"))
    missing = missing.with_columns(fired.alias("_fired")) if "uTime" in missing.columns else missing.with_columns(
        pl.col("cTime").alias("_fired"))
    return _split(missing, "orderId", "_fired", _start(orders_from, orders))


def _start(covered_from: int | None, df: pl.DataFrame) -> int | None:
    """Where the other dataset's complete history starts: as recorded by the scans, else its oldest row."""
    return covered_from if covered_from is not None else _first_ctime(df)


def fills_link_to_orders(fills: pl.DataFrame, orders: pl.DataFrame, orders_from: int | None = None) -> Verdict:
    """Every fill's `orderId` is an order we hold."""
    if not fills.height:
        return Verdict()
    missing = fills.filter(~pl.col("orderId").is_in(orders["orderId"].implode()))
    return _split(missing, "tradeId", "cTime", _start(orders_from, orders))


def fills_add_up_to_orders(fills: pl.DataFrame, orders: pl.DataFrame, fills_from: int | None = None) -> Verdict:
    """Per finished order with a filled size, the fills' summed `baseVolume` equals the order's."""
    if not orders.height or "baseVolume" not in orders.columns:
        return Verdict()
    finished = orders.filter(pl.col("status").is_in(FINISHED))
    if "_source" in finished.columns:
        finished = finished.filter(pl.col("_source") != "pending")
    finished = finished.with_columns(pl.col("baseVolume").cast(AMOUNT, strict=False).alias("_filled")).filter(
        pl.col("_filled") > 0)
    sums = (fills.group_by("orderId").agg(pl.col("baseVolume").cast(AMOUNT, strict=False).sum().alias("_fills"))
            if fills.height else pl.DataFrame(schema={"orderId": pl.String, "_fills": AMOUNT}))
    joined = finished.join(sums, on="orderId", how="left").with_columns(pl.col("_fills").fill_null(0))
    wrong = joined.filter(pl.col("_fills") != pl.col("_filled"))
    return _split(wrong, "orderId", "cTime", _start(fills_from, fills))

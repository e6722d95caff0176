"""Time intervals a stream has read completely, and the holes between them (pure functions, no I/O).

Intervals are inclusive millisecond pairs [start, end]; adjacent ones (end + 1 == next start) join.
"""

from datetime import UTC, datetime


def merge_intervals(intervals) -> list[list[int]]:
    """Sorted, joined, non-overlapping intervals."""
    out: list[list[int]] = []
    for start, end in sorted((int(a), int(b)) for a, b in intervals):
        if start > end:
            raise ValueError(f"interval [{start}, {end}] ends before it starts")
        if out and start <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def coverage_gaps(intervals, now_ms: int, retention_ms: int) -> list[tuple[int, int]]:
    """The parts of [now - retention, last covered ms] no interval covers, oldest first.

    Everything the exchange still holds up to the last complete read must have been read; time after that read
    is simply not read yet, and is not a hole. No interval at all: the whole retention window is one hole.
    """
    start = now_ms - retention_ms
    merged = [iv for iv in merge_intervals(intervals) if iv[1] >= start]
    if not merged:
        return [(start, now_ms)]
    gaps, cursor = [], start
    for lo, hi in merged:
        if lo > cursor:
            gaps.append((cursor, lo - 1))
        cursor = max(cursor, hi + 1)
    return gaps


def describe_gaps(gaps) -> str:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return ", ".join(f"[{iso(lo)} .. {iso(hi)}]" for lo, hi in gaps)

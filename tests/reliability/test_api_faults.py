"""API faults: whatever Bitget's edge throws at a run, the history is exactly the truth, byte for byte.

Each fault kind (and all of them at once) gets its own simulator serving the same account, with a seed
chosen so that the first requests provably draw that kind (conftest.FAULTS); the extractions run side by
side, each simulator standing for its own machine (own file rate limiter). Each must equal the fault-free
reference run exactly, and the server must never have admitted more than 10 requests of the account per
endpoint in any 1-s window, nor answered a single 429 it had not injected (a 429 of the client's own making).

The read timeout is 10 s (BitgetResource.read_timeout_s) and neither the CLI nor the environment can lower
it, so slow answers take 12 s here and are kept to one or two per run.
"""

import pytest

from tests.reliability.conftest import FAULTS
from tests.reliability.helpers import assert_equals_truth


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(FAULTS))
def test_faulty_api_still_yields_exactly_the_fault_free_history(matrix, reference, kind):
    run = matrix[kind]
    a = run.audit
    elapsed = run.result.summary["elapsed_s"] if run.result.rc == 0 else "-"
    print(f"\n[fault matrix] {kind}: {a} | elapsed {elapsed} s")
    assert run.result.rc == 0, run.result.stderr[-4000:]
    _, need, _ = FAULTS[kind]
    short = {k: n for k, n in need.items() if a["faults"].get(k, 0) < n}
    assert not short, f"the simulator injected fewer faults than the test needs: {short} (got {a['faults']})"

    assert_equals_truth(run.output.orders, run.truth, kind)
    assert run.truth == reference.truth
    assert run.output.orders == reference.output.orders
    assert run.output.parquet == reference.output.parquet, "orders.parquet differs from the fault-free run"

    # Bitget counts each endpoint separately; the server's limiter enforces it, so this must always hold.
    assert max(a["max_per_s"].values()) <= 10, a
    # ...and the client must never need it: every 429 the server answered was one it injected on purpose
    # (a request drawn into a 429 burst), none came from the server's own limiter refusing our pace.
    assert a["our_429"] == 0, f"{a['our_429']} 429s not injected by the simulator: the client overran the budget"

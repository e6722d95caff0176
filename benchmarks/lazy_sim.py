"""`bitget-sim serve` whose plan orders and fills are generated on first use, for orders-only scenarios.

The simulator derives every plan order and fill from the orders when it starts: for a million orders that is
~1.7 million fills and most of its start-up. A scenario that reads orders alone never asks for them, so
here the account's store defers that work to the first plan or fill request (`OrderStore.plans`/`.fills`
build it then, from the orders as generated). Every orders answer is byte for byte the simulator's.

    python -m benchmarks.lazy_sim serve [bitget-sim serve flags]
"""

import functools
import sys

from bitget_assets.simulator import cli, server
from bitget_assets.simulator.store import OrderStore


def main(argv=None) -> int:
    server.OrderStore = functools.partial(OrderStore, activity=False)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())

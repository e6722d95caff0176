import pytest

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig

NOW = 1_790_000_000_000
DEMO = AccountSpec(name="demo", seed=7, orders=17000, symbols=40, now_ms=NOW, history_days=120,
                   expired_fraction=0.1, open_orders=None, tail_max=5,
                   product_types=("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"))
SMALL = AccountSpec(name="small", seed=3, orders=600, symbols=12, now_ms=NOW)


@pytest.fixture(scope="session")
def sim():
    """A read-only simulator: limits off, frozen data clock. Tests must not mutate it."""
    cfg = SimulatorConfig(rate_limit=None, public_rate_limit=None, frozen=True, seed=1)
    with Simulator([DEMO, SMALL], cfg) as s:
        yield s


@pytest.fixture(scope="session")
def creds(sim):
    return sim.credentials("demo")

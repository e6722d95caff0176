"""The suite's expensive extractions, started when the session starts and run side by side.

A batch is a function of pytest's tmp_path_factory that runs CLI extractions and returns what its tests
assert on. `@batch(needs=..., after=...)` turns it into a session fixture; the conftest's autouse fixture starts,
in background threads, every batch the selected tests use (plus the batches they need). A batch waits for the
results of its `needs` and for the end of its `after` batches (ordering only, to bound the machine's load), so
the whole suite costs about its CPU time rather than the sum of every run's waiting.
"""

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future

import pytest

_BATCHES: dict[str, tuple[Callable, tuple[str, ...], tuple[str, ...]]] = {}
_FUTURES: dict[str, Future] = {}
_CLEANUPS: list[Callable[[], None]] = []
_LOCK = threading.Lock()


def batch(*, needs: tuple[str, ...] = (), after: tuple[str, ...] = ()):
    def register(fn: Callable):
        name = fn.__name__
        _BATCHES[name] = (fn, tuple(needs), tuple(after))

        @pytest.fixture(scope="session", name=name)
        def fixture(_start_batches):
            if name not in _FUTURES:
                raise RuntimeError(f"batch {name} was not started")
            return _FUTURES[name].result()

        fixture.__doc__ = fn.__doc__
        return fixture

    return register


def on_session_end(cleanup: Callable[[], None]) -> None:
    """Run `cleanup` when the session ends (e.g. stop a simulator whose log a later test still reads)."""
    with _LOCK:
        _CLEANUPS.append(cleanup)


def names() -> set[str]:
    return set(_BATCHES)


def start(wanted: set[str], tmp_path_factory) -> None:
    todo, stack = set(wanted), list(wanted)
    while stack:
        for dep in _BATCHES[stack.pop()][1]:
            if dep not in todo:
                todo.add(dep)
                stack.append(dep)
    for name in todo:
        _FUTURES[name] = Future()
    for name in sorted(todo):
        threading.Thread(target=_run, args=(name, tmp_path_factory), name=f"batch-{name}", daemon=True).start()


def _run(name: str, tmp_path_factory) -> None:
    fn, needs, after = _BATCHES[name]
    future = _FUTURES[name]
    try:
        for other in after:
            if other in _FUTURES:
                _FUTURES[other].exception()  # waits; its failure is reported by its own tests
        inputs = {dep: _FUTURES[dep].result() for dep in needs}
        future.set_result(fn(tmp_path_factory, **inputs))
    except BaseException as exc:  # noqa: BLE001 - handed to every test of the batch
        future.set_exception(exc)


def finish() -> None:
    for future in _FUTURES.values():
        future.exception()  # every batch has ended (each CLI run has its own time limit)
    while _CLEANUPS:
        with contextlib.suppress(Exception):  # one failed cleanup must not skip the others
            _CLEANUPS.pop()()

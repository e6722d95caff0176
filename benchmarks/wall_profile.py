"""`python -m benchmarks.wall_profile OUT -- <cli args>`: the CLI's main thread under pyinstrument, waits included.

`python -m pyinstrument` writes its report at interpreter exit, which the CLI skips (`console()` ends with
`os._exit`): so the profile is taken around `cli.main` here and written before the process ends.
"""

import sys

from pyinstrument import Profiler


def main() -> int:
    out, sep, *argv = sys.argv[1:]
    if sep != "--":
        raise SystemExit("usage: python -m benchmarks.wall_profile OUT -- <bitget_assets.cli arguments>")
    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        from bitget_assets import cli  # its imports are part of the critical path

        code = cli.main(argv)
    finally:
        profiler.stop()
        with open(out, "w") as f:
            f.write(profiler.output_text(show_all=True, unicode=False, color=False,
                                         processor_options={"filter_threshold": 0.02}))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())

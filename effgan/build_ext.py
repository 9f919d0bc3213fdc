"""Prebuild the C++ CPU extension: ``python -m effgan.build_ext``.

CI runs this before the tests so the one-time compile is timed on its own; afterwards every
process loads the cached build (see ``effgan/_cpp_build.py`` for where it lives and how it is keyed).
Exit status 1, with the build log's tail on stderr, when the build fails or the built extension
fails its error-path check (see ``_cpp_build.check_error_path``).
"""
from __future__ import annotations

import argparse
import sys

from effgan import _cpp_build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m effgan.build_ext", description=__doc__.splitlines()[0])
    parser.add_argument("--print-dir", action="store_true", help="print the keyed build directory and exit")
    args = parser.parse_args(argv)
    if args.print_dir:
        print(_cpp_build.build_dir())
        return 0
    try:
        module = _cpp_build.build(quiet=False)
        _cpp_build.check_error_path(module)
    except _cpp_build.ExtensionBuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    ops = sorted(name[: -len("_fwd")] for name in dir(module) if name.endswith("_fwd"))
    print("ops: " + ", ".join(ops))
    return 0


if __name__ == "__main__":
    sys.exit(main())

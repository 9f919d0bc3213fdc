"""``python -m effgan.train``: see ``python -m effgan.train --help``."""
from __future__ import annotations

import sys

from effgan.train.cli import parse_config
from effgan.train.trainer import NonFiniteLossError, train

# exit statuses a shell reports for a process ended by SIGINT / SIGTERM
_SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
        result = train(config)
    except NonFiniteLossError as error:
        print(f"effgan.train: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"effgan.train: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an unwritable or missing path, a full disk: checkpoints are written atomically
        print(f"effgan.train: error: {error}", file=sys.stderr)
        return 1
    if result.stopped_by is not None:
        return _SIGNAL_EXIT.get(result.stopped_by, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

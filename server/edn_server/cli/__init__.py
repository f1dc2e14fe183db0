"""The `edn` command line. Each command is a thin wrapper over a library function the server also calls
(cli/commands.py); cli/parser.py declares the arguments. Every failure is `edn: error: CODE: sentence`, exit 2."""
from __future__ import annotations

import os
import sys
import traceback

from ..errors import INTERNAL, EdnError
from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    from ..pose.landmarker import quiet_native_logs

    # A file name that is not valid UTF-8 is printed as its own bytes, not as an encoding error.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    args = build_parser().parse_args(argv)
    from ..media import DISK_ERRNOS, disk_error

    try:
        # The server keeps native logs: hiding them redirects the whole process's stderr for a moment.
        with quiet_native_logs(not args.verbose and args.command != "serve"):
            return args.func(args)
    except EdnError as exc:
        print(f"edn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edn: interrupted; nothing half-written was kept.", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            return _unexpected(exc)
        print(f"edn: error: {disk_error(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback for a user: a code and a sentence (EDN_DEBUG=1 shows it)
        return _unexpected(exc)


def _unexpected(exc: BaseException) -> int:
    if os.environ.get("EDN_DEBUG"):
        traceback.print_exc()
    print(f"edn: error: {INTERNAL}: unexpected {type(exc).__name__}: {exc}. This is a bug in edn: please report it "
          "(run again with EDN_DEBUG=1 for the details).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

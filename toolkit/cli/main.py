"""`ferminet` — the command line. Thin: each command parses arguments, calls one library
function and prints its result. Errors become one line on stderr and a non-zero exit code."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module toolkit.cli.cmd_<name> defines ``register(subparsers)``, which adds its
# sub-command and sets ``func`` (``args -> int``) as the parser default.
COMMAND_MODULES = (
    "demo",
    "convert",
    "profile",
    "info",
    "synthesize",
    "generate",
    "devices",
    "clean",
    "fetch-benchmark",
    "virtual-phone",
    "report",
    "export",
    "predictor",
    "agent",
)


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line naming the problem and where help is, exit code 2 (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ferminet",
        description="Synthesize efficient networks, convert them to validated int8 TFLite, "
        "and measure latency and energy on the host or on Android phones.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress at INFO level, and show TensorFlow's native start-up messages (hidden by "
                             "default; TF_CPP_MIN_LOG_LEVEL, when set, decides instead)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"toolkit.cli.cmd_{name.replace('-', '_')}").register(subparsers)
    return parser


def _error_exit_code(exc: BaseException) -> int | None:
    """Exit code for errors we raise on purpose; None for anything else (a bug)."""
    from toolkit.errors import ToolkitError

    if isinstance(exc, ToolkitError):
        return exc.exit_code
    try:
        from android_harness.errors import HarnessError
    except ImportError:  # pragma: no cover - the harness ships with the toolkit
        return None
    if isinstance(exc, HarnessError):
        return getattr(exc, "exit_code", 8)
    return None


def main(argv: list[str] | None = None) -> int:
    from toolkit.cli._quiet import native_log_filter

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    with native_log_filter(args.verbose):  # before TensorFlow is imported (commands import it lazily)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ferminet: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - mapped to one line below, or re-raised
        code = _error_exit_code(exc)
        if code is None:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"ferminet: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())

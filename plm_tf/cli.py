"""What every `python -m plm_tf.<command>` does with a configuration or data error: one line, exit status 2."""
import sys

_GIN_CONTEXT = "In call to configurable"


def error_line(error):
    """The error's message on one line, without the "In call to configurable ..." lines gin appends."""
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line and not line.startswith(_GIN_CONTEXT)]
    return " ".join(kept) or type(error).__name__


def exit_with_error(program, error, status=2):
    """Prints `<program>: error: <one line>` to stderr and exits with `status` (2: bad input or configuration)."""
    print(f"{program}: error: {error_line(error)}", file=sys.stderr)
    sys.exit(status)

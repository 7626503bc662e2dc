"""What every `python -m plm_tf.<command>` shares: a quiet start-up, and one line + exit status 2 for a
configuration or data error.

Each command module imports this module before TensorFlow. When the process was started as
`python -m plm_tf.<command>`, the import installs `plm_tf.stderr_filter`, which keeps TensorFlow's harmless
C++ start-up lines (including the `E0000 ... failed call to cuInit` and `oneDNN supports DT_INT64 only` ones
that `TF_CPP_MIN_LOG_LEVEL` cannot remove) out of the terminal and passes everything else through. Scripts
call `quiet_startup()` themselves; a library import (a notebook, the tests) leaves stderr alone.
`TF_CPP_MIN_LOG_LEVEL=0` shows every line.
"""
import os
import sys

from plm_tf import stderr_filter

_GIN_CONTEXT = "In call to configurable"


def quiet_startup():
    """Filters TensorFlow's start-up noise from this process's stderr (call before importing TensorFlow).
    Also hides TensorFlow's C++ INFO and WARNING lines unless TF_CPP_MIN_LOG_LEVEL is set; errors still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return stderr_filter.install()


def started_as_command():
    """True when `python -m plm_tf.<something>` started this process."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and (spec.name or "").startswith("plm_tf.")


def error_line(error):
    """The error's message on one line, without the "In call to configurable ..." lines gin appends."""
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line and not line.startswith(_GIN_CONTEXT)]
    return " ".join(kept) or type(error).__name__


def exit_with_error(program, error, status=2):
    """Prints `<program>: error: <one line>` to stderr and exits with `status` (2: bad input or configuration)."""
    print(f"{program}: error: {error_line(error)}", file=sys.stderr)
    sys.exit(status)


if started_as_command():
    quiet_startup()

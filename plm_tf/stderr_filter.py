"""Keeps TensorFlow's harmless C++ start-up lines out of a command's terminal, and nothing else.

Every TensorFlow 2.21 process on a CPU-only machine writes these to stderr from C++ (two copies of the
runtime each log the first three), some before absl logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` cannot
remove them; the two `E` lines are not errors of the run:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. You may see slightly different numerical ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: ...
    E0000 ... util.cc:131] oneDNN supports DT_INT64 only on platforms with AVX-512. Falling back to ...

`install()` points file descriptor 2 at a pipe read by a small child process (`python -S` running this file)
that drops exactly those lines and copies every other byte to the real stderr. `failed call to cuInit` is
dropped only after "Could not find cuda drivers" (no GPU driver installed); on a machine with a driver it is a
real error and shows. Python's own `sys.stderr` (tracebacks, `error:` lines, absl logging) keeps writing to
the real stderr directly, so its order against stdout is unchanged. The child outlives a crashing parent and
forwards what the parent wrote before it died (a C++ `F` check failure, a segfault report).

Set `TF_CPP_MIN_LOG_LEVEL=0` to see everything: the filter is then not installed.
"""
import atexit
import os
import re
import signal
import subprocess
import sys

NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\."),
    re.compile(r"^I\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"),
    re.compile(r"^E\d{4} [\d:. ]+\d+ util\.cc:\d+\] oneDNN supports DT_INT64 only on platforms with AVX-512\."),
)
_NO_DRIVER = NOISE[2]
_CUINIT = re.compile(r"^E\d{4} [\d:. ]+\d+ cuda_platform\.cc:\d+\] failed call to cuInit: ")


class NoiseFilter:
    """`keep(line)` is False for the start-up lines above; it remembers whether the CUDA driver is missing."""

    def __init__(self):
        self.no_cuda_driver = False

    def keep(self, line):
        text = line.decode("utf-8", "replace").rstrip("\r\n") if isinstance(line, bytes) else line.rstrip("\r\n")
        if _NO_DRIVER.match(text):
            self.no_cuda_driver = True
            return False
        if self.no_cuda_driver and _CUINIT.match(text):
            return False
        return not any(pattern.match(text) for pattern in NOISE)


def filter_stream(source, sink):
    """Copies the lines of binary stream `source` to binary stream `sink`, minus the noise, flushing each."""
    noise = NoiseFilter()
    for line in iter(source.readline, b""):
        if noise.keep(line):
            sink.write(line)
            sink.flush()


_installed = None


def install():
    """Routes C-level writes to fd 2 through the filter process (once per process; POSIX only).

    Returns True when the filter is active. Does nothing when `TF_CPP_MIN_LOG_LEVEL=0` asks for every log
    line, when stderr is not a file descriptor, or on platforms without fork/pipes.
    """
    global _installed
    if _installed is not None:
        return True
    if os.name != "posix" or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return False
    try:
        sys.stderr.flush()
        real_stderr = os.dup(2)
    except (OSError, ValueError, AttributeError):
        return False
    child = subprocess.Popen(
        [sys.executable, "-S", "-u", os.path.abspath(__file__)], stdin=subprocess.PIPE, stdout=real_stderr,
        stderr=real_stderr, close_fds=True, start_new_session=True,  # Ctrl-C reaches the command, not the filter
    )
    os.dup2(child.stdin.fileno(), 2)
    # Python-level stderr stays on the terminal (or file) the user gave the command.
    sys.stderr = os.fdopen(os.dup(real_stderr), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                           errors="backslashreplace")
    _installed = (child, real_stderr)
    atexit.register(_uninstall)
    return True


def _uninstall():
    """At exit: fd 2 back to the real stderr, then wait for the filter to forward what is left."""
    global _installed
    if _installed is None:
        return
    child, real_stderr = _installed
    _installed = None
    os.dup2(real_stderr, 2)
    child.stdin.close()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:  # a grandchild still holds the pipe; it keeps forwarding on its own
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # end only when every writer has closed the pipe
    filter_stream(sys.stdin.buffer, sys.stdout.buffer)

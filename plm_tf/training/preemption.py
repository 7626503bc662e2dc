"""SIGTERM (what schedulers and preemptible VMs send before killing a process) as a flag the train loop polls.

Imports nothing heavy, so `python -m plm_tf.train` installs a handler before TensorFlow's import: a SIGTERM at
any moment of start-up (imports, model build, pipeline, restore) is recorded instead of killing the process,
and the trainer's own handler inherits it (`install_preemption_handler` takes over a pending signal of the
handler it replaces).

    with install_preemption_handler() as handler:
        while step < num_train_steps:
            if handler.should_stop:
                manager.save(force=True)
                break
            run_steps(...)
        with handler.interrupting():   # a SIGTERM now raises `Preempted` (e.g. during a long export)
            export(...)
"""
import contextlib
import signal
import threading


class Preempted(Exception):
    """Raised by a stop signal inside `PreemptionHandler.interrupting()`."""


class PreemptionHandler:
    """Records that a stop signal arrived; the train loop polls `should_stop` between steps.

    The signal handler only sets a flag (it runs between Python bytecodes, so a step in progress finishes
    first), except inside `interrupting()`, where it raises `Preempted` to abandon work that can be redone.
    Uninstall restores the previous handlers. Multi-worker: the trainer combines the workers' flags
    (`plm_tf.training.distribution.any_worker`) so that every worker stops at the same step.

    Args:
        signals: the signals to catch (default SIGTERM).
    """

    def __init__(self, signals=(signal.SIGTERM,)):
        self.signals = tuple(signals)
        self._event = threading.Event()
        self._raise = False
        self.received_signal = None
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        self.received_signal = signal.Signals(signum).name
        self._event.set()
        if self._raise:
            self._raise = False
            raise Preempted(self.received_signal)

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("install_preemption_handler() must be called from the main thread.")
        for signum in self.signals:
            previous = signal.signal(signum, self._handle)
            self._previous[signum] = previous
            outer = getattr(previous, "__self__", None)
            if isinstance(outer, PreemptionHandler) and outer.should_stop:  # a signal during start-up
                self.received_signal = outer.received_signal
                self._event.set()
        return self

    def reinstall(self):
        """Installs the handler again after a library replaced it at the C level (TensorFlow's
        MultiWorkerMirroredStrategy does, for its own preemption notifier, so SIGTERM went unnoticed)."""
        for signum in self.signals:
            signal.signal(signum, self._handle)
        return self

    def uninstall(self):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    @property
    def should_stop(self):
        """True once a stop signal arrived: save at this step boundary and leave the loop."""
        return self._event.is_set()

    @contextlib.contextmanager
    def interrupting(self):
        """Within the block a stop signal raises `Preempted` (at once if one already arrived)."""
        if self.should_stop:
            raise Preempted(self.received_signal)
        self._raise = True
        try:
            yield
        finally:
            self._raise = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.uninstall()


def install_preemption_handler(signals=(signal.SIGTERM,)):
    """Installs a `PreemptionHandler` for `signals` (default SIGTERM) and returns it.

    Use as a context manager to restore the previous handlers when training ends.
    """
    return PreemptionHandler(signals).install()

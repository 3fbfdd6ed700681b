"""Validator processes: an import's batches checked in child processes, returned in file order.

Validation is Python and holds the GIL, so the job's process hands its batches
to ``REGISTRY_IMPORT_PROCESSES`` children and meanwhile reads the file and
stores the batches already checked. The children are started with
``subprocess`` (``python -m registry.imports.pool``), not forked: the job's
process may have threads (the store's, an in-process test worker's) whose
locks a fork would copy held, and a prefork Celery child is daemonic, which
multiprocessing refuses to start children from.

Each child reads frames from its stdin: the job's ``CheckSettings`` first,
then batches of rows; it answers each batch with a ``Checked`` on its stdout,
in order. Batch *k* goes to child *k mod N*, so reading the answers round-robin
gives them back in file order. A frame is a 4-byte length and a pickle; the
pipes join the job's process to the children it started, nothing else.

A child exits at the end of its stdin: when the job's process closes the pipe
(the job ended, well or not) or dies (SIGKILL, out of memory: the kernel
closes its end). A child that dies makes the job fail with
``ValidationProcessLost``, at once: its stdout ends, the job's process sees it.
"""
from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from registry.errors import ApiError
from registry.imports.batches import BatchChecker, Checked, CheckSettings

_LENGTH = struct.Struct("!I")
# Batches handed to the children and not yet taken back, per child: enough to keep each busy while the
# job's process reads the file and stores, few enough to bound memory.
IN_FLIGHT_PER_PROCESS = 2
_END = object()


class ValidationProcessLost(ApiError):
    code, title = "import-process-lost", "A process validating the file stopped"


def _lost() -> ValidationProcessLost:
    return ValidationProcessLost("A process validating the file stopped (killed, or out of memory: "
                                 "REGISTRY_WORKER_MAX_MEMORY_MB). Nothing was imported: start the import again.")


def process_count(setting: int) -> int:
    """REGISTRY_IMPORT_PROCESSES, 0 meaning one per CPU this process may run on."""
    if setting > 0:
        return setting
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def write_frame(stream, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_frame(stream):
    """The next value, or ``_END`` at the end of the stream (also part-way through a frame)."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return _END
    size = _LENGTH.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        return _END
    return pickle.loads(data)


class ValidatorProcesses:
    """``processes`` children checking batches; ``checked(batches)`` yields their ``Checked`` in order.

    Use as a context manager: leaving it ends the children (at once after an error) and the thread feeding them.
    """

    def __init__(self, settings: CheckSettings, processes: int):
        self.processes: list[subprocess.Popen] = []
        self._feeder: threading.Thread | None = None
        self._stopping = threading.Event()
        self._slots = threading.Semaphore(IN_FLIGHT_PER_PROCESS * processes)
        environment = dict(os.environ)
        # The children import this same registry package (a worktree, a bench's checkout), not another install.
        source = str(Path(__file__).resolve().parents[2])
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, (source, environment.get("PYTHONPATH"))))
        try:
            for _ in range(processes):
                child = subprocess.Popen([sys.executable, "-m", "registry.imports.pool"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=environment, cwd=source)
                self.processes.append(child)
                write_frame(child.stdin, settings)
        except BrokenPipeError:  # a child died as it started
            self.close()
            raise _lost() from None
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.processes]

    def checked(self, batches: Iterable[list]) -> Iterator[Checked]:
        """Each batch's ``Checked``, in order. An error of ``batches`` (the reader refusing the file part-way)
        is raised after the batches before it.

        :raises ValidationProcessLost: a child died.
        """
        order: queue.Queue = queue.Queue()
        self._feeder = threading.Thread(target=self._feed, args=(batches, order), name="import-feeder",
                                        daemon=True)
        self._feeder.start()
        while True:
            item = order.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            answer = read_frame(self.processes[item].stdout)
            self._slots.release()
            if answer is _END:
                raise _lost()
            if isinstance(answer, BaseException):
                raise answer
            yield answer

    def _feed(self, batches: Iterable[list], order: queue.Queue) -> None:
        """On its thread: read the batches (the file) and send them round-robin; then close the children's
        stdin, so that they exit once their last batch is answered."""
        children = self.processes
        try:
            for index, batch in enumerate(batches):
                while not self._slots.acquire(timeout=0.5):
                    if self._stopping.is_set():
                        return
                if self._stopping.is_set():
                    return
                child = index % len(children)
                write_frame(children[child].stdin, batch)
                order.put(child)
            order.put(_END)
        except (BrokenPipeError, ValueError):  # a child died (or close() closed its pipe): its answer tells
            order.put(_lost())
        except BaseException as exc:  # the reader refused the file: raised by checked(), in order
            order.put(exc)
        finally:
            for child in children:
                try:
                    child.stdin.close()
                except (BrokenPipeError, OSError):
                    pass

    def close(self) -> None:
        """End the children and the feeding thread: after the last answer the children are exiting already;
        after an error they are killed (what they were checking is dropped)."""
        self._stopping.set()
        for child in self.processes:
            if child.poll() is None:
                try:
                    child.wait(timeout=0 if self._feeder is None or self._feeder.is_alive() else 5)
                except subprocess.TimeoutExpired:
                    pass
            if child.poll() is None:
                child.kill()
        for child in self.processes:
            child.wait()
        if self._feeder is not None:
            self._feeder.join()
        for child in self.processes:
            for stream in (child.stdin, child.stdout):
                try:
                    stream.close()
                except (BrokenPipeError, OSError):
                    pass

    def __enter__(self) -> ValidatorProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(incoming, outgoing) -> None:
    """A child's life: settings, then a ``Checked`` answered for each batch, until the end of ``incoming``.

    An error while checking is answered as a bare exception of its type (its message may quote the file).
    """
    settings = read_frame(incoming)
    if settings is _END:
        return
    try:
        checker = BatchChecker(settings)
    except Exception as exc:
        write_frame(outgoing, RuntimeError(f"a validator process could not start: {type(exc).__name__}"))
        return
    while True:
        batch = read_frame(incoming)
        if batch is _END:
            return
        try:
            answer = checker.check(batch)
        except MemoryError:
            answer = MemoryError()
        except Exception as exc:
            answer = RuntimeError(f"a validator process failed: {type(exc).__name__}")
        write_frame(outgoing, answer)


def main() -> None:
    import gc
    gc.disable()  # the batches are lists of tuples and strings: the cyclic collector only slows the loop
    incoming, outgoing = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    try:
        serve(incoming, outgoing)
    except BrokenPipeError:  # the job's process is gone: nobody reads the answers
        pass


if __name__ == "__main__":
    main()

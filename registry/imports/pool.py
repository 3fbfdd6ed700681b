"""Validator processes: an import's batches checked in child processes, returned in file order.

Validation is Python and holds the GIL, so the job's process hands its batches
to ``REGISTRY_IMPORT_PROCESSES`` children and meanwhile reads the file and
stores the batches already checked. The children are started with
``subprocess`` (``python -m registry.imports.pool``), not forked: the job's
process may have threads (the store's, an in-process test worker's) whose
locks a fork would copy held, and a prefork Celery child is daemonic, which
multiprocessing refuses to start children from.

Each child reads frames from its stdin: the job's ``CheckSettings`` first,
then batches of rows; it says when it is ready (its code lists and gazetteer
loaded: seconds on a busy machine) and answers each batch with a ``Checked``
on its stdout, in order. Until a child is ready, and whenever every ready child
has its share of batches, the job's process checks the next batch itself; the
order in which batches were handed out (to which child, or kept) gives the
answers back in file order. A frame is a 4-byte length and a pickle; the pipes
join the job's process to the children it started, nothing else.

A child exits at the end of its stdin: when the job's process closes the pipe
(the job ended, well or not) or dies (SIGKILL, out of memory: the kernel
closes its end). A child that dies (its stdout ends without its last word)
makes the job fail with ``ValidationProcessLost``, whether or not it had
batches: the job's process sees it at once, on the thread reading that child.
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
_READY, _DONE = "ready", "done"  # a child's first and last words
_LOST = object()
# Whether the job's process checks batches while no child can take one (at the start, before the children are
# ready; tests switch it off to make the children do every batch).
JOB_PROCESS_CHECKS = True


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
    """``processes`` children checking batches; ``checked(batches, checker)`` yields every batch's ``Checked`` in
    order, ``checker`` (this process's) taking the batches no child could take.

    Use as a context manager: leaving it ends the children (at once after an error) and the threads serving them.
    """

    def __init__(self, settings: CheckSettings, processes: int):
        self.processes: list[subprocess.Popen] = []
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()  # a child ready or answering, a kept batch checked, stopping
        self._stopping = False
        self._lost = False
        self._ready: list[bool] = []
        self._in_flight: list[int] = []
        self._answers: list[queue.Queue] = []
        self._checking_here = False
        environment = dict(os.environ)
        # The children import this same registry package (a worktree, a bench's checkout), not another install.
        source = str(Path(__file__).resolve().parents[2])
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, (source, environment.get("PYTHONPATH"))))
        try:
            for number in range(processes):
                child = subprocess.Popen([sys.executable, "-m", "registry.imports.pool"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=environment, cwd=source)
                self.processes.append(child)
                self._ready.append(False)
                self._in_flight.append(0)
                self._answers.append(queue.Queue())
                write_frame(child.stdin, settings)
                self._start(self._read, number, name=f"import-validator-{number}")
        except BrokenPipeError:  # a child died as it started
            self.close()
            raise _lost() from None
        except BaseException:
            self.close()
            raise

    def _start(self, target, *args, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.processes]

    def checked(self, batches: Iterable[list], checker: BatchChecker) -> Iterator[Checked]:
        """Each batch's ``Checked``, in order; ``checker`` (this process's) checks the batches kept here and
        geocodes the cities of those sent. An error of ``batches`` (the reader refusing the file part-way) is
        raised after the batches before it.

        :raises ValidationProcessLost: a child died.
        """
        order: queue.Queue = queue.Queue()
        self._start(self._feed, batches, checker, order, name="import-feeder")
        while True:
            item = order.get()
            if self._lost:
                raise _lost()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, list):  # a batch kept here
                answer = checker.check(item)
                with self._changed:
                    self._checking_here = False
                    self._changed.notify_all()
            else:
                answer = self._answers[item].get()
                with self._changed:
                    self._in_flight[item] -= 1
                    self._changed.notify_all()
                if answer is _LOST:
                    raise _lost()
                if isinstance(answer, BaseException):
                    raise answer
            yield answer

    def _take(self) -> int | None:
        """The child to send the next batch to (None: check it here), once one can take it; -1 when stopping."""
        with self._changed:
            while True:
                if self._stopping or self._lost:
                    return -1
                free = [n for n, ready in enumerate(self._ready)
                        if ready and self._in_flight[n] < IN_FLIGHT_PER_PROCESS]
                if free:
                    child = min(free, key=self._in_flight.__getitem__)
                    self._in_flight[child] += 1
                    return child
                if JOB_PROCESS_CHECKS and not self._checking_here:
                    self._checking_here = True
                    return None
                self._changed.wait(0.5)

    def _feed(self, batches: Iterable[list], checker: BatchChecker, order: queue.Queue) -> None:
        """On its thread: read the batches (the file) and hand them out; then close the children's stdin, so
        that they exit once their last batch is answered."""
        try:
            for batch in batches:
                child = self._take()
                if child == -1:
                    order.put(_END)  # checked() raises for the lost child, or is no longer listening
                    return
                if child is None:
                    order.put(batch)
                else:
                    write_frame(self.processes[child].stdin, (batch, checker.cities(batch)))
                    order.put(child)
            order.put(_END)
        except (BrokenPipeError, ValueError):  # a child died (or close() closed its pipe)
            self._set_lost()
            order.put(_END)
        except BaseException as exc:  # the reader refused the file: raised by checked(), in order
            order.put(exc)
        finally:
            for child in self.processes:
                try:
                    child.stdin.close()
                except (BrokenPipeError, OSError):
                    pass

    def _read(self, number: int) -> None:
        """On its thread: a child's words, until its stdout ends (without its last word: the child was lost)."""
        stream, answers = self.processes[number].stdout, self._answers[number]
        while True:
            frame = read_frame(stream)
            if frame == _READY:
                with self._changed:
                    self._ready[number] = True
                    self._changed.notify_all()
            elif frame == _DONE:
                return
            elif frame is _END:
                if not self._stopping:
                    self._set_lost()
                answers.put(_LOST)
                return
            else:
                answers.put(frame)

    def _set_lost(self) -> None:
        with self._changed:
            self._lost = True
            self._changed.notify_all()

    def close(self) -> None:
        """End the children and the threads: after the last answer the children are exiting already; after an
        error they are killed (what they were checking is dropped)."""
        with self._changed:
            finished = not self._lost and all(not child.stdin or child.stdin.closed for child in self.processes)
            self._stopping = True
            self._changed.notify_all()
        for child in self.processes:
            if finished:
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if child.poll() is None:
                child.kill()
        for child in self.processes:
            child.wait()
        for thread in self._threads:
            thread.join()
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
    """A child's life: settings, ready, then a ``Checked`` answered for each batch until the end of
    ``incoming``, then done.

    An error while checking is answered as a bare exception of its type (its message may quote the file).
    """
    settings = read_frame(incoming)
    if settings is _END:
        return
    try:
        checker = BatchChecker(settings)
        checker.warm()
    except Exception as exc:
        write_frame(outgoing, RuntimeError(f"a validator process could not start: {type(exc).__name__}"))
        return
    write_frame(outgoing, _READY)
    while True:
        frame = read_frame(incoming)
        if frame is _END:
            write_frame(outgoing, _DONE)
            return
        try:
            answer = checker.check(*frame)
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

"""Run jobs that depend on each other as subprocesses, several at once within a CPU-thread budget.

The quickstart's tokenizers each train on one thread: run one after another they leave the second
core of a 2-core machine idle for most of an hour. Here a job starts as soon as every job it needs
has finished and its threads fit beside the running ones (a job wider than the budget runs alone).
Jobs start in the order given: one that is ready but waits for threads holds back the jobs after
it, so a wide job on the critical path is not starved by a stream of narrow ones.

    run_jobs([Job("a"), Job("b"), Job("c", needs=("a", "b"), threads=2)], launch, threads_available=2)
"""
from __future__ import annotations

import logging
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A named unit of work: the jobs it `needs` finish first; it uses `threads` CPU threads."""

    name: str
    needs: tuple[str, ...] = ()
    threads: int = 1


class JobFailed(RuntimeError):
    """A job's process exited with an error; the message names the job and its log."""


def latest_progress(log_file: Path, tail_bytes: int = 4096) -> str:
    """The last progress-bar count ('412/1200') written to a job's log, '' when none yet."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - tail_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    counts = re.findall(r"(\d+/\d+) \[", text)
    return counts[-1] if counts else ""


def log_tail(log_file: Path, lines: int = 15) -> str:
    """The last lines of a log, progress-bar redraws (carriage returns) reduced to their last state."""
    if not log_file.is_file():
        return "(no log)"
    text = log_file.read_text(errors="replace")
    kept = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(kept[-lines:])


def _ready(job: Job, done: set[str], known: set[str]) -> bool:
    # A need that is not among the jobs (a stage left out by --only) counts as done.
    return all(need in done or need not in known for need in job.needs)


def _fits(job: Job, running: dict, threads_available: int) -> bool:
    used = sum(entry[0].threads for entry in running.values())
    return not running or used + job.threads <= threads_available


def _stop(running: dict) -> None:
    """Terminate running jobs (their work resumes next time from their own checkpoints)."""
    for _, process, _ in running.values():
        process.terminate()
    for job, process, _ in running.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.info("job %s stopped", job.name)


def run_jobs(jobs: Sequence[Job], launch: Callable[[Job], Optional[tuple[subprocess.Popen, Path]]],
             threads_available: int, on_finish: Callable[[Job, bool], None] = lambda job, ran: None,
             on_poll: Callable[[dict[str, str]], None] = lambda progress: None, poll_s: float = 1.0) -> list[str]:
    """Run `jobs`; `launch(job)` starts one and returns (process, log file), or None when it needs
    no run. `on_finish(job, ran)` is called as each completes, `on_poll({name: latest progress})`
    every `poll_s` seconds. Returns the names in the order they completed. On a failure the other
    running jobs are stopped and JobFailed names the job, its exit code and its log's last lines."""
    known, pending = {job.name for job in jobs}, list(jobs)
    done: list[str] = []
    running: dict[str, tuple[Job, subprocess.Popen, Path]] = {}
    try:
        while pending or running:
            for job in [job for job in pending if _ready(job, set(done), known)]:
                if not _fits(job, running, threads_available):
                    break
                pending.remove(job)
                started = launch(job)
                if started is None:  # nothing to do: it counts as done at once
                    done.append(job.name)
                    on_finish(job, False)
                else:
                    running[job.name] = (job, *started)
            for name, (job, process, log_file) in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[name]
                if code != 0:  # the handler below stops the others
                    raise JobFailed(f"stage {name} failed (exit code {code}); its log {log_file} ends:\n"
                                    f"{log_tail(log_file)}")
                done.append(name)
                on_finish(job, True)
            on_poll({name: latest_progress(log_file) for name, (_, _, log_file) in running.items()})
            if running:
                time.sleep(poll_s)
            elif pending and not any(_ready(job, set(done), known) for job in pending):
                raise JobFailed(f"jobs {[job.name for job in pending]} wait on each other")
    except BaseException:
        _stop(running)
        raise
    return done

"""Jobs with dependencies side by side in subprocesses (the parallel quickstart's scheduler)."""
import subprocess
import sys
import time

import pytest

from fourm.stage_scheduler import Job, JobFailed, latest_progress, run_jobs


def sleeper(tmp_path, seconds: float, code: int = 0, text: str = ""):
    """A launch function's result: a process that prints `text`, sleeps, exits with `code`."""
    def launch(job):
        log_file = tmp_path / f"{job.name}.log"
        script = f"import sys, time; print({text!r}, flush=True); time.sleep({seconds}); sys.exit({code})"
        with open(log_file, "w") as handle:
            process = subprocess.Popen([sys.executable, "-c", script], stdout=handle, stderr=subprocess.STDOUT)
        return process, log_file
    return launch


def timed_run(tmp_path, jobs, threads, seconds=0.6):
    spans, launch = {}, sleeper(tmp_path, seconds)

    def start(job):
        spans[job.name] = [time.monotonic(), None]
        return launch(job)

    def finish(job, ran):
        spans[job.name][1] = time.monotonic()

    order = run_jobs(jobs, start, threads, on_finish=finish, poll_s=0.05)
    return order, spans


def overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_independent_jobs_run_side_by_side_and_dependants_wait(tmp_path):
    jobs = [Job("a"), Job("b"), Job("c", needs=("a", "b"))]
    order, spans = timed_run(tmp_path, jobs, threads=2)
    assert overlap(spans["a"], spans["b"])
    assert spans["c"][0] >= max(spans["a"][1], spans["b"][1])
    assert order[-1] == "c"


def test_the_thread_budget_holds(tmp_path):
    _, one_core = timed_run(tmp_path, [Job("a"), Job("b")], threads=1)
    assert not overlap(one_core["a"], one_core["b"])
    _, wide = timed_run(tmp_path, [Job("a"), Job("wide", threads=2), Job("b")], threads=2)
    assert not overlap(wide["wide"], wide["a"]) and not overlap(wide["wide"], wide["b"])
    assert wide["b"][0] >= wide["wide"][1]  # the waiting wide job is not overtaken by a later one


def test_a_job_that_needs_no_run_counts_as_done(tmp_path):
    launched, launch = [], sleeper(tmp_path, 0.1)

    def maybe(job):
        launched.append(job.name)
        return None if job.name == "a" else launch(job)

    finished = []
    order = run_jobs([Job("a"), Job("b", needs=("a",))], maybe, 2,
                     on_finish=lambda job, ran: finished.append((job.name, ran)), poll_s=0.05)
    assert order == ["a", "b"] and finished == [("a", False), ("b", True)]


def test_a_failure_names_the_job_and_its_log_and_stops_the_others(tmp_path):
    failing, slow = sleeper(tmp_path, 0.1, code=3, text="boom: bad config"), sleeper(tmp_path, 30)
    started = {}

    def launch(job):
        started[job.name] = (failing if job.name == "bad" else slow)(job)
        return started[job.name]

    begin = time.monotonic()
    with pytest.raises(JobFailed, match=r"stage bad failed \(exit code 3\)(.|\n)*boom: bad config"):
        run_jobs([Job("slow"), Job("bad"), Job("after", needs=("bad",))], launch, 2, poll_s=0.05)
    assert time.monotonic() - begin < 20  # the 30 s job was stopped, not waited for
    assert started["slow"][0].poll() is not None and "after" not in started


def test_a_need_left_out_counts_as_done(tmp_path):
    order, _ = timed_run(tmp_path, [Job("c", needs=("not_selected",))], threads=2, seconds=0.05)
    assert order == ["c"]


def test_latest_progress_reads_the_last_bar_state(tmp_path):
    log_file = tmp_path / "x.log"
    assert latest_progress(log_file) == ""
    log_file.write_text("INFO start\ntokenizer depth:  3%| | 18/600 [00:04<01:51]\r"
                        "tokenizer depth:  5%| | 30/600 [00:06<01:50]")
    assert latest_progress(log_file) == "30/600"

"""One reading of a run's events (`runs.RunHistory`): where attempts start and end, the curves, the
samples, the status and the failure with its topic. The events of a real demo run, and hand-written
folders for what a real run rarely leaves: a resume after a kill, a `finished` without a `started`, a
cut last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core import runs
from studio.core.recipe import DataSection
from studio.core.runs import RunHistory
from studio.core.training import ownership
from studio.core.training.events import EventWriter, read_events
from studio.core.training.failures import FAILURE_KINDS, FAILURE_TITLES, Failure, title_of
from tests.demo_runs import demo_recipe, finished_demo_run, train_in_process


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    return finished_demo_run(tmp_path_factory.mktemp("history-home"), "history", sample_every=3)


def _folder(path: Path, events: list[dict], tail: str = "") -> Path:
    path.mkdir(parents=True)
    text = "".join(json.dumps(dict(e, time=float(i))) + "\n" for i, e in enumerate(events))
    (path / runs.EVENTS).write_text(text + tail, encoding="utf-8")
    return path


def _steps(*pairs) -> list[dict]:
    return [{"type": "step", "step": s, "loss": v} for s, v in pairs]


# ---------------------------------------------------------------------------------------------
# A real run
# ---------------------------------------------------------------------------------------------


def test_the_history_of_a_real_run(demo_run):
    events = read_events(demo_run / runs.EVENTS)
    history = RunHistory.read(demo_run)
    assert history.count == len(events) and history.status == "completed"
    assert history.started is history.first_started and history.started["total_steps"] == 6
    assert history.finished["status"] == "completed" and history.finished["step"] == 6
    assert history.last_ended is history.finished and history.failure is None and history.error is None
    assert [s for s, _ in history.series["loss"]] == [e["step"] for e in events if e["type"] == "step"]
    assert history.last_loss == history.series["loss"][-1] and history.total_steps == 6
    assert history.samples == [e for e in events if e["type"] == "sample"]
    assert {e["step"] for e in history.samples} == {3, 6} and all(e["text"] for e in history.samples)
    # every reader of the folder tells the same story
    summary = runs.summarize_run(demo_run)
    facts = runs.read_run(demo_run)
    assert summary.status == facts.status == runs.status_of(demo_run) == "completed"
    assert summary.step == facts.step == 6 and summary.final_loss == facts.final_loss == history.last_loss[1]
    assert summary.total_steps == facts.total_steps == 6 and summary.losses == facts.losses == history.series["loss"]
    assert summary.started == history.first_started["time"] and facts.train_rows == history.started["train_rows"]
    assert runs.is_completed(demo_run, history)


def test_events_added_one_by_one_tell_the_same(demo_run):
    events = read_events(demo_run / runs.EVENTS)
    live = RunHistory()
    for i, event in enumerate(events):
        live.add(event)
        assert live.finished is None or i == len(events) - 1  # a run ends with its one `finished`
    whole = RunHistory.from_events(events)
    assert (live.series, live.samples, live.started, live.finished) == (whole.series, whole.samples, whole.started,
                                                                       whole.finished)
    assert live.ended_after(len(events) - 1) and not live.ended_after(len(events))


def test_a_worker_owning_the_folder_makes_it_running(demo_run):
    lock = ownership.acquire(demo_run)
    try:
        assert runs.status_of(demo_run) == "running" and RunHistory.read(demo_run).status == "completed"
        assert runs.summarize_run(demo_run).status == "running"
    finally:
        lock.release()


@pytest.mark.parametrize("bad,topic", [("data", "data"), ("model", "model")])
def test_a_run_that_fails_its_checks_says_what_to_fix(tmp_path, bad, topic):
    """The worker gives the failure its topic where it finds it, so the window opens the page that fixes it."""
    missing = str(tmp_path / "nowhere")
    config = demo_recipe("fails", data=DataSection(source=missing) if bad == "data" else None,
                         model=missing if bad == "model" else "demo")
    run_dir, code = train_in_process(config, tmp_path / "home", tmp_path / "run")
    assert code == 2
    history = RunHistory.read(run_dir)
    assert history.status == "failed" and history.started is None  # it failed before training started
    assert history.failure.kind == "bad_input" and history.failure.topic == topic and history.failure.message
    assert history.error["topic"] == topic and runs.summarize_run(run_dir).error["topic"] == topic


# ---------------------------------------------------------------------------------------------
# Hand-written folders: the edge cases
# ---------------------------------------------------------------------------------------------


def test_a_resume_after_a_kill_continues_the_curve(tmp_path):
    first = [{"type": "started", "total_steps": 6, "resumed_from_step": 0}, *_steps((1, 2.0), (2, 1.8), (3, 1.6)),
             {"type": "checkpoint", "step": 3, "path": "checkpoints/checkpoint-3"}, *_steps((4, 1.5), (5, 1.4))]
    # killed at step 5: no `finished`; the launcher was not there to write one
    assert RunHistory.from_events(first).status == "interrupted"
    second = [{"type": "started", "total_steps": 6, "resumed_from_step": 3}, *_steps((4, 1.45)),
              {"type": "eval", "step": 4, "eval_loss": 1.5}, *_steps((5, 1.35), (6, 1.3)),
              {"type": "finished", "status": "completed", "step": 6, "eval_loss": 1.49}]
    history = RunHistory.read(_folder(tmp_path / "run", first + second))
    assert history.series["loss"] == [(1, 2.0), (2, 1.8), (3, 1.6), (4, 1.45), (5, 1.35), (6, 1.3)]
    assert history.series["eval_loss"] == [(4, 1.5)] and history.last_eval_loss == 1.5
    assert history.first_started["resumed_from_step"] == 0 and history.started["resumed_from_step"] == 3
    assert history.status == "completed" and history.finished["step"] == 6


def test_a_resume_forgets_the_steps_after_its_checkpoint(tmp_path):
    """The resumed attempt failed before it logged steps 4 and 5 again: the curve ends where it restarted."""
    events = [{"type": "started", "total_steps": 6}, *_steps((1, 2.0), (2, 1.8), (3, 1.6), (4, 1.5), (5, 1.4)),
              {"type": "eval", "step": 4, "eval_loss": 1.55},
              {"type": "started", "total_steps": 6, "resumed_from_step": 3},
              {"type": "finished", "status": "failed",
               "error": {"kind": "out_of_memory", "message": "The GPU ran out of memory.", "advice": "Lower the batch."}}]
    run_dir = _folder(tmp_path / "run", events)
    history = RunHistory.read(run_dir)
    assert history.series["loss"] == [(1, 2.0), (2, 1.8), (3, 1.6)] and history.series["eval_loss"] == []
    assert history.status == "failed" and history.failure.kind == "out_of_memory"
    assert history.failure.topic == "memory"  # written before topics existed: the kind's own
    summary = runs.summarize_run(run_dir, with_size=False)
    assert summary.step == 3 and summary.status == "failed" and summary.error["kind"] == "out_of_memory"
    assert summary.failure == history.failure


def test_an_attempt_that_failed_its_checks_has_a_finished_without_a_started(tmp_path):
    cancelled = [{"type": "started", "total_steps": 6}, *_steps((1, 2.0), (2, 1.8)),
                 {"type": "finished", "status": "cancelled", "step": 2}]
    bad_resume = {"type": "finished", "status": "failed",
                  "error": Failure("bad_input", "The data file is gone.", "Choose it again.", topic="data").as_dict()}
    history = RunHistory.read(_folder(tmp_path / "run", cancelled + [bad_resume]))
    assert history.status == "failed" and history.finished["error"]["topic"] == "data"
    assert history.started is not None and history.last_ended is history.finished
    alone = RunHistory.from_events([bad_resume])
    assert alone.status == "failed" and alone.started is None and alone.first_started is None
    assert alone.failure == Failure("bad_input", "The data file is gone.", "Choose it again.", "data")
    assert RunHistory.from_events([]).status == "created" and RunHistory().failure is None


def test_an_earlier_attempts_end_is_not_the_last_attempts(tmp_path):
    """Cancelled, then resumed and still training (or killed): the run has not ended, but the adapter
    there is was saved when the cancelled attempt ended (the export's step)."""
    events = [{"type": "started", "total_steps": 6}, *_steps((1, 2.0), (2, 1.8)),
              {"type": "finished", "status": "cancelled", "step": 2, "eval_loss": 1.9},
              {"type": "started", "total_steps": 6, "resumed_from_step": 2}, *_steps((3, 1.7))]
    history = RunHistory.from_events(events)
    assert history.finished is None and history.status == "interrupted" and history.error is None
    assert history.last_ended["status"] == "cancelled" and history.last_loss == (3, 1.7)


def test_a_cut_last_line_is_skipped(tmp_path):
    events = [{"type": "started", "total_steps": 4}, *_steps((1, 2.0), (2, 1.8))]
    run_dir = _folder(tmp_path / "run", events, tail='{"type": "step", "step": 3, "lo')
    history = RunHistory.read(run_dir)
    assert history.count == 3 and history.last_loss == (2, 1.8) and history.status == "interrupted"
    # the next worker's events start on a line of their own: the cut line stays alone, and is skipped
    writer = EventWriter(run_dir / runs.EVENTS, echo=None)
    writer.emit("started", total_steps=4, resumed_from_step=2)
    writer.emit("step", step=3, loss=1.6)
    writer.emit("finished", status="completed", step=3)
    writer.close()
    history = RunHistory.read(run_dir)
    assert history.count == 6 and history.last_loss == (3, 1.6) and history.status == "completed"


def test_reading_from_an_offset_reads_one_attempt(tmp_path):
    first = [{"type": "started", "total_steps": 4}, *_steps((1, 2.0)), {"type": "finished", "status": "cancelled", "step": 1}]
    run_dir = _folder(tmp_path / "run", first)
    offset = (run_dir / runs.EVENTS).stat().st_size
    with open(run_dir / runs.EVENTS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": "started", "time": 9.0, "total_steps": 4, "resumed_from_step": 1}) + "\n")
    attempt = RunHistory.read(run_dir, offset)
    assert attempt.count == 1 and attempt.last_ended is None and attempt.status == "interrupted"
    assert RunHistory.read(run_dir).last_ended["status"] == "cancelled"


# ---------------------------------------------------------------------------------------------
# Failures: kinds, titles, topics
# ---------------------------------------------------------------------------------------------


def test_every_failure_kind_has_a_title_and_topics_are_typed():
    assert set(FAILURE_KINDS) <= set(FAILURE_TITLES) and title_of("nonsense") == "The run failed"
    assert Failure("disk_full", "Full.").topic == "disk" and Failure("nan_loss", "NaN.").topic == "settings"
    assert Failure("crash", "Boom.").topic is None and Failure("bad_input", "Bad.").topic is None
    assert Failure("bad_input", "Bad rows.", topic="data").as_dict() == {
        "kind": "bad_input", "message": "Bad rows.", "advice": "", "topic": "data"}
    assert Failure("out_of_memory", "OOM").title == "The GPU ran out of memory"
    with pytest.raises(ValueError):
        Failure("bad_input", "Bad.", topic="the data page")
    # what an older studio (or a hand-edited file) wrote
    assert Failure.from_dict({"message": "?"}) == Failure("crash", "?")
    assert Failure.from_dict({"kind": "bad_input", "message": "m", "topic": "elsewhere"}).topic is None
    assert Failure.from_dict(None) is None

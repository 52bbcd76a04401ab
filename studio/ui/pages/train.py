"""5. Train: start, cancel (a second press forces) and resume a run, and watch it — loss and
learning-rate curves, speed and time left, GPU memory against the plan, sample answers, the log —
and, when a run fails, what happened and a button that applies the advice and starts again.

The run is a worker process supervised by a `TrainingThread`; this page only reacts to its signals.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.wording import count
from studio.ui.open_path import open_or_say_where
from studio.ui.pages.base import Page
from studio.ui.runner import TrainingThread
from studio.ui.tasks import start_task
from studio.ui.units import duration
from studio.ui.widgets.run_monitor import RunMonitor
from studio.ui.widgets.run_panels import FailurePanel, StartBlockedPanel, stats_grid
from studio.ui.widgets.text import set_state_style

TOPIC_PAGES = {"data": "data", "model": "model", "memory": "memory"}  # a failure's topic → the page that fixes it


class TrainPage(Page):
    title = "5. Train"
    intro = ("Training runs in its own process: the window stays free, and closing it can leave the run going. "
             "The loss should fall; the eval loss (on rows held out) tells you whether the model learns or memorises.")
    run_completed = Signal(object)  # the run folder of a completed (or cancelled, with an adapter) run
    run_starting = Signal()  # a worker is about to start: models held for trying should let go of the GPU

    def __init__(self, state, parent=None):
        super().__init__(state, parent)
        self.thread: TrainingThread | None = None
        self.run_dir: Path | None = None
        self.total_steps: int | None = None
        self.last_finished: dict | None = None
        self.step = 0  # the last step shown
        self.past = None  # the RunSummary of a stopped run offered for resuming
        self._pending_action = None

        self.body.addLayout(self._controls_row())
        self.blocked = StartBlockedPanel(self)
        self.blocked.button.clicked.connect(lambda: self.go_to.emit(self.blocked.page))
        self.body.addWidget(self.blocked)
        self.body.addWidget(self._banner())
        self.body.addWidget(self._progress_bar())
        stats, self.stat_labels = stats_grid(self)
        self.body.addLayout(stats)
        self.failure = FailurePanel(self)
        self.failure.setVisible(False)
        self.failure.action.clicked.connect(self._apply_advice)
        self.failure.log_button.clicked.connect(self._open_log)
        self.body.addWidget(self.failure)
        self.monitor = RunMonitor(self)
        self.plot, self.gauge, self.samples, self.log = self.monitor.plot, self.monitor.gauge, self.monitor.samples, self.monitor.log
        self.body.addWidget(self.monitor, 1)
        state.model_changed.connect(self._update_buttons)
        for signal in (state.data_settings_changed, state.data_loading, state.data_changed, state.training_changed):
            signal.connect(self._update_start)
        self._update_start()

    # ---- building the page ----

    def _button(self, text: str, tip: str, slot, enabled: bool = True) -> QPushButton:
        button = QPushButton(text, self)
        button.setToolTip(tip)
        button.setMinimumHeight(34)
        button.setEnabled(enabled)
        button.clicked.connect(slot)
        return button

    def _controls_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button = self._button("▶  &Start training", "Start a new run with the settings of the previous pages "
                                         "(Ctrl+Return).", self.start_run)
        self.start_button.setShortcut("Ctrl+Return")
        f = self.start_button.font()
        f.setBold(True)
        self.start_button.setFont(f)
        self.cancel_button = self._button("■  &Cancel", "Stop after the current step and save the adapter. Press again to "
                                          "stop at once.", self.cancel_run, enabled=False)
        self.resume_button = self._button("⟳  &Resume", "Continue a stopped run from its last checkpoint.",
                                          lambda: self.resume_run(), enabled=False)
        self.try_button = self._button("Try it →", "Ask the fine-tuned model questions and export it (the next page).",
                                       self._try_run)
        self.try_button.setVisible(False)
        for b in (self.start_button, self.cancel_button, self.resume_button, self.try_button):
            row.addWidget(b)
        self.status = QLabel("Ready to train.", self)
        self.status.setWordWrap(True)
        self.status.setToolTip("What the run is doing.")
        row.addWidget(self.status, 1)
        row.addStretch(0)  # takes the room while the status is hidden, so the buttons keep their size
        return row

    def _banner(self) -> QLabel:
        self.banner = QLabel("", self)
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setToolTip("A run from an earlier session.")
        self.banner.setStyleSheet("padding: 6px; border: 1px solid #f28e2b; border-radius: 4px;")
        return self.banner

    def _progress_bar(self) -> QProgressBar:
        self.progress = QProgressBar(self)
        self.progress.setToolTip("Steps done of the run's total.")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not started")
        return self.progress

    # ---- running ----

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start_run(self) -> None:
        if self.running:
            return
        if self.state.start_blocker() is not None:
            self._update_start()
            return
        config = self.state.snapshot()
        try:
            config.validate()
        except StudioError as exc:
            self._show_failure("could_not_start", exc.message, exc.advice, _error_of(exc.message, exc.topic))
            return
        self._reset_view()
        self.status.setText("Starting the training process (loading the model takes a moment)…")
        self._follow(TrainingThread(config=config, mode="start", parent=self))

    def resume_run(self, run_dir: Path | None = None) -> None:
        if self.running:
            return
        run_dir = Path(run_dir) if run_dir else self.run_dir
        if run_dir is None:
            return
        self._reset_view()
        self.run_dir = run_dir
        self.status.setText(f"Resuming {run_dir.name} from its last checkpoint…")
        self._follow(TrainingThread(run_dir=run_dir, mode="resume", parent=self))

    def attach(self, run_dir: Path) -> None:
        """Follow a run that an earlier window left running."""
        if self.running:
            return
        self._reset_view()
        self.run_dir = Path(run_dir)
        self.banner.setText(f"The run {self.run_dir.name} was still training when the studio opened: following it.")
        self.banner.setVisible(True)
        self.status.setText("Following a run started earlier…")
        self._follow(TrainingThread(run_dir=self.run_dir, mode="attach", parent=self))

    def offer_resume(self, summary) -> None:
        """A stopped run that can be continued: say so, and let Resume continue it."""
        if self.running:
            return
        self.run_dir = Path(summary.path)
        self.past = summary
        total = f" of {summary.total_steps}" if summary.total_steps else ""
        self.banner.setText(f"The run {summary.name} stopped ({summary.status}) at step {summary.step}{total}. "
                            "Press Resume to continue it from its last checkpoint.")
        self.banner.setVisible(True)
        self.show_history(self.run_dir)
        self._update_buttons()

    def cancel_run(self) -> None:
        if not self.running:
            return
        n = self.thread.request_cancel()
        if n == 1:
            self.status.setText("Stopping after this step and saving the adapter… Press “Stop now” to stop at once.")
            self.cancel_button.setText("■  Stop &now")
            self.cancel_button.setToolTip("Stop at once, mid-step. The last checkpoint is kept; Resume continues from it.")
        else:
            self.status.setText("Stopping at once…")
            self.cancel_button.setEnabled(False)

    def detach(self) -> None:
        """Leave the run going (the window is closing)."""
        if self.thread is not None:
            self.thread.detach()
            self.thread.wait(3000)

    def _follow(self, thread: TrainingThread) -> None:
        if thread.mode != "attach":
            self.run_starting.emit()
        self.thread = thread
        thread.run_folder.connect(self._on_folder)
        thread.run_started.connect(self._on_started)
        thread.steps.connect(self._on_steps)
        thread.evaluated.connect(self._on_eval)
        thread.preflighted.connect(self.monitor.preflighted)
        thread.sampled.connect(self.monitor.add_sample)
        thread.logged.connect(self.monitor.add_lines)
        thread.checkpointed.connect(lambda e: self.monitor.note(f"step {e.get('step')}: checkpoint saved ({e.get('path')})"))
        thread.cancelling.connect(lambda what: self.monitor.note(f"cancel: {what}"))
        thread.run_finished.connect(self._on_finished)
        thread.report.connect(self._on_report)
        thread.finished.connect(self._update_buttons)
        thread.start()
        self._update_buttons()

    def _reset_view(self) -> None:
        self.failure.setVisible(False)
        self.banner.setVisible(False)
        self.try_button.setVisible(False)
        self.monitor.reset()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.total_steps = None
        self.last_finished = None
        self.step = 0
        self.past = None
        for label in self.stat_labels.values():
            label.setText("–")
        self.cancel_button.setText("■  &Cancel")
        self.cancel_button.setToolTip("Stop after the current step and save the adapter. Press again to stop at once.")

    def _update_start(self) -> None:
        """Start only when a run could begin: not while one trains, nor when the data or the model is
        known not to be usable (the panel says why and leads to the page that fixes it)."""
        running = self.running
        blocker = None if running else self.state.start_blocker()
        self.blocked.show_blocker(blocker)
        idle = blocker is not None and self.run_dir is None  # nothing to show but why it cannot start
        self.status.setVisible(not idle)
        self.progress.setVisible(not idle)
        self.start_button.setEnabled(not running and self.state.model is not None and blocker is None)

    def _update_buttons(self) -> None:
        running = self.running
        self._update_start()
        self.cancel_button.setEnabled(running and (self.thread is None or self.thread.cancel_requests < 2))
        resumable = (not running and self.run_dir is not None and runs.resume_point(self.run_dir) is not None
                     and (self.last_finished or {}).get("status") != "completed")
        self.resume_button.setEnabled(bool(resumable))
        self.summary_changed.emit()

    # ---- events ----

    def _on_folder(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.status.setText(f"Run folder: {self.run_dir}. Loading the model…")

    def _on_started(self, e: dict) -> None:
        self.total_steps = e.get("total_steps")
        if self.total_steps:
            self.progress.setRange(0, int(self.total_steps))
            self.progress.setFormat("step %v of %m")
        self.status.setText(_started_text(e))
        planned = e.get("planned_bytes")
        if e.get("device") == "CPU":
            self.gauge.set_values(planned=planned, note="CPU run: nothing to measure")
        else:
            total = self.state.gpus[0].total_bytes if self.state.gpus else None
            self.gauge.set_values(planned=planned, total=total, note="waiting for the first step")
        self.step = e.get("resumed_from_step") or 0
        self.stat_labels["step"].setText(f"{self.step} / {self.total_steps}")
        self.summary_changed.emit()

    def _on_steps(self, events: list[dict]) -> None:
        self.plot.add_steps(events)
        e = events[-1]
        total = e.get("total_steps") or self.total_steps
        if total and total != self.total_steps:
            self.total_steps = total
            self.progress.setRange(0, int(total))
            self.progress.setFormat("step %v of %m")
        self.step = int(e["step"])
        self.progress.setValue(self.step)
        self._show_step_figures(e, total)
        measured = e.get("gpu_nvml_bytes") or e.get("gpu_reserved_bytes") or e.get("gpu_bytes")
        if measured is not None:  # what the driver sees (context included) where known, else what PyTorch holds
            self.gauge.set_values(measured=measured, peak=e.get("gpu_peak_reserved_bytes") or e.get("gpu_peak_bytes"))
        self.summary_changed.emit()

    def _show_step_figures(self, e: dict, total) -> None:
        s = self.stat_labels
        s["step"].setText(f"{self.step} / {total}")
        loss = e.get("loss")
        s["loss"].setText(f"{loss:.4f}" if loss is not None and math.isfinite(loss) else "not a number")
        tps = e.get("tokens_per_s")
        s["speed"].setText(f"{tps:,.0f}" if tps else "–")
        s["elapsed"].setText(duration(e.get("elapsed_s")))
        s["eta"].setText(duration(e.get("eta_s")))

    def _on_eval(self, e: dict) -> None:
        self.plot.add_eval(e)
        if e.get("eval_loss") is not None:
            self.stat_labels["eval"].setText(f"{e['eval_loss']:.4f}")

    def _on_finished(self, e: dict) -> None:
        self.last_finished = e
        status = e.get("status")
        self.step = e.get("step") or self.step
        if status == "completed":
            self.status.setText(f"Done: {count(self.step, 'step')}. The adapter is in {self.run_dir / 'adapter'}.")
            set_state_style(self.status, "good")
        elif status == "cancelled":
            self.status.setText(f"Cancelled at step {self.step}; the adapter so far was saved. Resume continues the run.")
            set_state_style(self.status, "warn")
        else:
            self._failed(e.get("error") or {})
        if status in ("completed", "cancelled") and self._has_adapter():
            if status == "completed":  # Try & export opens on it; a cancelled one only when asked ("Try it")
                self.state.select_run(self.run_dir)
            self.try_button.setVisible(True)
            self.run_completed.emit(self.run_dir)
        self._update_buttons()

    def _failed(self, error: dict) -> None:
        """The failure panel, and the plain message and advice in the log (the traceback stays in stderr.log)."""
        self.status.setText("The run failed — see below.")
        set_state_style(self.status, "bad")
        message, advice = error.get("message", ""), error.get("advice", "")
        self._show_failure(error.get("kind", "crash"), message, advice, error)
        self.monitor.note(f"The run failed: {message}" + (f"\n[studio] What to do: {advice}" if advice else ""))

    def _has_adapter(self) -> bool:
        return self.run_dir is not None and (self.run_dir / runs.ADAPTER / "adapter_model.safetensors").is_file()

    def _try_run(self) -> None:
        self.state.select_run(self.run_dir)
        self.go_to.emit("try")

    def _on_report(self, message: str, advice: str, topic: str | None = None) -> None:
        self._show_failure("could_not_start", message, advice, _error_of(message, topic))
        self.status.setText("The run could not start — see below.")
        set_state_style(self.status, "bad")
        self._update_buttons()

    # ---- failures and their advice ----

    def _show_failure(self, kind: str, message: str, advice: str, error: dict | None = None) -> None:
        """`error`: the failure as the worker described it (its `topic` says which page fixes it)."""
        action, self._pending_action = self._advice_action(kind, error or {"message": message})
        self.failure.show_error(kind, message, advice, action)
        self.failure.log_button.setVisible(self.run_dir is not None and (self.run_dir / runs.STDERR).is_file())

    def _advice_action(self, kind: str, error: dict):
        """(button text, what it does) for a failure kind."""
        if kind == "out_of_memory":
            return "Use less memory and start again", self._fix_memory
        if kind == "nan_loss":
            lr = self.state.config.training.learning_rate
            return f"Lower the learning rate to {lr * 0.25:g} and start again", self._fix_learning_rate
        if kind == "disk_full":
            return "I freed some space: resume", lambda: self.resume_run()
        if kind in ("bad_input", "could_not_start"):
            page = page_that_fixes(kind, error, self.state.config)
            return f"Go to the {page.capitalize()} page", lambda: self.go_to.emit(page)
        if self.run_dir is not None and runs.resume_point(self.run_dir) is not None:
            return "Resume from the last checkpoint", lambda: self.resume_run()
        return "Start again", self.start_run

    def _apply_advice(self) -> None:
        if self._pending_action is not None:
            self._pending_action()

    def _fix_memory(self) -> None:
        """Apply the planner's first suggestion for this GPU; if the plan thought it fitted, ask it to
        free a fifth of the planned memory instead."""
        s = self.state
        c = s.config
        suggestions = [sug for sug in s.suggestions() if s.can_apply(sug)]
        if not suggestions and s.model is not None:
            plan = s.plan()
            suggestions = [sug for sug in s.suggestions(int(plan.total_bytes * 0.8) if plan else s.gpu.bytes)
                           if s.can_apply(sug)]
        if suggestions:
            self.monitor.note(f"applying: {suggestions[0].change}")
            s.apply_changes(suggestions[0].changes)
        else:
            c.training.batch_size = max(1, c.training.batch_size // 2)
            c.training.seq_len = max(256, c.training.seq_len // 2)
            s.changed()
        self.start_run()

    def _fix_learning_rate(self) -> None:
        self.state.config.training.learning_rate *= 0.25
        self.state.changed()
        self.start_run()

    def _open_log(self) -> None:
        if self.run_dir is None:
            return
        open_or_say_where(self.run_dir / runs.STDERR, self.failure.log_path, what="the log",
                          paste_into="a text editor's Open dialog")

    # ---- a past run ----

    def show_history(self, run_dir: Path) -> None:
        """Curves, samples and progress of a run, from its folder alone (read in the background)."""
        from studio.ui.run_view import read_run_view

        start_task("read run", lambda _s: read_run_view(Path(run_dir)), on_done=self._show_view)

    def _show_view(self, view) -> None:
        if self.running or view.run_dir != self.run_dir:
            return
        series = view.series
        self.plot.set_history(series["loss"], series["eval_loss"], series["lr"], view.golden_scores, rewards=series)
        from studio.ui.run_view import sample_html

        self.monitor.show_samples([sample_html(e) for e in view.samples])
        if view.started:
            self.total_steps = view.started.get("total_steps")
            if self.total_steps:
                self.progress.setRange(0, int(self.total_steps))
                self.progress.setFormat("step %v of %m")
        if series["loss"]:
            self.step = series["loss"][-1][0]
            self.progress.setValue(self.step)
            self.stat_labels["step"].setText(f"{self.step} / {self.total_steps}")
            self.stat_labels["loss"].setText(f"{series['loss'][-1][1]:.4f}")
        if series["eval_loss"]:
            self.stat_labels["eval"].setText(f"{series['eval_loss'][-1][1]:.4f}")

    def summary(self) -> str:
        """For the step list: updated with every step while a run trains."""
        if self.running:
            return f"training, step {self.step}/{self.total_steps}" if self.total_steps else "starting…"
        if self.last_finished:
            return _ended(self.last_finished.get("status", ""), self.step)
        if self.past is not None:
            return _ended(self.past.status, self.past.step)
        return ""


def _started_text(e: dict) -> str:
    """"Training on CPU (4bit, float32): 45 steps, 180 training rows, 20 held out."""
    parts = [count(e["total_steps"], "step")] if e.get("total_steps") else []
    if e.get("train_rows") is not None:
        parts.append(f"{count(e['train_rows'], 'training row')}, {e.get('eval_rows') or 0:,} held out")
    if e.get("resumed_from_step"):
        parts.append(f"resuming at step {e['resumed_from_step']}")
    return f"Training on {e.get('device')} ({e.get('precision')}, {e.get('compute_dtype')}): {', '.join(parts)}."


def _ended(status: str, step: int) -> str:
    """How a run ended, in a few words: "completed, 30 steps", "cancelled at step 12", "failed"."""
    if status == "completed":
        return f"completed, {count(step, 'step')}"
    return f"{status} at step {step}" if step else status


def _error_of(message: str, topic: str | None) -> dict:
    """A StudioError as a failure's `error`: with its topic only when it has one."""
    return {"message": message} if topic is None else {"message": message, "topic": topic}


def page_that_fixes(kind: str, error: dict, config) -> str:
    """The page that fixes a bad_input or could_not_start failure: the one its `topic` names ("data",
    "model", "memory"); else the Model page for bad input, the Adapter page (the settings) for a run
    that could not start. A failure without a topic — from a run folder an older studio wrote, or an
    error whose maker named none — is read: a message about the data or the model leads there."""
    if "topic" in error:
        return TOPIC_PAGES.get(error["topic"] or "", "model" if kind == "bad_input" else "adapter")
    message = error.get("message", "")
    if _about_data(message, config.data.source):
        return "data"
    if kind == "bad_input" or _about_model(message, config.model.source):
        return "model"
    return "adapter"


def _about_data(message: str, source: str) -> bool:
    text = message.lower()
    return bool(source and source.lower() in text) or any(w in text for w in ("data", "row", "column", "dataset", "format"))


def _about_model(message: str, source: str) -> bool:
    text = message.lower()
    return bool(source and source.lower() in text) or "model" in text


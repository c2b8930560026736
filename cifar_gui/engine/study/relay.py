"""What a running study passes between its runs and whoever follows it: each run's start and
end wrapped in a :class:`~cifar_gui.engine.events.StudyProgress`, and the live view's latest
request carried from one run to the next. No Keras, no Qt."""

from __future__ import annotations

from collections.abc import Callable

from cifar_gui.engine.events import Event, LiveRequest, RunFinished, RunStarted, Sink, StudyProgress
from cifar_gui.engine.training.runner import LiveSource


class StudyRelay:
    """The sink of the study's runs: their starts and ends wrapped in a
    :class:`StudyProgress` of the run in progress (``index``), the other events as they are.
    An end is kept, and its state recorded (``record(index, state)``) before it is told, so
    whoever hears of it finds the study record saying so."""

    def __init__(self, sink: Sink, count: int, record: Callable[[int, str], None]):
        self.sink, self.count, self.record = sink, count, record
        self.index = 0
        self.ended: list[StudyProgress] = []

    def __call__(self, event: Event, skipped: bool = False) -> None:
        if isinstance(event, RunStarted | RunFinished):
            event = StudyProgress(self.index, self.count, event, skipped)
            if isinstance(event.run, RunFinished):
                self.record(self.index, event.state)
                self.ended.append(event)
        self.sink(event)


class LatestRequest:
    """The window's live-view requests for the runs of a study: each run's probe is new, so
    each run starts from the latest request, not from the default."""

    def __init__(self, source: LiveSource):
        self.source = source
        self.latest: LiveRequest | None = None
        self.run_starts = False

    def __call__(self) -> LiveRequest | None:
        request = self.source()
        if request is not None:
            self.latest = request
        elif self.run_starts:
            request = self.latest
        self.run_starts = False
        return request

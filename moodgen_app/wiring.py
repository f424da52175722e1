"""What every feature's wiring shares: the page, the pipeline, the results, and how a request becomes a result on
the page (the Generate button busy, the generation in the shared queue, then the result's marks on the pad)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from moodgen.pipeline import MoodPipeline
from moodgen_app.guard import Admission
from moodgen_app.page import Page, static_text
from moodgen_app.results import Results

BUSY_JS = "() => 'Generating…'"
IDLE_JS = "() => 'Generate'"
SHOW_RESULT_JS = static_text("show_result.js")


def checked(read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """read(*args, **kwargs), its ValueError (one line naming the field: whether the app or the library raised it)
    raised as Gradio's error, without a traceback."""
    try:
        return read(*args, **kwargs)
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from exc


def checked_each(items: Iterator[Any]) -> Iterator[Any]:
    """Each of `items`, a ValueError raised while they are made raised as Gradio's error (as in `checked`)."""
    try:
        yield from items
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from exc


@dataclass(frozen=True)
class Wiring:
    """The page's widgets and what its callbacks call; `concurrency_limit`: generations run at once (the rest
    wait in the queue); `admission`: how many of them one client may have waiting or running."""

    page: Page
    pipeline: MoodPipeline
    results: Results
    concurrency_limit: int
    admission: Admission  # each client's share of the queue (moodgen_app.guard)

    def generation(self, start: Callable[..., Any], fn: Callable[..., Any], inputs: list, **api: Any) -> None:
        """`start` (an event listener, e.g. `button.click` or `event.then`) makes a result with `fn(*inputs)`.

        The button reads "Generating…" while the last result stays in place (progress shows on the summary only);
        one concurrency group for every path into a generation, so the limit holds across them all; then the
        result's marks go on the pad (after a failure, the previous result and marks stay). A new request while
        one runs waits, and only the last one waiting is made. Inputs reach `fn` raw: it checks them itself.
        """
        page = self.page
        busy = start(None, None, page.generate, js=BUSY_JS, show_progress="hidden", queue=False)
        made = busy.then(fn, inputs, list(page.result), concurrency_id="generate", preprocess=False,
                         concurrency_limit=self.concurrency_limit, show_progress_on=page.result.summary,
                         trigger_mode="always_last", validator=self.admission.validator(len(inputs)), **api)
        self.show_result(made.success)
        made.failure(None, None, page.generate, js=IDLE_JS, show_progress="hidden", queue=False)

    def show_result(self, shown: Callable[..., Any]) -> None:
        """Once `shown` (a listener after which the result's widgets hold a new result), its marks on the pad."""
        page = self.page
        shown(None, [page.result.params, page.pad], [page.pad, page.generate], js=SHOW_RESULT_JS,
              show_progress="hidden", queue=False)

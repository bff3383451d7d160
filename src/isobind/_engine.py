"""Engine tasks queued on a mini-racer context as one batch, with one wake-up of the event loop.

mini-racer's isolate thread runs its tasks in the order they were queued and
drains the microtask queue after each one, so each source of a batch runs
after everything the microtasks of the previous ones did.

`Context.eval_cancelable` makes every task call back into the event loop
(`call_soon_threadsafe`, so a write to the loop's self-pipe and a thread
hand-off) and starts it only at the first step of an asyncio task. A batch
instead queues every task at once from the caller, and only the last task,
plus one chosen task, calls back into the loop. The other tasks pass their
results to the queue that mini-racer keeps for its synchronous `eval`, which
the isolate thread fills before it starts the next task; the batch reads them
once the last task has called back. A step of a run (deliver, then poll) thus
costs one hand-off each way instead of two.

NOTE: this drives mini-racer 0.14's private `Context` members (`_dll`,
`_ctx`, the callback registry and the result queue), pinned in pyproject.toml.
Nothing else may use an isolate's synchronous `eval`, which reads the same queue.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Sequence
from typing import Any

from py_mini_racer import JSEvalException

# The callback id whose results mini-racer puts in its queue of synchronous results.
from py_mini_racer._context import _UNCANCELABLE_TASK_CALLBACK_ID

__all__ = ["EngineBatch"]


class EngineBatch:
    """Sources queued as consecutive engine tasks on one mini-racer `Context`.

    `last` settles with the last source's result. `notify_index`, when given,
    also gets a future in `notified`, settled as that task ends. The results of
    the other tasks are read with `quiet_results()` once `last` is done.
    """

    def __init__(self, context: Any, sources: Sequence[str], notify_index: int | None = None):
        if not sources:
            raise ValueError("an engine batch needs at least one source")

        loop = asyncio.get_running_loop()
        self._context = context
        # The source handles stay referenced until the batch is dropped, as
        # `eval_cancelable` keeps its own until its task ends.
        self._handles: list[Any] = []
        self._task_ids: list[Any] = []
        self._callback_ids: list[int] = []
        self._quiet: list[int] = []
        self.notified: asyncio.Future[Any] | None = None
        self.notified_at: float | None = None
        self.engine_seconds: float | None = None
        """Always `None`: the run measures an isolate of this process by the wall clock."""
        """`time.monotonic()` when the `notify_index` task's end reached the event loop."""

        last_index = len(sources) - 1
        for index, source in enumerate(sources):
            if index in (last_index, notify_index):
                future: asyncio.Future[Any] = loop.create_future()
                callback_id = next(context._next_async_callback_id)
                context._active_cancelable_mr_task_callbacks[callback_id] = self._settler(
                    future, callback_id
                )
                self._callback_ids.append(callback_id)
                if index == last_index:
                    self.last = future
                else:
                    self.notified = future
                    future.add_done_callback(self._stamp)
            else:
                callback_id = _UNCANCELABLE_TASK_CALLBACK_ID
                self._quiet.append(index)
            handle = context._python_to_value_handle(source)
            self._handles.append(handle)
            self._task_ids.append(context._dll.mr_eval(context._ctx, handle.raw, callback_id))

    def _stamp(self, _: asyncio.Future[Any]) -> None:
        self.notified_at = time.monotonic()

    def _settler(self, future: asyncio.Future[Any], callback_id: int) -> Any:
        context = self._context

        def settle(value_handle: Any) -> None:
            context._active_cancelable_mr_task_callbacks.pop(callback_id, None)
            if future.done():
                return
            try:
                future.set_result(context._value_handle_to_python(value_handle))
            except JSEvalException as error:
                future.set_exception(error)

        return settle

    def quiet_results(self) -> list[tuple[int, Any, JSEvalException | None]]:
        """Return (index, value, error) of each task without a future, in order.

        Call it only once `last` is done: by then every earlier task has ended.
        """
        results_queue: queue.Queue[Any] = self._context._non_cancelable_mr_task_results_queue
        results: list[tuple[int, Any, JSEvalException | None]] = []
        for index in self._quiet:
            handle = results_queue.get_nowait()
            try:
                results.append((index, self._context._value_handle_to_python(handle), None))
            except JSEvalException as error:
                results.append((index, None, error))
        self._quiet = []
        return results

    def abandon(self) -> None:
        """Cancel the tasks that have not ended and drop their results.

        The isolate must not get another batch afterwards: results of quiet
        tasks that end later would be read as the next batch's.
        """
        context = self._context
        for callback_id in self._callback_ids:
            context._active_cancelable_mr_task_callbacks.pop(callback_id, None)
        for future in (self.notified, self.last):
            if future is not None and not future.done():
                future.cancel()
            elif future is not None and not future.cancelled():
                # Mark an unread error as retrieved, so asyncio does not log it.
                future.exception()
        for task_id in self._task_ids:
            # mini-racer ignores a cancel of a task that has ended.
            context._dll.mr_cancel_task(context._ctx, task_id)

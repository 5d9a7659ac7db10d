"""Long audio in overlapping windows, stitched on exact frame boundaries.

A window starts at a multiple of the frame step, so its frame ``k`` is the same frame ``start/step + k`` the
model would produce on the whole input, only with less context. Each window keeps the frames in its middle
and hands the edges, where context is short, to its neighbours; the kept ranges tile the whole input with no
frame lost or doubled. Decoding then runs once over the stitched frames, so no word at a join is cut or
repeated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from w2v2_onnx.checks import is_finite_number
from w2v2_onnx.errors import InvalidOptionError
from w2v2_onnx.model_dir import ModelConfig


@dataclass(frozen=True)
class WindowPlan:
    """Window geometry in samples; every length is a multiple of the frame step."""

    chunk: int
    context: int
    frame_step: int

    @property
    def stride(self) -> int:
        """Samples between consecutive window starts."""
        return self.chunk - 2 * self.context

    @property
    def context_frames(self) -> int:
        return self.context // self.frame_step

    @property
    def stride_frames(self) -> int:
        return self.stride // self.frame_step


def make_plan(config: ModelConfig, chunk_length: float, chunk_context: float) -> WindowPlan:
    """Build a window plan from lengths in seconds, rounded to whole frames.

    Raises:
        InvalidOptionError: if the lengths leave no stride or too little context for the model's receptive field.
    """
    for name, value in (("chunk_length", chunk_length), ("chunk_context", chunk_context)):
        if not is_finite_number(value) or value <= 0:
            raise InvalidOptionError(f"{name} must be a positive number of seconds, got {value!r}")
    step = config.frame_step
    chunk = int(round(chunk_length * config.sample_rate / step)) * step
    context = max(1, int(np.ceil(config.receptive_field / step)),
                  int(round(chunk_context * config.sample_rate / step))) * step
    plan = WindowPlan(chunk, context, step)
    if plan.stride <= 0 or config.num_frames(chunk) < plan.stride_frames + plan.context_frames:
        raise InvalidOptionError(
            f"chunk_length {chunk_length} s must exceed twice chunk_context {chunk_context} s by at least one frame "
            f"({step / config.sample_rate:.3f} s)")
    return plan


@dataclass(frozen=True)
class Window:
    """One window of a source.

    Attributes:
        index: position of the window within its source.
        start: offset of the window's first sample in the source.
        samples: the window's audio.
        keep_from: first local frame this window contributes.
        keep_to: local frame (exclusive) up to which it contributes; None for the last window (to its end).
    """

    index: int
    start: int
    samples: np.ndarray
    keep_from: int
    keep_to: int | None

    @property
    def is_last(self) -> bool:
        return self.keep_to is None


def iter_windows(blocks: Iterable[np.ndarray], plan: WindowPlan) -> Iterator[Window]:
    """Cut a stream of audio blocks into overlapping windows, holding at most about one window in memory.

    Input no longer than ``plan.chunk`` gives one window with all its frames; empty input gives none.
    """
    windower = Windower(plan)
    for block in blocks:
        yield from windower.push(block)
    yield from windower.close()


class Windower:
    """:func:`iter_windows` for audio that arrives over time (live streams): push blocks as they come, and
    take each window as soon as it is complete; :meth:`close` gives the rest. Both cut the same windows."""

    def __init__(self, plan: WindowPlan) -> None:
        self.plan = plan
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # source offset of _buffer[0]
        self._index = 0
        self.closed = False

    @property
    def samples_pushed(self) -> int:
        """Samples pushed so far."""
        return self._buffer_start + self._buffer.size

    def push(self, block: np.ndarray) -> list[Window]:
        """Add audio; return the windows it completes (a window is complete one sample past its end, since
        only then is it known not to be the last)."""
        if self.closed:
            raise ValueError("the windower is closed")
        block = np.asarray(block, dtype=np.float32)
        if block.size:
            self._buffer = np.concatenate([self._buffer, block])
        windows = []
        while self.samples_pushed > self._index * self.plan.stride + self.plan.chunk:
            windows.append(self._take(last=False))
        return windows

    def close(self) -> list[Window]:
        """The input has ended: return the windows still to come, the last one keeping every frame to the end."""
        self.closed = True
        windows = []
        while self._index * self.plan.stride < self.samples_pushed:
            last = self._index * self.plan.stride + self.plan.chunk >= self.samples_pushed
            windows.append(self._take(last=last))
            if last:
                break
        return windows

    def _take(self, last: bool) -> Window:
        plan = self.plan
        start = self._index * plan.stride
        local = start - self._buffer_start
        samples = self._buffer[local:local + plan.chunk].copy()
        keep_from = 0 if self._index == 0 else plan.context_frames
        keep_to = None if last else plan.context_frames + plan.stride_frames
        window = Window(self._index, start, samples, keep_from, keep_to)
        self._index += 1
        drop = self._index * plan.stride - self._buffer_start
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop
        return window

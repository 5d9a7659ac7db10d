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
    stream = iter(blocks)
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # source offset of buffer[0]
    exhausted = False
    index = 0
    while True:
        start = index * plan.stride
        needed = start + plan.chunk + 1 - buffer_start  # one sample past the window tells it is not the last
        pieces = [buffer]
        have = buffer.size
        while not exhausted and have < needed:
            block = next(stream, None)
            if block is None:
                exhausted = True
            else:
                pieces.append(np.asarray(block, dtype=np.float32))
                have += pieces[-1].size
        if len(pieces) > 1:
            buffer = np.concatenate(pieces)
        local = start - buffer_start
        samples = buffer[local:local + plan.chunk]
        if samples.size == 0:
            return
        last = exhausted and start + plan.chunk >= buffer_start + buffer.size
        keep_from = 0 if index == 0 else plan.context_frames
        keep_to = None if last else plan.context_frames + plan.stride_frames
        yield Window(index, start, samples.copy(), keep_from, keep_to)
        if last:
            return
        index += 1
        drop = index * plan.stride - buffer_start
        buffer = buffer[drop:]
        buffer_start += drop

"""Swin's window attention in slices of at most 65,535 windows per call.

Swin attends within windows: each attention call sees a batch of ``images x windows`` windows
(``B * nW``, dim 0 of its input). CUDA caps the y and z dimensions of a kernel's launch grid at
65,535, and the attention kernels put the window batch there: a window-1 Swin at 256 px with
patch 4 has 64 x 64 = 4,096 windows per image in its first stage, so a batch of 16 images makes
65,536 windows and the backward pass fails (``The size of tensor a (65536) must match the size
of tensor b (65535)``).

The fix is made where the limit bites, not by shrinking the image batch: every ``SwinAttention``
call whose window batch exceeds the limit runs as several calls over consecutive slices of the
windows, and the slices' outputs are concatenated. The bound is on windows x heads (at most
``limit // heads`` windows per call): a fused attention kernel puts the window batch on a grid
axis, an eager batched matmul puts windows x heads there, and the bound holds for both. Windows never attend to each other, so the
result (and, through autograd, the gradient) is that of one call. This holds for any batch,
image size and window, including one image with more windows than the limit (micro-batching
whole images could not split that one). Slices are aligned with the shifted-window mask, which
has one ``(N, N)`` block per window of an image (``nW`` blocks, repeated for every image):

* ``nW <= limit``: a slice holds whole images (``limit // nW`` of them) and takes the whole mask;
* ``nW > limit``: a slice lies inside one image and takes the mask rows of its windows.

Below the limit the original forward runs untouched, so CPU runs and small batches execute
exactly as before. The slicing applies on every device (the limit is CUDA's, but one code path
is what the CPU tests check, with a tiny forced limit).

This relies on two facts of ``transformers.models.swin`` that hold from 4.40 to 5.25 (both are
tested in CI): the attention module's class is ``SwinAttention`` and ``SwinLayer`` calls it as
``attention(windows, mask, ...)`` with the windows batch in dim 0 and a mask of shape
``(nW, N, N)`` or None; it returns a tuple of per-window tensors (or None).
"""
from __future__ import annotations

import types
from typing import Any

from .. import optional_deps

optional_deps.require("torch", needed_by="the report generator")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)

CUDA_GRID_LIMIT = 65_535
ATTENTION_CLASS = "SwinAttention"

__all__ = ["CUDA_GRID_LIMIT", "limit_window_batches", "window_slices"]


def window_slices(total: int, windows_per_image: int, limit: int) -> list[tuple[int, int]]:
    """``[start, stop)`` spans covering ``total`` windows, none longer than ``limit``, aligned
    to whole images when an image fits (``windows_per_image <= limit``), else inside one image."""
    if limit < 1:
        raise ValueError(f"window batch limit must be >= 1, got {limit}")
    if total <= limit:
        return [(0, total)]
    per_image = max(1, windows_per_image)
    if per_image <= limit:
        step = (limit // per_image) * per_image
        return [(s, min(total, s + step)) for s in range(0, total, step)]
    spans = []
    for image_start in range(0, total, per_image):
        image_stop = min(total, image_start + per_image)
        spans += [(s, min(image_stop, s + limit)) for s in range(image_start, image_stop, limit)]
    return spans


def _sliced_forward(self, hidden_states, attention_mask=None, *args, **kwargs):
    """``SwinAttention.forward`` over slices of the window batch (see the module docstring)."""
    original = type(self).forward
    total = hidden_states.shape[0]
    limit = max(1, self.window_batch_limit // _heads(self))
    if total <= limit:
        return original(self, hidden_states, attention_mask, *args, **kwargs)
    per_image = total if attention_mask is None else int(attention_mask.shape[0])
    if total % per_image:
        raise RuntimeError(f"{total} windows are not a whole number of images of {per_image} windows")
    outputs = []
    for start, stop in window_slices(total, per_image, limit):
        mask = attention_mask
        if mask is not None and (stop - start) % per_image:  # a slice inside one image
            first = start % per_image
            mask = mask[first:first + (stop - start)]
        outputs.append(original(self, hidden_states[start:stop], mask, *args, **kwargs))
    if not isinstance(outputs[0], tuple):
        return torch.cat(outputs, dim=0)
    return tuple(None if parts[0] is None else torch.cat(parts, dim=0) for parts in zip(*outputs))


def _heads(attention) -> int:
    """Attention heads of a SwinAttention (transformers 5: on it; 4.x: on its ``self`` part)."""
    heads: Any = getattr(attention, "num_attention_heads", None)  # an int where the release has it
    if heads is None:
        heads = getattr(getattr(attention, "self", None), "num_attention_heads", 1)
    return max(1, int(heads))


def limit_window_batches(swin: torch.nn.Module, limit: int = CUDA_GRID_LIMIT) -> int:
    """Make every Swin attention module of ``swin`` run at most ``limit`` windows x heads per call.

    Idempotent (a second call only changes the limit); the weights and their names are
    untouched. Returns the number of attention modules. Raises if there is none, which would
    mean a transformers release that lays Swin out differently: better a clear error than a
    silent crash on the first large batch.
    """
    if limit < 1:
        raise ValueError(f"window batch limit must be >= 1, got {limit}")
    count = 0
    for module in swin.modules():
        if type(module).__name__ == ATTENTION_CLASS:
            # torch types Module.__setattr__ for tensors and modules; a plain attribute is stored as usual
            module.window_batch_limit = int(limit)  # type: ignore[assignment]
            module.forward = types.MethodType(_sliced_forward, module)
            count += 1
    if not count:
        raise RuntimeError(f"no {ATTENTION_CLASS} module in {type(swin).__name__}: cannot bound its window batches")
    return count

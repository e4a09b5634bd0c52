"""How a native image becomes the Swin input, and how each Swin token maps back to native pixels.

The last Swin stage has one token per ``stride x stride`` working pixels (``stride =
patch_size * 2 ** (stages - 1)``, 32 for the usual 4-stage Swin with patch size 4), in a
row-major grid of ``ceil(h / stride) x ceil(w / stride)`` tokens padded at the right and bottom.

We never let Swin pad. Instead every image gets a :class:`PatchPlan`: each token covers a box
of ``native_patch = (pr, pc)`` *native* pixels, the native image is zero-padded at the bottom and
right to ``(grid_rows * pr, grid_cols * pc)`` and resized (area averaging) to exactly
``(grid_rows * stride, grid_cols * stride)`` working pixels. Token ``t`` then covers the native
box ``rows [r*pr, (r+1)*pr), cols [c*pc, (c+1)*pc)`` with ``r, c = divmod(t, grid_cols)``,
clipped at the image edge: exactly :meth:`neural_format.format.record.Record.patch_boxes` for the
stored geometry ``image_size = (H, W)``, ``patch_size = (pr, pc)``,
``grid_shape = (ceil(H / pr), ceil(W / pc))``.

Tokens outside ``grid_shape`` (when the working grid is larger, see below) cover no native
pixel: they are *padding tokens*, masked in the decoder's cross-attention and never scored.

Modes:

* ``native``: ``pr = pc = stride`` (one working pixel per native pixel, no resizing) unless the
  long side exceeds ``max_side``; then ``pr = pc = ceil(stride * max(H, W) / max_side)`` native
  pixels per token, i.e. the image is downsampled by ``stride / pr`` to at most ``max_side``
  working pixels per side. Square native patches, aspect ratio kept.
* ``fixed``: the working image is ``fixed_size`` (multiples of ``stride``); ``pr = ceil(H / gr)``
  and ``pc = ceil(W / gc)`` with ``(gr, gc) = fixed_size / stride``. Native patches may be
  non-square; the aspect ratio is not kept.

Swin crashes when a stage is smaller than its attention window (its relative-position table is
sized for the window), so the working grid is at least ``min_grid`` tokens per side; any extra
rows/columns are padding tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
from .. import optional_deps

ResolutionMode = Literal["native", "fixed"]


@dataclass(frozen=True)
class PatchPlan:
    image_size: tuple[int, int]       # native (H, W)
    native_patch: tuple[int, int]     # native pixels per token (pr, pc)
    grid_shape: tuple[int, int]       # real tokens per axis: ceil(H / pr), ceil(W / pc)
    working_grid: tuple[int, int]     # tokens per axis the model sees (>= grid_shape)
    stride: int                       # working pixels per token

    @property
    def working_size(self) -> tuple[int, int]:
        return self.working_grid[0] * self.stride, self.working_grid[1] * self.stride

    @property
    def num_tokens(self) -> int:
        return self.working_grid[0] * self.working_grid[1]

    def real_token_mask(self) -> np.ndarray:
        """Boolean (working_rows * working_cols,): True for tokens that cover native pixels."""
        rows = np.arange(self.working_grid[0])[:, None] < self.grid_shape[0]
        cols = np.arange(self.working_grid[1])[None, :] < self.grid_shape[1]
        return (rows & cols).reshape(-1)

    def real_token_indices(self) -> np.ndarray:
        return np.flatnonzero(self.real_token_mask())

    def token_positions(self, tokens) -> np.ndarray:
        """(row, col) grid positions (int32, (n, 2)) of working-grid token indices."""
        tokens = np.asarray(tokens, np.int64)
        return np.stack(np.divmod(tokens, self.working_grid[1]), axis=1).astype(np.int32)


def plan_patches(image_size, *, stride: int = 32, mode: ResolutionMode = "native",
                 max_side: Optional[int] = 512, fixed_size=(224, 224), min_grid: int = 1) -> PatchPlan:
    H, W = (int(v) for v in image_size)
    if H < 1 or W < 1:
        raise ValueError(f"image size must be positive, got {(H, W)}")
    if mode == "native":
        pr = stride
        if max_side is not None and max(H, W) > max_side:
            pr = math.ceil(stride * max(H, W) / max_side)
        pc = pr
    elif mode == "fixed":
        fr, fc = (int(v) for v in fixed_size)
        if fr % stride or fc % stride:
            raise ValueError(f"fixed_size {fixed_size} must be multiples of the token stride {stride}")
        pr, pc = math.ceil(H / (fr // stride)), math.ceil(W / (fc // stride))
    else:
        raise ValueError(f"resolution mode must be 'native' or 'fixed', not {mode!r}")
    grid = (math.ceil(H / pr), math.ceil(W / pc))
    working = (max(grid[0], min_grid), max(grid[1], min_grid))
    if mode == "fixed":
        working = (max(working[0], fixed_size[0] // stride), max(working[1], fixed_size[1] // stride))
    return PatchPlan((H, W), (pr, pc), grid, working, stride)


def to_working(pixels: np.ndarray, plan: PatchPlan) -> np.ndarray:
    """The working image (float32, ``plan.working_size``) for native ``pixels`` (H, W) in [0, 1].

    Zero-pads to whole native patches, area-averages each native patch down to ``stride x
    stride`` working pixels (exact block means when the factor is an integer, bilinear PIL
    resampling of the padded image otherwise), then zero-pads to the working grid.
    """
    H, W = plan.image_size
    if pixels.shape != (H, W):
        raise ValueError(f"pixels have shape {pixels.shape}, the plan expects {(H, W)}")
    pr, pc = plan.native_patch
    gr, gc = plan.grid_shape
    s = plan.stride
    padded = np.zeros((gr * pr, gc * pc), np.float32)
    padded[:H, :W] = pixels
    if pr == s and pc == s:
        resized = padded
    elif pr % s == 0 and pc % s == 0:
        fr, fc = pr // s, pc // s
        resized = padded.reshape(gr * s, fr, gc * s, fc).mean(axis=(1, 3))
    else:
        Image = optional_deps.load("PIL.Image", needed_by="resampling a patch grid")
        resized = np.asarray(Image.fromarray(padded, mode="F").resize((gc * s, gr * s), Image.Resampling.BOX),
                             np.float32)
    out = np.zeros(plan.working_size, np.float32)
    out[: gr * s, : gc * s] = resized
    return out


def native_tiles(pixels: np.ndarray, plan: PatchPlan, positions: np.ndarray, dtype=np.uint16) -> np.ndarray:
    """Full-resolution tiles ``(n, pr, pc)`` cut from the native pixels at grid ``positions``.

    Tiles in the last row/column are zero-padded past the image edge. Values are the [0, 1]
    pixels scaled to the full range of ``dtype`` (uint8 or uint16), rounded half up.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ValueError(f"tile dtype must be uint8 or uint16, not {dtype}")
    pr, pc = plan.native_patch
    gr, gc = plan.grid_shape
    padded = np.zeros((gr * pr, gc * pc), np.float32)
    padded[: pixels.shape[0], : pixels.shape[1]] = pixels
    scale = float(np.iinfo(dtype).max)
    blocks = padded.reshape(gr, pr, gc, pc).transpose(0, 2, 1, 3)
    rows, cols = np.asarray(positions, np.int64).T if len(positions) else (np.zeros(0, int), np.zeros(0, int))
    tiles = blocks[rows, cols]
    return np.clip(np.floor(tiles * scale + 0.5), 0, scale).astype(dtype)

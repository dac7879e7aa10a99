"""Traversal figures: image grids (PNG) and animations (GIF) with Pillow.

A traversal set is a float array ``[seeds, rows, steps, H, W, C]`` in [0, 1] (C = 1 or 3):
for each seed image, each row (a latent, or a potential-flow direction) is a sequence of
decoded images. The grid puts rows top to bottom, steps left to right and seeds side by
side; the GIF shows one frame per step, each frame a [rows x seeds] grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PAD = 2  # pixels between tiles
SEED_GAP = 8  # extra pixels between seed blocks
LABEL_W = 28  # least left margin for row labels
CHAR_W = 6  # width of a character of Pillow's default font


def to_uint8_rgb(images: np.ndarray) -> np.ndarray:
    """[..., H, W, C] floats in [0, 1] with C in {1, 3} -> uint8 [..., H, W, 3]."""
    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    elif images.shape[-1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got shape {images.shape}")
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _tile(blocks: np.ndarray, gap: int, background: int = 255) -> np.ndarray:
    """[R, C, H, W, 3] uint8 -> one image with ``gap`` pixels between tiles."""
    r, c, h, w, _ = blocks.shape
    out = np.full((r * h + (r - 1) * gap, c * w + (c - 1) * gap, 3), background, np.uint8)
    for i in range(r):
        for j in range(c):
            out[i * (h + gap): i * (h + gap) + h, j * (w + gap): j * (w + gap) + w] = blocks[i, j]
    return out


def _with_labels(canvas: np.ndarray, labels: Sequence[str], tile_h: int) -> Image.Image:
    width = max([LABEL_W] + [CHAR_W * len(str(t)) + 6 for t in labels])
    img = Image.new("RGB", (canvas.shape[1] + width, canvas.shape[0]), (255, 255, 255))
    img.paste(Image.fromarray(canvas), (width, 0))
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(labels):
        draw.text((2, i * (tile_h + PAD) + tile_h // 2 - 5), str(text), fill=(0, 0, 0))
    return img


def traversal_grid(traversals: np.ndarray, row_labels: Sequence[str] | None = None) -> Image.Image:
    """[seeds, rows, steps, H, W, C] -> PIL image: rows x steps per seed, seeds side by side."""
    seeds, rows, steps, h, w, _ = traversals.shape
    tiles = to_uint8_rgb(traversals)
    blocks = [_tile(tiles[s], PAD) for s in range(seeds)]
    gap = np.full((blocks[0].shape[0], SEED_GAP, 3), 255, np.uint8)
    canvas = blocks[0]
    for block in blocks[1:]:
        canvas = np.concatenate([canvas, gap, block], axis=1)
    labels = row_labels if row_labels is not None else [str(i) for i in range(rows)]
    return _with_labels(canvas, labels, h)


def traversal_frames(traversals: np.ndarray, row_labels: Sequence[str] | None = None,
                     ping_pong: bool = True) -> list[Image.Image]:
    """One frame per step, each a [rows x seeds] grid; back and forth when ``ping_pong``."""
    seeds, rows, steps = traversals.shape[:3]
    tiles = to_uint8_rgb(traversals)  # [S, R, T, H, W, 3]
    labels = row_labels if row_labels is not None else [str(i) for i in range(rows)]
    order = list(range(steps)) + (list(range(steps - 2, 0, -1)) if ping_pong else [])
    frames = []
    for t in order:
        blocks = np.transpose(tiles[:, :, t], (1, 0, 2, 3, 4))  # [R, S, H, W, 3]
        frames.append(_with_labels(_tile(blocks, PAD), labels, traversals.shape[3]))
    return frames


def save_traversal_figures(traversals: np.ndarray, path_stem: str | Path,
                           row_labels: Sequence[str] | None = None, scale: int = 1,
                           frame_ms: int = 120) -> tuple[Path, Path]:
    """Write ``STEM.png`` (grid) and ``STEM.gif`` (animation); returns both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    grid = traversal_grid(traversals, row_labels)
    frames = traversal_frames(traversals, row_labels)
    if scale != 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
        frames = [f.resize((f.width * scale, f.height * scale), Image.NEAREST) for f in frames]
    png, gif = stem.with_suffix(".png"), stem.with_suffix(".gif")
    grid.save(png)
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return png, gif

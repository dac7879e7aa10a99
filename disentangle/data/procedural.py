"""Procedural shape datasets rendered by the project inside ``jit`` (no download).

``dsprites``: the dSprites factor grid (Matthey et al., 2017) re-rendered at 64x64x1:
shape (square, ellipse, heart), scale (6 values in [0.5, 1]), orientation (40 values
in [0, 2 pi), endpoint excluded so every value is distinct), position x and y (32
values each). ``factor_sizes == (3, 6, 40, 32, 32)``, 737,280 combinations.

``colour_shapes``: RGB 64x64x3 with shape (3), scale (4), orientation-free objects,
object hue (6), background hue (4), position x and y (16 each): 73,728 combinations.

Rasterisation: each pixel is supersampled on an ``SS x SS`` grid; a sub-sample is
inside when the shape's implicit function at its object-frame coordinate
``u = R(-theta) (p - c) / (r * scale)`` is <= 0. Coverage is the inside fraction,
so small factor changes still change the image, and rendering is deterministic.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from disentangle.data import register_dataset
from disentangle.data.base import ProceduralData

SHAPES = ("square", "ellipse", "heart")
SUPERSAMPLE = 4


def _inside(shape: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """Implicit functions of the three shapes in object coordinates (unit size)."""
    square = jnp.maximum(jnp.abs(u), jnp.abs(v)) - 0.8
    ellipse = (u / 1.0) ** 2 + (v / 0.5) ** 2 - 1.0
    # Heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled to unit extent, point downwards
    # in image coordinates (image rows grow downwards, so y = -v).
    x, y = u * 1.15, -v * 1.15 + 0.12
    heart = (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3
    return jnp.select([shape == 0, shape == 1], [square, ellipse], heart) <= 0.0


def _grid(size: int, ss: int = SUPERSAMPLE) -> tuple[jax.Array, jax.Array]:
    """Sub-sample centres in pixel units, [size*ss] each for rows and columns."""
    t = (jnp.arange(size * ss) + 0.5) / ss
    return jnp.meshgrid(t, t, indexing="ij")  # rows (y), cols (x)


def rasterise(shape, scale_px, theta, cx, cy, size: int = 64) -> jax.Array:
    """Coverage in [0, 1] of one shape: float32 [size, size].

    Args: shape index, radius in pixels, rotation (radians), centre (pixels).
    """
    py, px = _grid(size)
    dx, dy = px - cx, py - cy
    c, s = jnp.cos(theta), jnp.sin(theta)
    u = (c * dx + s * dy) / scale_px
    v = (-s * dx + c * dy) / scale_px
    inside = _inside(shape, u, v).astype(jnp.float32)
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


@register_dataset("dsprites")
class DSprites(ProceduralData):
    """dSprites factors rendered procedurally, 64x64x1 float32 in [0, 1]."""

    factor_names = ("shape", "scale", "orientation", "pos_x", "pos_y")
    factor_sizes = (3, 6, 40, 32, 32)
    observation_shape = (64, 64, 1)
    radius_px = 10.5  # object radius at scale 1
    margin_px = 10.0  # centre positions span [margin, 64 - margin]

    def __init__(self):
        self.scales = np.linspace(0.5, 1.0, 6)
        self.orientations = np.linspace(0.0, 2 * math.pi, 40, endpoint=False)
        self.positions = np.linspace(self.margin_px, 64 - self.margin_px, 32)

    def render(self, factors):
        scales = jnp.asarray(self.scales, jnp.float32)[factors[:, 1]] * self.radius_px
        theta = jnp.asarray(self.orientations, jnp.float32)[factors[:, 2]]
        pos = jnp.asarray(self.positions, jnp.float32)
        img = jax.vmap(rasterise)(factors[:, 0], scales, theta, pos[factors[:, 3]],
                                  pos[factors[:, 4]])
        return img[..., None]


def hsv_to_rgb(h, s, v):
    """HSV in [0, 1] -> RGB in [0, 1] (arrays broadcast); the standard hexcone model."""
    k = jnp.asarray([5.0, 3.0, 1.0])
    t = jnp.mod(k + h[..., None] * 6.0, 6.0)
    return v[..., None] - v[..., None] * s[..., None] * jnp.clip(jnp.minimum(t, 4.0 - t), 0, 1)


@register_dataset("colour_shapes")
class ColourShapes(ProceduralData):
    """Coloured shapes on a coloured background, 64x64x3 float32 in [0, 1].

    Object colours are saturated (s = 1, v = 1); backgrounds are dark and muted
    (s = 0.6, v = 0.35), so an object never matches its background.
    """

    factor_names = ("shape", "scale", "object_hue", "background_hue", "pos_x", "pos_y")
    factor_sizes = (3, 4, 6, 4, 16, 16)
    observation_shape = (64, 64, 3)
    radius_px = 12.0
    margin_px = 13.0

    def __init__(self):
        self.scales = np.linspace(0.55, 1.0, 4)
        self.object_hues = np.arange(6) / 6.0
        self.background_hues = np.arange(4) / 4.0 + 1.0 / 8.0
        self.positions = np.linspace(self.margin_px, 64 - self.margin_px, 16)

    def render(self, factors):
        f32 = lambda a: jnp.asarray(a, jnp.float32)
        scale = f32(self.scales)[factors[:, 1]] * self.radius_px
        pos = f32(self.positions)
        mask = jax.vmap(rasterise)(factors[:, 0], scale, jnp.zeros_like(scale),
                                   pos[factors[:, 4]], pos[factors[:, 5]])[..., None]
        one = jnp.ones_like(scale)
        obj = hsv_to_rgb(f32(self.object_hues)[factors[:, 2]], one, one)
        bg = hsv_to_rgb(f32(self.background_hues)[factors[:, 3]], 0.6 * one, 0.35 * one)
        return mask * obj[:, None, None, :] + (1.0 - mask) * bg[:, None, None, :]


def disc_coverage(radius, cx, cy, size: int, ss: int = SUPERSAMPLE) -> jax.Array:
    """Coverage in [0, 1] of a disc of ``radius`` pixels centred at (cx, cy): [size, size]."""
    py, px = _grid(size, ss)
    inside = ((px - cx) ** 2 + (py - cy) ** 2 <= radius**2).astype(jnp.float32)
    return inside.reshape(size, ss, size, ss).mean(axis=(1, 3))


@register_dataset("colour_scene")
class ColourScene(ProceduralData):
    """A flat wall / floor / ball scene, 32x32x3 float32 in [0, 1]: the demo's data.

    Factors (8, 8, 8, 6, 8 values): wall colour, floor colour, ball colour, ball radius
    (0.18-0.32 of the width) and ball x position (0.32-0.68 of the width); the wall is
    the top 40 %, the ball rests at 60 % height. Each colour factor moves one RGB channel
    linearly (hue arcs red->yellow, green->cyan, blue->magenta, in which only G, B or R
    changes), so every factor traces a 1-D curve in pixel space that one latent can carry
    (a full hue circle, as in Shapes3D, needs two). A Shapes3D-like scene small enough
    that a few thousand CPU steps disentangle it (docs/DESIGN.md, the demo).
    """

    factor_names = ("wall_colour", "floor_colour", "ball_colour", "ball_radius", "ball_x")
    factor_sizes = (8, 8, 8, 6, 8)
    observation_shape = (32, 32, 3)
    wall_fraction = 0.4
    ball_height = 0.6

    def __init__(self):
        size = self.observation_shape[0]
        self.hue_arcs = np.stack([np.linspace(0.0, 1 / 6, 8), np.linspace(1 / 3, 1 / 2, 8),
                                  np.linspace(2 / 3, 5 / 6, 8)])
        self.saturation_value = ((0.6, 0.9), (0.7, 0.6), (1.0, 1.0))  # wall, floor, ball
        self.radii = np.linspace(0.18, 0.32, 6) * size
        self.positions = np.linspace(0.32, 0.68, 8) * size

    def render(self, factors):
        size = self.observation_shape[0]
        f32 = lambda a: jnp.asarray(a, jnp.float32)
        radius = f32(self.radii)[factors[:, 3]]
        cx = f32(self.positions)[factors[:, 4]]
        ball = jax.vmap(lambda r, x: disc_coverage(r, x, self.ball_height * size, size))(
            radius, cx)[..., None]
        one = jnp.ones_like(radius)
        wall, floor, colour = (
            hsv_to_rgb(f32(self.hue_arcs[i])[factors[:, i]], s * one, v * one)[:, None, None]
            for i, (s, v) in enumerate(self.saturation_value))
        top = (jnp.arange(size) < int(self.wall_fraction * size)).astype(jnp.float32)
        top = top[None, :, None, None]
        return ball * colour + (1.0 - ball) * (top * wall + (1.0 - top) * floor)

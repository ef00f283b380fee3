"""Procedural synthetic sealer dataset: metal panels, sealer beads and their defects.

Every image is a pure function of ``(seed, index)``: :func:`render_sample` draws from the
generator it is handed and nothing else, and :func:`generate_sealer_dataset` seeds one
generator per image, so any image can be regenerated alone and the set never depends on the
order or number of images written.

Defects carry both a local appearance cue and a shape cue, so that a small decoder on a frozen
encoder can learn them at 128 x 128: gaps expose a reddish-brown primer with a rough texture
where the bead is missing; spills are amber, glossy, dome-shaded blobs beside the bead;
bubbles are small dark pits with a bright rim on the bead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from linas._errors import ConfigError, DataError
from linas._io import write_atomic, write_json_atomic

CLASSES = ("background", "sealer", "defect")
BACKGROUND, SEALER, DEFECT = 0, 1, 2
IGNORE_INDEX = 255
DATASET_NAME = "synthetic-sealer"

# Sealer variants seen on car bodies: grey, white, beige and dark (RGB in 0..1).
_SEALER_COLOURS = np.array(
    [[0.62, 0.63, 0.64], [0.90, 0.90, 0.87], [0.84, 0.76, 0.58], [0.24, 0.25, 0.27]]
)
# Exposed e-coat primer in a gap: reddish brown, a hue no sealer or bare metal has.
_PRIMER = np.array([0.46, 0.27, 0.20])
# Excess material in a spill: thick, glossy and amber-tinted, again a hue of its own.
_SPILL_TINT = np.array([0.80, 0.58, 0.22])
_DEFECT_KINDS = ("gap", "spill", "bubbles")
_DEFECT_PROBS = (0.4, 0.4, 0.2)
_P_DEFECTIVE = 0.85  # share of images with at least one defect
_OWN_FILE = re.compile(r"^\d{5,}\.png$")


@dataclass(frozen=True)
class _Bead:
    """Geometry of one bead, as per-pixel fields over the image grid."""

    u: np.ndarray  # (H, W) position along the bead, px
    t: np.ndarray  # (H, W) signed position across the bead, -1..1 inside
    half_width: np.ndarray  # (H, W) local half width, px
    normal: np.ndarray  # (2,) unit (dy, dx) pointing towards t > 0

    @property
    def inside(self) -> np.ndarray:
        return np.abs(self.t) < 1.0


def render_sample(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Render one synthetic sealer image and its class-index mask.

    Args:
        rng: the only source of randomness; the same generator state gives the same sample.
        size: ``(H, W)`` in pixels.

    Returns:
        ``(image, mask)``: image uint8 ``(H, W, 3)``; mask uint8 ``(H, W)`` with values
        0 background, 1 sealer, 2 defect.
    """
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)  # (H, W) each
    scale = min(height, width) / 128.0
    image = _metal_background(rng, yy, xx)
    mask = np.zeros(size, dtype=np.uint8)
    colour = _SEALER_COLOURS[rng.integers(len(_SEALER_COLOURS))] * rng.uniform(0.92, 1.06, 3)
    beads = _make_beads(rng, yy, xx)
    for bead in beads:
        _paint_bead(rng, image, mask, bead, colour, scale)
    visible = [bead for bead in beads if bead.inside.any()]
    if visible and rng.random() < _P_DEFECTIVE:
        n_defects = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
        for _ in range(n_defects):
            bead = visible[int(rng.integers(len(visible)))]
            kind = str(rng.choice(_DEFECT_KINDS, p=_DEFECT_PROBS))
            _PAINTERS[kind](rng, image, mask, bead, colour, yy, xx, scale)
    return _finish(rng, image), mask


def generate_sealer_dataset(
    out_dir: Path,
    n_images: int,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write the synthetic sealer dataset as a folder dataset.

    Writes ``out_dir/images/NNNNN.png`` (RGB), ``out_dir/masks/NNNNN.png`` (mode "L" class
    indices) and ``out_dir/dataset.json``. Image ``i`` depends only on ``(seed, i)``.

    Args:
        out_dir: target folder, created if missing.
        n_images: number of images, at least 1.
        size: ``(H, W)`` in pixels, each at least 16.
        seed: dataset seed.
        overwrite: replace the numbered PNGs of an earlier run in ``out_dir``.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: ``n_images`` or ``size`` out of range.
        DataError: ``out_dir`` already holds images or masks and ``overwrite`` is false.
    """
    out_dir = Path(out_dir)
    size = check_synth_args(n_images, size)
    images_dir, masks_dir = out_dir / "images", out_dir / "masks"
    _prepare_dirs(images_dir, masks_dir, overwrite)
    for index in range(n_images):
        # SeedSequence of (seed, index): independent streams, one per image.
        image, mask = render_sample(np.random.default_rng([seed, index]), size)
        for folder, pixels in ((images_dir, image), (masks_dir, mask)):
            write_atomic(folder / f"{index:05d}.png", _png_writer(pixels))
    write_json_atomic(out_dir / "dataset.json", synth_meta(n_images, size, seed))
    return out_dir


def _png_writer(pixels: np.ndarray) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        Image.fromarray(pixels).save(tmp, format="PNG")

    return write


def synth_meta(n_images: int, size: tuple[int, int], seed: int) -> dict[str, object]:
    """The ``dataset.json`` that :func:`generate_sealer_dataset` writes for these settings."""
    return {
        "name": DATASET_NAME,
        "classes": list(CLASSES),
        "ignore_index": IGNORE_INDEX,
        "seed": int(seed),
        "size": [int(size[0]), int(size[1])],
        "n_images": int(n_images),
    }


def is_own_file(name: str) -> bool:
    """Whether a file name in ``images/`` or ``masks/`` is one the generator writes."""
    return _OWN_FILE.match(name) is not None


def check_synth_args(n_images: int, size: tuple[int, int]) -> tuple[int, int]:
    """Check the generator's arguments; return ``size`` as ints (ConfigError when out of range)."""
    if int(n_images) < 1:
        raise ConfigError(f"synthetic dataset: n_images={n_images}; pass at least 1")
    if len(size) != 2 or min(int(s) for s in size) < 16:
        raise ConfigError(f"synthetic dataset: size={tuple(size)}; pass (H, W), each >= 16 px")
    return int(size[0]), int(size[1])


def _prepare_dirs(images_dir: Path, masks_dir: Path, overwrite: bool) -> None:
    for folder in (images_dir, masks_dir):
        folder.mkdir(parents=True, exist_ok=True)
        existing = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if existing and not overwrite:
            raise DataError(
                f"synthetic dataset: {folder} already holds {len(existing)} file(s), e.g. "
                f"{existing[0].name}; pass overwrite=True or choose an empty folder"
            )
        # Only our own numbered PNGs are removed, so stale images of a larger earlier run
        # cannot leak into the new set; anything else in the folder is left alone.
        for path in existing:
            if is_own_file(path.name) and path.is_file():
                path.unlink()


def _metal_background(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Brushed metal: fine directional streaks, a shading gradient and a specular band."""
    height, width = yy.shape
    side = min(height, width)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    theta = rng.uniform(0.0, np.pi)
    along = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    across = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    # Streaks: 1-D noise indexed by the across-coordinate, so it is constant along the brush.
    n_rows = int(np.ceil(np.hypot(height, width))) + 2
    rows = (across - across.min()).astype(np.int64)
    fine = rng.normal(0.0, 1.0, n_rows)
    coarse = np.interp(np.arange(n_rows), np.linspace(0, n_rows, 12), rng.normal(0, 1, 12))
    fade = 0.7 + 0.3 * np.sin(along * rng.uniform(0.02, 0.06) + rng.uniform(0, 2 * np.pi))
    streaks = 0.035 * fine[rows] * fade + 0.03 * coarse[rows]
    phi = rng.uniform(0.0, 2 * np.pi)
    gradient = rng.uniform(0.05, 0.18) * ((xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)) / side
    psi = rng.uniform(0.0, np.pi)
    band_pos = rng.uniform(-0.4, 0.4) * side
    band_dist = -(xx - cx) * np.sin(psi) + (yy - cy) * np.cos(psi) - band_pos
    band = rng.uniform(0.08, 0.25) * np.exp(-((band_dist / (rng.uniform(0.08, 0.25) * side)) ** 2))
    grain = 0.012 * rng.normal(0.0, 1.0, yy.shape)
    lum = rng.uniform(0.48, 0.70) + streaks + gradient + band + grain  # (H, W)
    tint = 1.0 + rng.normal(0.0, 0.03, 3)
    return np.clip(lum[..., None] * tint, 0.0, 1.0)  # (H, W, 3)


def _make_beads(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> list[_Bead]:
    """One bead, or two: the second near-parallel or crossing, offset from the first."""
    side = min(yy.shape)
    theta = rng.uniform(0.0, np.pi)
    offset = rng.uniform(-0.2, 0.2) * side
    beads = [_bead(rng, yy, xx, theta, offset)]
    if rng.random() < 0.35:
        parallel = rng.random() < 0.6
        theta2 = theta + rng.uniform(-0.3, 0.3) if parallel else rng.uniform(0.0, np.pi)
        away = -np.sign(offset) if offset != 0 else 1.0
        beads.append(_bead(rng, yy, xx, theta2, offset + away * rng.uniform(0.3, 0.42) * side))
    return beads


def _bead(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, theta: float, offset: float
) -> _Bead:
    """A bead whose centre line is a sum of two sinusoids in a frame rotated by ``theta``."""
    height, width = yy.shape
    side = min(height, width)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    amps = rng.uniform(0.02, 0.12, 2) * side
    freqs = 2 * np.pi / (rng.uniform(0.7, 2.0, 2) * side)
    arg = freqs[:, None, None] * u + rng.uniform(0, 2 * np.pi, 2)[:, None, None]  # (2, H, W)
    centre = offset + np.einsum("k,khw->hw", amps, np.sin(arg))
    slope = np.einsum("k,khw->hw", amps * freqs, np.cos(arg))
    # Vertical distance to the curve over the slope factor approximates the normal distance.
    dist = (v - centre) / np.sqrt(1.0 + slope**2)
    base = rng.uniform(0.035, 0.075) * side
    swell = rng.uniform(0.1, 0.3) * np.sin(u * 2 * np.pi / (rng.uniform(0.5, 1.5) * side))
    wobble = 0.04 * np.sin(u * rng.uniform(0.3, 0.6) + rng.uniform(0, 2 * np.pi))
    half_width = base * (1.0 + swell + wobble)
    normal = np.array([np.cos(theta), -np.sin(theta)])
    return _Bead(u=u, t=dist / half_width, half_width=half_width, normal=normal)


def _composite(image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """Alpha-blend ``rgb`` (H, W, 3) over ``image`` in place with ``alpha`` (H, W)."""
    image += alpha[..., None] * (rgb - image)


def _edge_alpha(t: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """Coverage with a one-pixel soft edge at ``|t| = 1``; 0.5 exactly on the edge."""
    return np.clip((1.0 - np.abs(t)) * half_width + 0.5, 0.0, 1.0)


def _paint_bead(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    bead: _Bead,
    colour: np.ndarray,
    scale: float,
) -> None:
    """Cast the bead's shadow, then paint it with cylindrical shading (bright crown)."""
    shadow_side = rng.choice([-1.0, 1.0])
    outside = (np.abs(bead.t) - 1.0) * bead.half_width  # px beyond the edge
    on_side = np.sign(bead.t) == shadow_side
    shadow = np.where(on_side & (outside > 0), 0.3 * np.exp(-outside / (2.0 * scale)), 0.0)
    image *= 1.0 - shadow[..., None]
    t = np.clip(bead.t, -1.0, 1.0)
    crown = np.sqrt(1.0 - t**2)
    light = rng.uniform(-0.45, 0.45)
    specular = rng.uniform(0.1, 0.3) * np.exp(-(((t - light) / 0.25) ** 2))
    grain = 0.02 * rng.normal(0.0, 1.0, t.shape)
    lum = 0.55 + 0.45 * crown + grain  # (H, W)
    rgb = colour * lum[..., None] + specular[..., None]
    _composite(image, rgb, _edge_alpha(bead.t, bead.half_width))
    mask[bead.inside] = SEALER


def _paint_gap(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    bead: _Bead,
    colour: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
    scale: float,
) -> None:
    """Remove a stretch of the bead, exposing rough primer; torn ends are jagged."""
    along = bead.u[bead.inside]
    lo, hi = np.quantile(along, [0.15, 0.85])
    centre = rng.uniform(lo, hi)
    half = rng.uniform(7.0, 18.0) * scale  # half the gap length, px
    t = bead.t
    ragged = 2.0 * scale * np.sin(t * rng.uniform(3, 7) + rng.uniform(0, 2 * np.pi))
    ragged = ragged + rng.uniform(-1.0, 1.0, t.shape) * scale
    in_stretch = np.abs(bead.u - centre) < half + ragged
    # Paint a pixel beyond the label so no half-covered sealer rim is left along the gap.
    paint = in_stretch & (np.abs(t) < 1.0 + 1.0 / bead.half_width)
    primer = _PRIMER * rng.uniform(0.85, 1.15)
    rough = 1.0 + 0.12 * rng.normal(0.0, 1.0, t.shape)
    rgb = primer * rough[..., None]
    image[paint] = rgb[paint]
    mask[in_stretch & bead.inside] = DEFECT


def _paint_spill(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    bead: _Bead,
    colour: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
    scale: float,
) -> None:
    """An irregular, glossy amber blob of excess material pushed out over a bead edge."""
    edge = np.flatnonzero(bead.inside & (np.abs(bead.t) > 0.6))
    if edge.size == 0:
        return
    pick = edge[rng.integers(edge.size)]
    py, px = np.unravel_index(pick, bead.t.shape)
    radius = rng.uniform(7.0, 15.0) * scale
    push = bead.normal * np.sign(bead.t.flat[pick]) * radius * rng.uniform(0.3, 0.9)
    dy, dx = yy - (py + push[0]), xx - (px + push[1])
    dist, angle = np.hypot(dy, dx), np.arctan2(dy, dx)
    harmonics = np.arange(2, 5)[:, None, None]  # (3, 1, 1)
    amps = rng.uniform(0.0, 0.25, 3)[:, None, None] / np.sqrt(harmonics - 1)
    phases = rng.uniform(0, 2 * np.pi, 3)[:, None, None]
    outline = radius * (1.0 + (amps * np.cos(harmonics * angle + phases)).sum(0))  # (H, W)
    s = np.clip(dist / outline, 0.0, 1.0)
    dome = np.sqrt(1.0 - s**2)
    hot = np.hypot(dy + 0.35 * radius, dx + 0.3 * radius) / (0.22 * radius)
    gloss = 0.55 * np.exp(-(hot**2))
    mottle = 0.05 * rng.normal(0.0, 1.0, dist.shape)
    tint = 0.45 * colour + 0.55 * _SPILL_TINT * rng.uniform(0.8, 1.1)
    lum = (0.45 + 0.5 * dome) * (1.0 - 0.3 * s**4) + mottle  # darker rim, thick dome
    rgb = tint * lum[..., None] + gloss[..., None]
    _composite(image, rgb, np.clip((outline - dist) + 0.5, 0.0, 1.0))
    mask[dist < outline] = DEFECT


def _paint_bubbles(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    bead: _Bead,
    colour: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
    scale: float,
) -> None:
    """A cluster of small dark pits with a bright lower rim on the bead crown."""
    # Pits sit on intact sealer only, never inside a gap or a spill.
    crown = np.flatnonzero(bead.inside & (np.abs(bead.t) < 0.6) & (mask == SEALER))
    if crown.size == 0:
        return
    n_pits = int(rng.integers(3, 8))
    picks = crown[rng.integers(crown.size, size=n_pits)]
    py, px = np.unravel_index(picks, bead.t.shape)
    radii = rng.uniform(1.6, 3.0, n_pits) * scale
    dy = yy[None] - py[:, None, None]  # (P, H, W)
    dx = xx[None] - px[:, None, None]
    rel = np.hypot(dy, dx) / radii[:, None, None]  # (P, H, W) distance in radii
    nearest = rel.argmin(axis=0)
    r = np.take_along_axis(rel, nearest[None], axis=0)[0]  # (H, W)
    rim_y = np.take_along_axis(dy, nearest[None], axis=0)[0] / radii[nearest]
    lum = 0.2 + 0.5 * r**2 + 0.5 * np.clip(rim_y, 0.0, 1.0)
    rgb = colour * lum[..., None]
    pits = r < 1.0
    _composite(image, rgb, np.clip((1.0 - r) * radii[nearest] + 0.5, 0.0, 1.0))
    mask[pits] = DEFECT


_PAINTERS = {"gap": _paint_gap, "spill": _paint_spill, "bubbles": _paint_bubbles}


def _finish(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Brightness jitter and mild sensor noise, then quantise to uint8."""
    image = image * rng.uniform(0.85, 1.15)
    image = image + rng.normal(0.0, rng.uniform(0.008, 0.025), image.shape)
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)

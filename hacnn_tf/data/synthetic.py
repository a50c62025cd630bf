"""A synthetic person re-identification data set in the Market-1501 layout, generated in seconds.

Identities are drawn, people-like figures defined part by part: head (skin tone, hair colour and length), upper
body (colour and pattern: solid, horizontal stripes, vertical stripes or checks, with a second colour), lower body
(colour and shape: trousers, shorts or skirt), shoes, and an optional bag. Attributes come from small palettes
and identities are drawn in "families" that share one set of clothing colours worn on different parts, so that
many identities share every colour and a global colour histogram does not tell them apart; the arrangement of
parts does. Nuisance as a detector and a camera network make it: per-camera colour cast, brightness, blur, noise
and background scene, random shifts, scale changes and crops that cut the figure, clutter, occlusions and flips.
The gallery also holds distractors (pid 0, figures of no identity) and junk crops (pid -1, mostly background),
named as in Market-1501 so that `load_dataset("market1501", root)` reads the set.

Run `python -m hacnn_tf.data.synthetic --root DIR` to write it and print its statistics (`--layout folder` writes
it as `train/`, `query/`, `gallery/` for the `folder` reader instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import pathlib
import shutil
import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

__all__ = ["SyntheticConfig", "generate", "main"]

_FORMAT_VERSION = 1
MARKER_FILE = ".synthetic.json"  # in the root of every generated set: the arguments that wrote it
# The folders of the splits in each layout: (train, query, gallery).
LAYOUTS = {"market1501": ("bounding_box_train", "query", "bounding_box_test"), "folder": ("train", "query", "gallery")}

# Palettes (RGB). Few entries, so that many identities share each colour.
# Clothes: black, white, grey, red, blue, green, yellow, brown.
_CLOTHES = np.array(
    [
        [35, 35, 40],
        [225, 225, 220],
        [128, 128, 132],
        [180, 35, 40],
        [40, 70, 170],
        [45, 130, 65],
        [220, 185, 50],
        [125, 80, 45],
    ],
    np.float32,
)
_SKIN = np.array([[235, 200, 175], [210, 160, 130], [165, 115, 85], [105, 72, 52]], np.float32)
_HAIR = np.array([[25, 20, 20], [75, 48, 30], [145, 105, 60], [205, 175, 110], [165, 165, 165]], np.float32)
_SHOES = np.array([[30, 30, 30], [230, 230, 230], [110, 70, 40], [120, 120, 125]], np.float32)
PATTERNS = ("solid", "hstripes", "vstripes", "checks")
LOWER_SHAPES = ("trousers", "shorts", "skirt")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic set; together with `seed` they determine every byte written."""

    num_train_ids: int = 100
    num_test_ids: int = 100
    num_cameras: int = 4
    images_per_id_per_camera: tuple[int, int] = (4, 6)
    num_distractors: int = 100
    num_junk: int = 50
    seed: int = 0
    height: int = 160
    width: int = 64
    jpeg_quality: int = 90


# --------------------------------------------------------------------------------------------------------------
# Identities


def _draw_identities(rng: np.random.Generator, count: int) -> list[dict[str, int | float]]:
    """Draws `count` identities with distinct part-wise clothing. Identities come in families of 2-3 that wear
    the same three clothing colours on different parts (upper, upper pattern, lower)."""
    people: list[dict[str, int | float]] = []
    seen: set[tuple[int, ...]] = set()
    while len(people) < count:
        colours = rng.choice(len(_CLOTHES), 3, replace=False)
        for perm in rng.permutation([[0, 1, 2], [1, 2, 0], [2, 0, 1], [1, 0, 2], [0, 2, 1], [2, 1, 0]])[
            : rng.integers(2, 4)
        ]:
            person = {
                "upper": int(colours[perm[0]]),
                "upper2": int(colours[perm[1]]),
                "lower": int(colours[perm[2]]),
                "pattern": int(rng.integers(len(PATTERNS))),
                "lower_shape": int(rng.choice(3, p=[0.6, 0.2, 0.2])),
                "long_sleeves": int(rng.random() < 0.6),
                "skin": int(rng.integers(len(_SKIN))),
                "hair": int(rng.integers(len(_HAIR))),
                "long_hair": int(rng.random() < 0.35),
                "shoes": int(rng.integers(len(_SHOES))),
                "bag": int(rng.choice(3, p=[0.5, 0.25, 0.25])),
                "bag_colour": int(rng.integers(len(_CLOTHES))),
                "build": float(rng.uniform(0.9, 1.12)),
                "stripe": float(rng.uniform(0.045, 0.065)),
            }
            key = (
                person["upper"],
                person["pattern"],
                person["upper2"] if person["pattern"] else -1,
                person["lower"],
                person["lower_shape"],
            )
            if key in seen or len(people) == count:
                continue
            seen.add(key)
            person["tint"] = rng.normal(0.0, 6.0, (8, 3)).astype(np.float32)  # per-identity shade of each part
            people.append(person)
    return people


# --------------------------------------------------------------------------------------------------------------
# Cameras and scenes


def _draw_camera(rng: np.random.Generator, height: int, width: int) -> dict[str, object]:
    """A camera: colour cast, brightness, blur, noise and a background scene wider than one crop."""
    scene_w = width * 4
    hsv_base = rng.uniform([0, 0.05, 0.35], [1, 0.35, 0.85], (4, 3))
    muted = np.array([_hsv_to_rgb(*c) for c in hsv_base], np.float32) * 255
    palette = np.concatenate([muted, _CLOTHES[rng.choice(len(_CLOTHES), 2, replace=False)]])
    horizon = int(height * rng.uniform(0.55, 0.8))
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    scene = np.where(
        np.arange(height)[:, None, None] < horizon, muted[0] * (0.85 + 0.3 * yy), muted[1] * (1.1 - 0.3 * yy)
    ) * np.ones((1, scene_w, 1), np.float32)
    for _ in range(int(rng.integers(8, 14))):  # doors, windows, poles, posters, parked things
        w, h = int(rng.integers(4, 40)), int(rng.integers(10, height))
        x, y = int(rng.integers(-w // 2, scene_w)), int(rng.integers(-h // 4, height - h // 2))
        scene[max(y, 0) : y + h, max(x, 0) : x + w] = palette[rng.integers(len(palette))] * rng.uniform(0.8, 1.1)
    scene += _smooth_noise(rng, height, scene_w, 12.0)
    return {
        "gain": rng.uniform(0.78, 1.22, 3).astype(np.float32),
        "brightness": float(rng.uniform(0.75, 1.15)),
        "blur": int(rng.choice([0, 1, 2])),
        "noise": rng.uniform(2.0, 7.0) * rng.standard_normal((2 * height, 2 * width, 3), dtype=np.float32),
        "scene": scene.astype(np.float32),
        "palette": palette,
    }


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _smooth_noise(rng: np.random.Generator, height: int, width: int, amplitude: float) -> np.ndarray:
    """Low-frequency texture: a coarse random grid upsampled by pixel repetition and box blurred."""
    coarse = rng.normal(0, amplitude, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    fine = np.repeat(np.repeat(coarse, 8, 0), 8, 1)[:height, :width]
    return (fine + np.roll(fine, 4, 0) + np.roll(fine, 4, 1) + np.roll(np.roll(fine, 4, 0), 4, 1)) / 4


# --------------------------------------------------------------------------------------------------------------
# Rendering


def figure_extent(person: dict) -> tuple[float, float, float, float]:
    """The silhouette `Renderer.figure` paints, as (left, top, right, bottom) offsets in figure heights from the
    horizontal centre and from the top argument: the head's crown at 0.015, the shoes' soles at 0.99, the arms'
    outer edge at the shoulders, (0.118 - 0.03 * 0.01 + 0.045) * build, or the bag's outer edge on its side."""
    arms = (0.118 - 0.03 * 0.01 + 0.045) * person["build"]
    bag = 0.155 * person["build"] + 0.05
    return (-bag if person["bag"] == 2 else -arms, 0.015, bag if person["bag"] == 1 else arms, 0.99)


# The slots of `Renderer.figure`'s label map, in the order of `_part_colours`.
_BACKGROUND_SLOT, _SKIN_SLOT, _HAIR_SLOT, _UPPER_SLOT, _UPPER2_SLOT, _LOWER_SLOT, _SHOES_SLOT, _BAG_SLOT = range(8)


def _paint_legs(labels: np.ndarray, u: np.ndarray, v: np.ndarray, person: dict) -> None:
    """Legs, the lower garment (trousers, shorts or a skirt) and shoes, into `labels` in figure coordinates `u`
    (across, from the centre) and `v` (down, from the top of the head), both in figure heights."""
    au, b = np.abs(u), person["build"]
    leg = np.minimum(np.abs(u - 0.048 * b), np.abs(u + 0.048 * b))
    legs_in = (v >= 0.5) & (v < 0.94)
    shape = LOWER_SHAPES[person["lower_shape"]]
    if shape == "trousers":
        labels[legs_in & ((leg < 0.046 * b) | ((v < 0.6) & (au < 0.09 * b)))] = _LOWER_SLOT
    elif shape == "shorts":
        labels[legs_in & (leg < 0.028 * b)] = _SKIN_SLOT
        labels[(v >= 0.5) & (v < 0.68) & ((leg < 0.048 * b) | ((v < 0.6) & (au < 0.092 * b)))] = _LOWER_SLOT
    else:
        labels[legs_in & (leg < 0.028 * b)] = _SKIN_SLOT
        labels[(v >= 0.5) & (v < 0.72) & (au < (0.095 + 0.08 * (v - 0.5)) * b)] = _LOWER_SLOT
    labels[(v >= 0.93) & (v < 0.99) & (leg < 0.045 * b)] = _SHOES_SLOT


def _paint_upper_body(labels: np.ndarray, u: np.ndarray, v: np.ndarray, person: dict) -> None:
    """The torso with its pattern, the arms (sleeves, then skin) and the bag with its strap, into `labels` (figure
    coordinates as `_paint_legs`)."""
    au, b = np.abs(u), person["build"]
    half = (0.118 - 0.03 * (v - 0.14)) * b
    torso = (v >= 0.14) & (v < 0.52) & (au < half)
    labels[torso] = _UPPER_SLOT
    pattern = PATTERNS[person["pattern"]]
    if pattern != "solid":
        period = person["stripe"]
        rows = ((v - 0.14) / period) % 1.0 < 0.5
        cols = (u / (period * 0.8) + 0.25) % 1.0 < 0.5
        second = {"hstripes": rows, "vstripes": cols, "checks": rows ^ cols}[pattern]
        labels[torso & second] = _UPPER2_SLOT
    arm = (v >= 0.15) & (au >= half) & (au < half + 0.045 * b)
    sleeve_end = 0.44 if person["long_sleeves"] else 0.26
    labels[arm & (v < sleeve_end)] = _UPPER_SLOT
    labels[arm & (v >= sleeve_end) & (v < 0.5)] = _SKIN_SLOT
    if person["bag"]:
        side = 1.0 if person["bag"] == 1 else -1.0
        strap = np.abs((u + side * 0.08 * b) - side * (v - 0.15) * 0.8) < 0.012
        labels[strap & (v >= 0.14) & (v < 0.42) & (au < half)] = _BAG_SLOT
        labels[(np.abs(u - side * 0.155 * b) < 0.05) & (v >= 0.38) & (v < 0.56)] = _BAG_SLOT


def _part_colours(person: dict) -> np.ndarray:
    """`(8, 3)` float32 RGB of each label slot of `person` (the background's unused)."""
    return np.stack(
        [
            np.zeros(3, np.float32),
            _SKIN[person["skin"]],
            _HAIR[person["hair"]],
            _CLOTHES[person["upper"]],
            _CLOTHES[person["upper2"]],
            _CLOTHES[person["lower"]],
            _SHOES[person["shoes"]],
            _CLOTHES[person["bag_colour"]],
        ]
    )


class Renderer:
    """Draws figures over camera backgrounds on a fixed pixel grid."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.ys = np.arange(height, dtype=np.float32)[:, None]
        self.xs = np.arange(width, dtype=np.float32)[None, :]

    def background(self, rng: np.random.Generator, camera: dict[str, object]) -> np.ndarray:
        scene = camera["scene"]
        x0 = int(rng.integers(0, scene.shape[1] - self.width + 1))
        image = scene[:, x0 : x0 + self.width].copy()
        palette = camera["palette"]
        for _ in range(int(rng.integers(0, 3))):  # moving clutter
            w, h = int(rng.integers(6, self.width)), int(rng.integers(8, self.height // 2))
            x, y = int(rng.integers(-w // 2, self.width)), int(rng.integers(0, self.height - h // 2))
            image[y : y + h, max(x, 0) : x + w] = palette[rng.integers(len(palette))] * rng.uniform(0.8, 1.1)
        return image

    def figure(
        self, image: np.ndarray, rng: np.random.Generator, person: dict, fh: float, cx: float, top: float
    ) -> np.ndarray:
        """Paints `person` in place: figure height `fh` pixels, horizontal centre `cx`, top of the head `top`.
        Returns the `(height, width)` bool mask of the pixels painted (the figure's silhouette).

        Parts are painted as slot numbers (`_SKIN_SLOT`, ...) into a label map, back to front, then coloured in one
        look-up."""
        u = (self.xs - cx) / fh
        v = (self.ys - top) / fh
        labels = np.zeros((self.height, self.width), np.uint8)
        if person["long_hair"]:
            labels[((u / 0.062) ** 2 + ((v - 0.11) / 0.1) ** 2 < 1) & (v > 0.02)] = _HAIR_SLOT
        _paint_legs(labels, u, v, person)
        _paint_upper_body(labels, u, v, person)
        head = (u / 0.046) ** 2 + ((v - 0.075) / 0.06) ** 2 < 1  # head and hair cap
        labels[head] = _SKIN_SLOT
        labels[head & (v < 0.045 + 0.02 * person["long_hair"])] = _HAIR_SLOT
        colours = np.clip(
            (_part_colours(person) + person["tint"]) * rng.normal(1.0, 0.04, 3).astype(np.float32), 0, 255
        )
        mask = labels > _BACKGROUND_SLOT
        np.copyto(image, colours[labels], where=mask[..., None])
        return mask

    def occlude(self, image: np.ndarray, rng: np.random.Generator, camera: dict[str, object]) -> None:
        """A block over part of the body: from below (a bench, a car) or from a side (another passer-by)."""
        rgb = camera["palette"][rng.integers(len(camera["palette"]))] * rng.uniform(0.7, 1.1)
        if rng.random() < 0.5:
            h = int(rng.uniform(0.15, 0.35) * self.height)
            image[self.height - h :] = rgb
        else:
            w = int(rng.uniform(0.2, 0.4) * self.width)
            y0 = int(rng.integers(0, self.height // 2))
            if rng.random() < 0.5:
                image[y0:, :w] = rgb
            else:
                image[y0:, self.width - w :] = rgb


def finish(image: np.ndarray, rng: np.random.Generator, camera: dict[str, object], flip: bool) -> Image.Image:
    """Camera colour cast, brightness, blur and noise; returns the 8-bit image."""
    gain = camera["gain"] * np.float32(camera["brightness"] * rng.uniform(0.9, 1.1))
    image = image * gain
    if flip:
        image = image[:, ::-1]
    for _ in range(camera["blur"]):  # separable [1, 2, 1] / 4 smoothing passes, border pixels kept
        image = image.copy()
        image[1:-1] = 0.5 * image[1:-1] + 0.25 * (image[:-2] + image[2:])
        image[:, 1:-1] = 0.5 * image[:, 1:-1] + 0.25 * (image[:, :-2] + image[:, 2:])
    pool = camera["noise"]  # sensor noise: a random window of the camera's noise field
    y0, x0 = rng.integers(0, pool.shape[0] - image.shape[0] + 1), rng.integers(0, pool.shape[1] - image.shape[1] + 1)
    image = image + pool[y0 : y0 + image.shape[0], x0 : x0 + image.shape[1]]
    return Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8))


def _render(renderer: Renderer, rng: np.random.Generator, person: dict, camera: dict, kind: str) -> Image.Image:
    """One crop of `person` seen by `camera`; `kind` "junk" makes a bad detection (mostly background)."""
    height, width = renderer.height, renderer.width
    image = renderer.background(rng, camera)
    if kind == "junk":
        fh = height * rng.uniform(0.9, 2.5)
        cx = width * rng.choice([-0.35, 1.35]) + rng.normal(0, 4)
        renderer.figure(image, rng, person, fh, cx, rng.uniform(-0.5 * fh, 0.3 * height))
    else:
        if rng.random() < 0.12:  # crop error: zoomed in or off-centre, the figure partly cut off
            fh = height * rng.uniform(1.0, 1.25)
            cx = width / 2 + rng.choice([-1, 1]) * rng.uniform(6, 14)
        else:
            fh = height * rng.uniform(0.84, 1.0)
            cx = width / 2 + rng.normal(0, 2.5)
        top = rng.uniform(min(0.0, height - fh), max(0.0, height - fh)) + rng.normal(0, 2)
        renderer.figure(image, rng, person, fh, cx, top)
        if rng.random() < 0.12:
            renderer.occlude(image, rng, camera)
    return finish(image, rng, camera, flip=bool(rng.random() < 0.5))


# --------------------------------------------------------------------------------------------------------------
# The data set


def _plan(config: SyntheticConfig, rng: np.random.Generator) -> tuple[list[dict], list[tuple[str, int, int, int]]]:
    """Identities and the list of images to write: (folder, person index or -1 for junk, Market pid, camera)."""
    n_ids = config.num_train_ids + config.num_test_ids
    people = _draw_identities(rng, n_ids + config.num_distractors + config.num_junk)
    pids = rng.permutation(np.arange(1, n_ids + 1))  # Market-style: train and test ids interleaved
    lo, hi = config.images_per_id_per_camera
    jobs: list[tuple[str, int, int, int]] = []
    for index in range(n_ids):
        train = index < config.num_train_ids
        for cam in range(config.num_cameras):
            count = int(rng.integers(lo, hi + 1))
            for shot in range(count):
                folder = "bounding_box_train" if train else ("query" if shot == 0 else "bounding_box_test")
                jobs.append((folder, index, int(pids[index]), cam))
    for k in range(config.num_distractors):
        jobs.append(("bounding_box_test", n_ids + k, 0, int(rng.integers(config.num_cameras))))
    for k in range(config.num_junk):
        jobs.append(
            ("bounding_box_test", n_ids + config.num_distractors + k, -1, int(rng.integers(config.num_cameras)))
        )
    return people, jobs


def _check(config: SyntheticConfig) -> None:
    lo, hi = config.images_per_id_per_camera
    if config.num_cameras < 2 or config.num_cameras > 9:
        raise ValueError("num_cameras must be within 2..9 (Market-1501 names hold one camera digit)")
    if not 2 <= lo <= hi:
        raise ValueError("images_per_id_per_camera must be >= 2 (one query plus a gallery image per camera)")
    if min(config.num_train_ids, config.num_test_ids) < 1 or config.num_train_ids + config.num_test_ids > 9999:
        raise ValueError("need 1..9999 identities in each of train and test")


def generate(
    root: str | pathlib.Path,
    num_train_ids: int = 100,
    num_test_ids: int = 100,
    num_cameras: int = 4,
    images_per_id_per_camera: int | tuple[int, int] = (4, 6),
    seed: int = 0,
    height: int = 160,
    width: int = 64,
    num_distractors: int = 100,
    num_junk: int = 50,
    jpeg_quality: int = 90,
    layout: str = "market1501",
) -> pathlib.Path:
    """Writes the synthetic set under `root` and returns `root`: in the Market-1501 layout (`bounding_box_train/`,
    `query/`, `bounding_box_test/`, read by `load_dataset("market1501", root)`) or, with `layout="folder"`, as
    `train/`, `query/`, `gallery/` (the same files, read by `load_dataset("folder", root)`).

    Each identity gets `images_per_id_per_camera` images (an int, or an inclusive (min, max) range drawn per
    identity and camera) in every camera; a test identity's first image in each camera is its query there and the
    others go to the gallery, so every query has gallery matches in every other camera. The gallery also gets
    `num_distractors` pid-0 figures of no identity and `num_junk` pid-(-1) bad crops.

    Deterministic (the same arguments give byte-identical files), idempotent (returns at once when `root` holds a
    set written with the same arguments) and atomic (written to a temporary folder renamed at the end). A `root`
    holding a synthetic set of other arguments is replaced; any other non-empty `root` raises FileExistsError.
    """
    if isinstance(images_per_id_per_camera, int):
        images_per_id_per_camera = (images_per_id_per_camera, images_per_id_per_camera)
    config = SyntheticConfig(
        num_train_ids,
        num_test_ids,
        num_cameras,
        tuple(images_per_id_per_camera),
        num_distractors,
        num_junk,
        seed,
        height,
        width,
        jpeg_quality,
    )
    _check(config)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}; got {layout!r}")
    params = {"format_version": _FORMAT_VERSION, **dataclasses.asdict(config)}
    params["images_per_id_per_camera"] = list(config.images_per_id_per_camera)
    if layout != "market1501":  # the marker of a Market-1501-layout set is as it was before layouts existed
        params["layout"] = layout
    return write_once(root, params, MARKER_FILE, lambda out: _write(config, out, LAYOUTS[layout]))


def write_once(
    root: str | os.PathLike, params: dict, marker_name: str, write: Callable[[pathlib.Path], None]
) -> pathlib.Path:
    """Writes a generated folder at `root` once: returns at once when `root/marker_name` holds `params`; else
    `write(tmp)` fills a temporary folder beside `root`, which gets the marker and is renamed to `root` (replacing
    a folder of other params). Any other non-empty `root` raises FileExistsError."""
    root = pathlib.Path(root).expanduser().absolute()
    marker = root / marker_name
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return root
    if root.exists() and not marker.is_file() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and holds no generated set (no {marker_name}); choose another root")

    from hacnn_tf.io_utils import make_staging_dir  # here: the package's __init__ imports TensorFlow

    tmp = make_staging_dir(root.parent, root.name + ".tmp-")
    try:
        write(tmp)
        (tmp / marker_name).write_text(json.dumps(params, indent=1, sort_keys=True))
        if marker.is_file() and json.loads(marker.read_text()) == params:  # written meanwhile by another process
            shutil.rmtree(tmp)
            return root
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def draw_world(config: SyntheticConfig) -> tuple[list[dict], list[dict], list[tuple[str, int, int, int]]]:
    """The cameras, the identities and the image list (folder, person index, Market pid, camera) of the set that
    `config` writes: the same draws `generate` makes, so other renderings of it show the same people and cameras."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[0])
    cameras = [_draw_camera(rng, config.height, config.width) for _ in range(config.num_cameras)]
    people, jobs = _plan(config, rng)
    return cameras, people, jobs


def _write(config: SyntheticConfig, out: pathlib.Path, folders: Sequence[str] = LAYOUTS["market1501"]) -> None:
    cameras, people, jobs = draw_world(config)
    renderer = Renderer(config.height, config.width)
    folder_of = dict(zip(LAYOUTS["market1501"], folders))
    for folder in folders:
        (out / folder).mkdir()
    image_seeds = np.random.SeedSequence(config.seed).spawn(2)[1].spawn(len(jobs))
    for number, ((folder, person, pid, cam), image_seed) in enumerate(zip(jobs, image_seeds)):
        image_rng = np.random.default_rng(image_seed)
        kind = "junk" if pid == -1 else "figure"
        image = _render(renderer, image_rng, people[person], cameras[cam], kind)
        pid_text = "-1" if pid == -1 else f"{pid:04d}"
        name = f"{pid_text}_c{cam + 1}s1_{number:06d}_00.jpg"
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=config.jpeg_quality, subsampling=0)
        (out / folder_of[folder] / name).write_bytes(buffer.getvalue())


def _parser() -> argparse.ArgumentParser:
    """The command line of `main`, its defaults `SyntheticConfig`'s."""
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(
        prog="python -m hacnn_tf.data.synthetic",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--root",
        required=True,
        help="folder to write the data set into (created; an existing generated set of other "
        "arguments is replaced, any other non-empty folder refused)",
    )
    parser.add_argument(
        "--layout",
        choices=list(LAYOUTS),
        default="market1501",
        help="market1501: bounding_box_train/, query/, bounding_box_test/ (read as --dataset "
        "market1501); folder: train/, query/, gallery/ (read as --dataset folder)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="every byte written follows from it")
    parser.add_argument("--num-train-ids", type=int, default=defaults.num_train_ids, help="training identities")
    parser.add_argument(
        "--num-test-ids", type=int, default=defaults.num_test_ids, help="test identities (query and gallery)"
    )
    parser.add_argument("--num-cameras", type=int, default=defaults.num_cameras, help="cameras, 2..9")
    parser.add_argument(
        "--images-per-id-per-camera",
        type=int,
        nargs=2,
        default=defaults.images_per_id_per_camera,
        metavar=("MIN", "MAX"),
        help="images of each identity in each camera, drawn in MIN..MAX (MIN >= 2: a query and a gallery image)",
    )
    parser.add_argument(
        "--num-distractors", type=int, default=defaults.num_distractors, help="gallery figures of no identity (pid 0)"
    )
    parser.add_argument(
        "--num-junk",
        type=int,
        default=defaults.num_junk,
        help="gallery crops of mostly background (pid -1, dropped by the readers)",
    )
    parser.add_argument("--height", type=int, default=defaults.height, help="image height in pixels")
    parser.add_argument("--width", type=int, default=defaults.width, help="image width in pixels")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: writes the synthetic set and prints its statistics table (exit 2 with one line for a bad option or a
    root that holds something else)."""
    from hacnn_tf.data.datasets import load_dataset

    parser = _parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        root = generate(
            args.root,
            num_train_ids=args.num_train_ids,
            num_test_ids=args.num_test_ids,
            num_cameras=args.num_cameras,
            images_per_id_per_camera=tuple(args.images_per_id_per_camera),
            seed=args.seed,
            height=args.height,
            width=args.width,
            num_distractors=args.num_distractors,
            num_junk=args.num_junk,
            layout=args.layout,
        )
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    print(f"synthetic data set at {root} ({time.perf_counter() - start:.1f} s), {args.layout} layout")
    load_dataset(args.layout, root).print_summary()


if __name__ == "__main__":
    main()

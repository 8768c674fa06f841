"""A synthetic micro-expression corpus, rendered in code: the default for demos and fast tests.

It exists so that every stage of mekit (face alignment, apex spotting, optical flow, models,
intensity regression, reports) can run end to end without licensed data, and so that those
stages can be tested against a known ground truth: the exact onset, apex and offset, the
per-frame intensity, the facial actions (with their FACS action units) and the subject.

What is drawn (all with OpenCV and NumPy, deterministically from a seed):

- one face per subject, with identity varying across subjects: face shape and size, the
  position and size of eyes, brows, nose and mouth, brow thickness and arch, skin tone, hair
  colour and hairline, and a fixed skin texture that moves with the skin (so optical flow has
  something to track);
- per clip, one or more subtle *local* facial actions (a few pixels at most) rendered as
  smooth Gaussian-weighted displacement fields around the feature and applied with
  :func:`cv2.remap`, so optical flow sees real motion rather than a cross-fade;
- onset-apex-offset timing at a high frame rate (200 fps, like CASME II and SAMM), with a
  raised-cosine rise to the apex and fall to the offset;
- small head motion (sub-pixel to about one pixel of translation and rotation drift),
  per-clip brightness and contrast, and sensor noise.

Determinism: the same parameters give the same pixels (every random draw comes from a
generator seeded by ``seed`` and the subject and clip indices, so one subject's face does not
depend on how many subjects are drawn). This holds for one OpenCV/NumPy build; another build
may round some pixels differently, which is why a cached corpus is found by its parameters'
hash and never recomputed in place.

The on-disk layout mimics CASME II's ``Cropped`` folders: ``<root>/sub01/clip01/img<N>.jpg``
where ``N`` runs from the clip's onset to its offset and the onset is an arbitrary frame number
(as in the real corpora, so code that assumes "frame 0 is the onset" fails here too). A
``synthetic.json`` manifest in the root holds the generation parameters and the ground truth,
so a generated corpus is loaded without regenerating it.

The actions and the action units they mimic (after Ekman, Friesen & Hager, *FACS Manual*, 2002):

======================  ==========  ==============================================
action                  AUs         displacement
======================  ==========  ==============================================
``brow_raise``          1+2         both brows (and forehead) up
``brow_lower``          4           brows down and towards the midline
``eye_widen``           5           upper lids up, lower lids down
``eye_narrow``          7           lids towards the eye's midline (lid tightener)
``nose_wrinkle``        9           nose wings and sides of the nose up
``lip_corner_pull``     12          lip corners up and outwards
``lip_corner_depress``  15          lip corners down (and slightly outwards)
======================  ==========  ==============================================

Unilateral variants (``*_left`` / ``*_right``: the subject's left, which is the image's right)
move one side only and carry an ``L``/``R`` prefix on their AUs, as the corpora write them.

Default classes follow the MEGC three-class set (negative, positive, surprise) plus an
``others`` catch-all like CASME II's; the default imbalance makes the majority class three
times the minority, close to the ratios of the CASME II and SAMM parts of the MEGC 2019
composite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from mekit.data.labels import canonical
from mekit.data.schema import LoadReport, SampleTable
from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["ACTIONS", "DEFAULT_CLASSES", "DEFAULT_CLASS_WEIGHTS", "GENERATOR_VERSION", "MANIFEST", "Action",
           "Identity", "SyntheticParams", "action_field", "generate_synthetic", "intensity_curve",
           "load_synthetic", "render_face", "render_photo", "write_photo_folder"]

#: Bump this whenever the pixels a given parameter set produces change, so cached corpora
#: made by an older renderer are not reused.
GENERATOR_VERSION = 1

#: Name of the manifest written into every generated corpus.
MANIFEST = "synthetic.json"

DATASET = "synthetic"


# -- facial actions --------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """One localised facial action: the FACS AUs it mimics and the side(s) it moves."""

    name: str
    aus: tuple[str, ...]
    description: str


#: Every action the renderer can draw, by name.
ACTIONS: dict[str, Action] = {}


def _action(name: str, aus: tuple[str, ...], description: str, sided: bool = True) -> None:
    ACTIONS[name] = Action(name, aus, description)
    if sided:
        for side, prefix in (("left", "L"), ("right", "R")):
            ACTIONS[f"{name}_{side}"] = Action(f"{name}_{side}", tuple(prefix + a for a in aus),
                                                f"{description} (subject's {side} side only)")


_action("brow_raise", ("1", "2"), "inner and outer brow raiser: brows and forehead move up")
_action("brow_lower", ("4",), "brow lowerer: brows move down and towards the midline")
_action("eye_widen", ("5",), "upper lid raiser: lids move apart")
_action("eye_narrow", ("7",), "lid tightener: lids move towards the eye's midline")
_action("nose_wrinkle", ("9",), "nose wrinkler: nose wings and upper lip move up", sided=False)
_action("lip_corner_pull", ("12",), "lip corner puller: corners move up and outwards")
_action("lip_corner_depress", ("15",), "lip corner depressor: corners move down")

#: Default classes: each class is a list of recipes (tuples of actions); a clip of the class
#: draws one recipe. The first action of a recipe is the primary one (full amplitude); the
#: others are drawn at 50-100 % of it. 'others' mixes actions that share regions with the three
#: emotions (unilateral lip corner, unilateral brow, lid tightening) so the task is not trivial,
#: as CASME II's 'others' (AU14 contempt-like smiles, isolated brow movements) is not.
DEFAULT_CLASSES: dict[str, tuple[tuple[str, ...], ...]] = {
    "negative": (("brow_lower", "nose_wrinkle"), ("brow_lower", "lip_corner_depress"),
                 ("brow_lower",), ("lip_corner_depress", "brow_lower")),
    "positive": (("lip_corner_pull",), ("lip_corner_pull", "eye_narrow")),
    "surprise": (("brow_raise", "eye_widen"), ("brow_raise",)),
    "others": (("eye_narrow",), ("lip_corner_pull_right",), ("brow_raise_left",),
               ("lip_corner_pull_left", "brow_lower_right")),
}

#: Default class weights: majority (negative) 3x minority (surprise). For reference, the MEGC
#: 2019 composite's CASME II part has 88 negative, 32 positive, 25 surprise clips and CASME II
#: has 99 'others' (Yap et al., MEGC 2019 / Yan et al., PLoS ONE 2014).
DEFAULT_CLASS_WEIGHTS: dict[str, float] = {"negative": 0.42, "others": 0.24, "positive": 0.20,
                                           "surprise": 0.14}


# -- parameters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticParams:
    """Everything that determines a synthetic corpus's pixels and table (hashed for the cache).

    Amplitudes and head motion are in pixels of the rendered frame, rotation in degrees,
    noise in grey levels (0-255), brightness as a relative gain.

    The default amplitude and noise were chosen so that the task is learnable but not
    trivial. Measured on the default corpus (132 clips, 12 subjects, seeds 0-2), 4-fold
    subject-grouped cross-validation of a logistic regression gives a macro F1 of 0.84-0.93
    on Farneback flow onset->apex pooled on an 8x8 grid, and 0.53-0.59 on the onset->apex
    frame difference at 16x16 (chance is about 0.25). Head motion is kept
    sub-pixel, like the residual motion of registered corpora (CASME II's frames are
    registered): at 0.5 px the whole-frame difference to the onset no longer peaks at the apex
    (the drift dominates it: 14 % of clips within 2 frames, seed 0), but the local motion
    (Farneback flow to the onset minus its median, 99th percentile of magnitude) does: 99 %
    of clips within 2 frames, mean error 0.6 frames.
    """

    n_subjects: int = 12
    clips_per_subject: int = 11
    classes: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = tuple(DEFAULT_CLASSES.items())
    class_weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_CLASS_WEIGHTS.items())
    size: int = 128
    fps: float = 200.0
    seed: int = 0
    frames: tuple[int, int] = (30, 50)          # clip length range, onset..offset inclusive
    apex_position: tuple[float, float] = (0.3, 0.55)  # apex as a fraction of the clip
    amplitude: tuple[float, float] = (0.6, 2.0)  # peak displacement of the primary action, px
    head_motion: float = 0.5                    # largest head translation over a clip, px
    head_rotation: float = 0.2                  # largest head rotation over a clip, degrees
    noise: float = 2.5                          # sensor noise standard deviation, grey levels
    brightness: float = 0.06                    # per-clip gain varies within 1 +/- this
    colour: bool = True
    ext: str = "jpg"
    quality: int = 95                           # JPEG quality (ignored for png)

    # -- validation and identity -----------------------------------------------------------
    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ConfigError:
            return ConfigError(f"synthetic corpus: {name}={getattr(self, name)!r}; expected {expected}")

        if self.n_subjects < 1:
            raise bad("n_subjects", "at least 1")
        if self.clips_per_subject < 1:
            raise bad("clips_per_subject", "at least 1")
        if not 32 <= self.size <= 1024:
            raise bad("size", "32..1024 pixels")
        if self.fps <= 0:
            raise bad("fps", "a positive frame rate")
        lo, hi = self.frames
        if not 3 <= lo <= hi:
            raise bad("frames", "(min, max) clip lengths with 3 <= min <= max")
        a, b = self.apex_position
        if not 0.0 < a <= b < 1.0:
            raise bad("apex_position", "(lo, hi) fractions with 0 < lo <= hi < 1")
        a, b = self.amplitude
        if not 0.0 < a <= b:
            raise bad("amplitude", "(min, max) pixels with 0 < min <= max")
        for name in ("head_motion", "head_rotation", "noise", "brightness"):
            if getattr(self, name) < 0:
                raise bad(name, "a value >= 0")
        if self.ext not in ("jpg", "png"):
            raise bad("ext", "'jpg' or 'png'")
        names = [c for c, _ in self.classes]
        if not names:
            raise bad("classes", "at least one class")
        for cls, recipes in self.classes:
            if not recipes or any(not r for r in recipes):
                raise ConfigError(f"synthetic corpus: class {cls!r} has an empty recipe; "
                                  "expected one or more tuples of action names")
            for r in recipes:
                unknown = [a for a in r if a not in ACTIONS]
                if unknown:
                    raise ConfigError(f"synthetic corpus: class {cls!r} uses unknown actions {unknown}; "
                                      f"expected names among {sorted(ACTIONS)}")
        weights = dict(self.class_weights)
        if set(weights) != set(names):
            raise ConfigError(f"synthetic corpus: class_weights names {sorted(weights)} do not match "
                              f"the classes {sorted(names)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise bad("class_weights", "non-negative weights with a positive sum")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = {c: [list(r) for r in recipes] for c, recipes in self.classes}
        d["class_weights"] = dict(self.class_weights)
        d["frames"] = list(self.frames)
        d["apex_position"] = list(self.apex_position)
        d["amplitude"] = list(self.amplitude)
        return d

    def digest(self) -> str:
        """Short hash of the parameters and the renderer version: the cache folder's name."""
        blob = json.dumps({"version": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def make(cls, **params: Any) -> SyntheticParams:
        """Build from keyword arguments in their natural forms (dicts, lists), rejecting unknown ones."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"synthetic corpus: unknown parameters {unknown}; expected some of {sorted(known)}")
        p = dict(params)
        classes = p.pop("classes", None)
        weights = p.pop("class_weights", None)
        if classes is None:
            classes = DEFAULT_CLASSES
        elif not isinstance(classes, Mapping):
            names = [str(c) for c in classes]
            missing = [c for c in names if c not in DEFAULT_CLASSES]
            if missing:
                raise ConfigError(f"synthetic corpus: classes {missing} have no built-in recipe; expected "
                                  f"names among {sorted(DEFAULT_CLASSES)} or a mapping class -> recipes")
            classes = {c: DEFAULT_CLASSES[c] for c in names}
        cls_items = tuple((str(c), tuple(tuple(str(a) for a in (r if not isinstance(r, str) else (r,)))
                                         for r in recipes)) for c, recipes in classes.items())
        if weights is None:
            names = [c for c, _ in cls_items]
            if all(c in DEFAULT_CLASS_WEIGHTS for c in names):
                weights = {c: DEFAULT_CLASS_WEIGHTS[c] for c in names}
            else:
                weights = {c: 1.0 for c in names}
        elif not isinstance(weights, Mapping):
            w = list(weights)
            if len(w) != len(cls_items):
                raise ConfigError(f"synthetic corpus: {len(w)} class_weights for {len(cls_items)} classes")
            weights = {c: x for (c, _), x in zip(cls_items, w)}
        names = [c for c, _ in cls_items]
        if set(map(str, weights)) != set(names):
            raise ConfigError(f"synthetic corpus: class_weights names {sorted(map(str, weights))} do not match "
                              f"the classes {names}")
        w_items = tuple((c, float({str(k): v for k, v in weights.items()}[c])) for c in names)
        # Canonical types, so equal corpora get equal hashes (fps=200 and fps=200.0 alike).
        for key in ("frames", "apex_position", "amplitude"):
            if key in p:
                v = p[key]
                p[key] = (v, v) if isinstance(v, (int, float)) else tuple(v)
                if len(p[key]) != 2:
                    raise ConfigError(f"synthetic corpus: {key}={v!r}; expected a (min, max) pair")
                conv = int if key == "frames" else float
                p[key] = (conv(p[key][0]), conv(p[key][1]))
        for key in ("n_subjects", "clips_per_subject", "size", "seed", "quality"):
            if key in p:
                p[key] = int(p[key])
        for key in ("fps", "head_motion", "head_rotation", "noise", "brightness"):
            if key in p:
                p[key] = float(p[key])
        if "colour" in p:
            p["colour"] = bool(p["colour"])
        if "ext" in p:
            p["ext"] = str(p["ext"]).lower().lstrip(".")
        return cls(classes=cls_items, class_weights=w_items, **p)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SyntheticParams:
        return cls.make(**dict(d))


# -- identities ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """One subject's face, in fractions of the frame size (x right, y down)."""

    cx: float
    cy: float
    face_w: float         # half-width of the face oval
    face_h: float         # half-height
    eye_y: float
    eye_dx: float         # half the distance between the eye centres
    eye_w: float
    eye_h: float
    brow_gap: float       # brow centre above the eye centre
    brow_len: float
    brow_thick: float
    brow_arch: float
    nose_len: float       # nose tip below the eye line
    nose_w: float
    mouth_y: float        # below the nose tip
    mouth_w: float        # half-width, corner to centre
    lip_h: float
    hairline: float       # hair covers the face above this fraction of the face height
    skin: tuple[float, float, float]   # BGR, 0-255
    hair: tuple[float, float, float]
    lips: tuple[float, float, float]
    iris: tuple[float, float, float]
    background: tuple[float, float, float]
    texture_seed: int


def _identity(rng: np.random.Generator) -> Identity:
    u = rng.uniform
    # Skin tones from light to dark along one line in BGR, with a little hue jitter.
    t = u(0.0, 1.0)
    skin = np.array([175.0, 195.0, 230.0]) * (1 - t) + np.array([70.0, 95.0, 135.0]) * t
    skin = skin + rng.normal(0, 6, 3)
    hair_level = u(15, 90)
    hair = (hair_level * u(0.8, 1.0), hair_level * u(0.85, 1.0), hair_level)
    lips = tuple(float(v) for v in skin * np.array([0.72, 0.70, 0.92]))
    iris_level = u(30, 90)
    bg = u(90, 200)
    return Identity(
        cx=0.5 + u(-0.02, 0.02), cy=0.5 + u(-0.02, 0.02),
        face_w=u(0.30, 0.36), face_h=u(0.40, 0.45),
        eye_y=u(-0.08, -0.04), eye_dx=u(0.125, 0.15), eye_w=u(0.055, 0.07), eye_h=u(0.022, 0.03),
        brow_gap=u(0.06, 0.08), brow_len=u(0.10, 0.13), brow_thick=u(0.016, 0.028),
        brow_arch=u(0.005, 0.02),
        nose_len=u(0.14, 0.18), nose_w=u(0.045, 0.06),
        mouth_y=u(0.08, 0.11), mouth_w=u(0.085, 0.11), lip_h=u(0.02, 0.03),
        hairline=u(0.58, 0.7),
        skin=tuple(float(v) for v in skin), hair=hair, lips=lips,
        iris=(iris_level * 0.6, iris_level * 0.8, iris_level),
        background=(bg * u(0.85, 1.0), bg * u(0.9, 1.0), bg),
        texture_seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True)
class _Geometry:
    """Feature positions of one rendered face, in pixels of the output frame."""

    centre: tuple[float, float]
    eyes: tuple[tuple[float, float], tuple[float, float]]    # (image-left, image-right)
    eye_size: tuple[float, float]
    brows: tuple[tuple[float, float], tuple[float, float]]
    brow_len: float
    nose_tip: tuple[float, float]
    nose_w: float
    mouth: tuple[float, float]
    corners: tuple[tuple[float, float], tuple[float, float]]


def _geometry(idn: Identity, size: int) -> _Geometry:
    s = float(size)
    cx = idn.cx * s
    cy = idn.cy * s
    ey = cy + idn.eye_y * s
    eyes = ((cx - idn.eye_dx * s, ey), (cx + idn.eye_dx * s, ey))
    brows = ((eyes[0][0], ey - idn.brow_gap * s), (eyes[1][0], ey - idn.brow_gap * s))
    ny = ey + idn.nose_len * s
    my = ny + idn.mouth_y * s
    mw = idn.mouth_w * s
    return _Geometry(centre=(cx, cy), eyes=eyes, eye_size=(idn.eye_w * s, idn.eye_h * s),
                     brows=brows, brow_len=idn.brow_len * s, nose_tip=(cx, ny), nose_w=idn.nose_w * s,
                     mouth=(cx, my), corners=((cx - mw, my), (cx + mw, my)))


# -- rendering -------------------------------------------------------------------------------
_SS = 3  # supersampling factor: features are drawn at 3x and area-averaged down (anti-aliasing)


def _soft(shape: tuple[int, int], draw: Callable[[np.ndarray], None], sigma: float) -> np.ndarray:
    """A float mask in [0, 1] drawn by ``draw`` (value 1.0) and Gaussian-blurred by ``sigma`` px."""
    import cv2

    m = np.zeros(shape, np.float32)
    draw(m)
    if sigma > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigma)
    return m


def _blend(img: np.ndarray, mask: np.ndarray, colour: Sequence[float] | np.ndarray) -> None:
    """In place: img = img * (1 - mask) + colour * mask."""
    m = mask[..., None]
    img *= 1.0 - m
    img += m * np.asarray(colour, np.float32)


def _shade(img: np.ndarray, mask: np.ndarray, factor: float) -> None:
    """In place: darken (factor < 1) or lighten (factor > 1) where mask is 1."""
    img *= (1.0 + (factor - 1.0) * mask)[..., None]


def render_face(identity: Identity, size: int) -> np.ndarray:
    """Render one neutral face as a float32 BGR image (``size`` x ``size``, 0-255).

    Shaded eye sockets, dark brows and eyes, a lit nose bridge with dark nostrils, and a
    darker mouth give the light/dark layout frontal face detectors (Haar cascades,
    BlazeFace) key on.
    """
    import cv2

    S = size * _SS
    g = _geometry(identity, S)
    idn = identity
    sh = (S, S)
    P = lambda v: int(round(v))  # noqa: E731 - pixel coordinates for cv2 drawing
    unit = float(S)

    # Background: a vertical gradient with a soft vignette.
    yy = np.linspace(0.0, 1.0, S, dtype=np.float32)[:, None]
    img = np.empty((S, S, 3), np.float32)
    img[:] = np.asarray(idn.background, np.float32) * (1.05 - 0.15 * yy)[..., None]

    cx, cy = g.centre
    fw, fh = idn.face_w * unit, idn.face_h * unit
    # Neck and shoulders, in shaded skin.
    neck = _soft(sh, lambda m: cv2.rectangle(m, (P(cx - 0.55 * fw), P(cy + 0.5 * fh)),
                                             (P(cx + 0.55 * fw), S), 1.0, -1), 2 * _SS)
    _blend(img, neck, np.asarray(idn.skin) * 0.78)
    # Hair behind the head.
    hair_back = _soft(sh, lambda m: cv2.ellipse(m, (P(cx), P(cy - 0.12 * fh)), (P(1.1 * fw), P(0.98 * fh)),
                                                0, 0, 360, 1.0, -1), 1.5 * _SS)
    _blend(img, hair_back, idn.hair)
    # Ears at eye level.
    for sx in (-1, 1):
        ear = _soft(sh, lambda m, sx=sx: cv2.ellipse(m, (P(cx + sx * 0.98 * fw), P(g.eyes[0][1] + 0.1 * fh)),
                                                     (P(0.12 * fw), P(0.22 * fh)), 0, 0, 360, 1.0, -1),
                    _SS)
        _blend(img, ear, np.asarray(idn.skin) * 0.88)
    # Face oval, shaded darker towards its rim (a lit, roughly spherical face).
    face = _soft(sh, lambda m: cv2.ellipse(m, (P(cx), P(cy)), (P(fw), P(fh)), 0, 0, 360, 1.0, -1), _SS)
    xs = (np.arange(S, dtype=np.float32)[None, :] - cx) / fw
    ys = (np.arange(S, dtype=np.float32)[:, None] - cy) / fh
    r2 = np.clip(xs**2 + ys**2, 0, 1)
    skin = np.asarray(idn.skin, np.float32) * (1.08 - 0.35 * r2**1.5)[..., None]
    m = face[..., None]
    img *= 1.0 - m
    img += m * skin
    # Hair over the forehead above the hairline (a soft, slightly curved fringe).
    top = cy - fh
    hl = top + (1 - idn.hairline) * 2 * fh * 0.5
    fringe = _soft(sh, lambda m: cv2.ellipse(m, (P(cx), P(hl - 0.55 * fh)), (P(1.05 * fw), P(0.62 * fh)),
                                             0, 0, 360, 1.0, -1), 1.5 * _SS) * face
    _blend(img, fringe, idn.hair)

    (lex, ley), (rex, rey) = g.eyes
    ew, eh = g.eye_size
    # Eye sockets: broad soft shadow around each eye, joined under the brows.
    sockets = _soft(sh, lambda m: [cv2.ellipse(m, (P(x), P(y - 0.2 * eh)), (P(1.35 * ew), P(2.6 * eh)), 0, 0, 360,
                                               1.0, -1) for x, y in g.eyes], 3 * _SS)
    _shade(img, sockets, 0.78)
    # Nose: a lit bridge, shadowed sides, a lit tip, dark nostrils and a shadow below.
    nx, ny = g.nose_tip
    nw = g.nose_w
    bridge = _soft(sh, lambda m: cv2.rectangle(m, (P(nx - 0.3 * nw), P(ley)), (P(nx + 0.3 * nw), P(ny - 0.3 * nw)),
                                               1.0, -1), 1.5 * _SS)
    _shade(img, bridge, 1.10)
    sides = _soft(sh, lambda m: [cv2.line(m, (P(nx + sx * 0.55 * nw), P(ley + 0.6 * eh)),
                                          (P(nx + sx * 0.95 * nw), P(ny - 0.2 * nw)), 1.0, P(0.25 * nw))
                                 for sx in (-1, 1)], 1.2 * _SS)
    _shade(img, sides, 0.82)
    wings = _soft(sh, lambda m: [cv2.ellipse(m, (P(nx + sx * 0.75 * nw), P(ny)), (P(0.38 * nw), P(0.32 * nw)), 0,
                                             0, 360, 1.0, -1) for sx in (-1, 1)], 0.8 * _SS)
    _shade(img, wings, 0.9)
    tip = _soft(sh, lambda m: cv2.ellipse(m, (P(nx), P(ny - 0.15 * nw)), (P(0.45 * nw), P(0.35 * nw)), 0, 0, 360,
                                          1.0, -1), 1.0 * _SS)
    _shade(img, tip, 1.08)
    nostrils = _soft(sh, lambda m: [cv2.ellipse(m, (P(nx + sx * 0.42 * nw), P(ny + 0.22 * nw)),
                                                (P(0.22 * nw), P(0.11 * nw)), sx * 15, 0, 360, 1.0, -1)
                                    for sx in (-1, 1)], 0.5 * _SS)
    _shade(img, nostrils, 0.35)
    under = _soft(sh, lambda m: cv2.ellipse(m, (P(nx), P(ny + 0.55 * nw)), (P(0.8 * nw), P(0.22 * nw)), 0, 0, 360,
                                            1.0, -1), 1.5 * _SS)
    _shade(img, under, 0.88)
    # Mouth: lips, a dark line between them that turns down slightly into the corners.
    mx, my = g.mouth
    (lcx, lcy), (rcx, rcy) = g.corners
    lh = idn.lip_h * unit
    mw = (rcx - lcx) / 2
    lips = _soft(sh, lambda m: [cv2.ellipse(m, (P(mx), P(my - 0.45 * lh)), (P(0.95 * mw), P(0.75 * lh)), 0,
                                            180, 360, 1.0, -1),
                                cv2.ellipse(m, (P(mx), P(my)), (P(0.97 * mw), P(1.1 * lh)), 0, 0, 180, 1.0, -1),
                                cv2.rectangle(m, (P(mx - 0.95 * mw), P(my - 0.45 * lh)),
                                              (P(mx + 0.95 * mw), P(my)), 1.0, -1)], 0.7 * _SS)
    _blend(img, lips, idn.lips)
    line_pts = np.array([[lcx, lcy + 0.1 * lh], [mx - 0.5 * mw, my - 0.05 * lh], [mx, my + 0.05 * lh],
                         [mx + 0.5 * mw, my - 0.05 * lh], [rcx, rcy + 0.1 * lh]], np.float32)
    mouth_line = _soft(sh, lambda m: cv2.polylines(m, [np.round(line_pts).astype(np.int32)], False, 1.0,
                                                   max(1, P(0.35 * lh)), cv2.LINE_AA), 0.4 * _SS)
    _shade(img, mouth_line, 0.35)
    corners = _soft(sh, lambda m: [cv2.circle(m, (P(x), P(y)), P(0.5 * lh), 1.0, -1) for x, y in g.corners],
                    0.6 * _SS)
    _shade(img, corners, 0.6)
    chin = _soft(sh, lambda m: cv2.ellipse(m, (P(mx), P(my + 2.8 * lh)), (P(0.6 * mw), P(0.6 * lh)), 0, 0, 360,
                                           1.0, -1), 2 * _SS)
    _shade(img, chin, 0.9)
    # Eyes: white almond, iris and pupil, and a dark upper lid line.
    for (ex, ey) in g.eyes:
        white = _soft(sh, lambda m, ex=ex, ey=ey: cv2.ellipse(m, (P(ex), P(ey)), (P(ew), P(eh)), 0, 0, 360,
                                                              1.0, -1), 0.5 * _SS)
        _blend(img, white, (205, 210, 215))
        iris = _soft(sh, lambda m, ex=ex, ey=ey: cv2.circle(m, (P(ex), P(ey)), P(0.95 * eh), 1.0, -1),
                     0.4 * _SS) * white
        _blend(img, iris, idn.iris)
        pupil = _soft(sh, lambda m, ex=ex, ey=ey: cv2.circle(m, (P(ex), P(ey)), P(0.42 * eh), 1.0, -1),
                      0.3 * _SS) * white
        _blend(img, pupil, (15, 15, 15))
        lid = _soft(sh, lambda m, ex=ex, ey=ey: cv2.ellipse(m, (P(ex), P(ey)), (P(1.05 * ew), P(1.1 * eh)), 0,
                                                            185, 355, 1.0, max(1, P(0.35 * eh)), cv2.LINE_AA),
                    0.4 * _SS)
        _blend(img, lid, np.asarray(idn.hair) * 0.6)
    # Brows: thick, slightly arched strokes, thicker towards the midline.
    bl = g.brow_len
    bt = idn.brow_thick * unit
    arch = idn.brow_arch * unit
    for k, (bx, by) in enumerate(g.brows):
        inner = 1 if k == 0 else -1  # direction towards the midline
        xs_b = np.linspace(-0.5, 0.5, 12)
        pts_top, pts_bot = [], []
        for t in xs_b:
            x = bx + t * bl
            y = by - arch * (1 - (2 * t) ** 2)
            w = bt * (0.65 + 0.35 * (0.5 + inner * t))  # thicker at the inner end
            pts_top.append([x, y - w / 2])
            pts_bot.append([x, y + w / 2])
        poly = np.array(pts_top + pts_bot[::-1], np.float32)
        brow = _soft(sh, lambda m, poly=poly: cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1.0, cv2.LINE_AA),
                     0.6 * _SS)
        _blend(img, brow, np.asarray(idn.hair) * 0.9)

    # Skin texture, fixed per subject: low-frequency blotches and fine pores, multiplicative.
    trng = np.random.default_rng(idn.texture_seed)
    coarse = cv2.GaussianBlur(trng.standard_normal(sh, dtype=np.float32), (0, 0), 4.0 * _SS)
    coarse /= max(float(np.abs(coarse).max()), 1e-6)
    fine = cv2.GaussianBlur(trng.standard_normal(sh, dtype=np.float32), (0, 0), 0.8 * _SS)
    fine /= max(float(fine.std()), 1e-6)
    img *= (1.0 + 0.06 * coarse + 0.035 * fine)[..., None]
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0, 255)


# -- uncropped photographs -------------------------------------------------------------------
def render_photo(identity: Identity, canvas: int = 320, face_size: int = 144,
                 position: tuple[int, int] | None = None, seed: int = 0
                 ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """An uncropped still: the face of :func:`render_face` at ``face_size`` px, placed at
    ``position`` (top-left of its tile; default: drawn off-centre from ``seed``) on a larger
    ``canvas`` with a colour-gradient, noisy background and shoulders, as head-and-shoulders
    photographs of posed-expression sets look.

    Returns ``(uint8 BGR image, face box)``; the box ``(x0, y0, x1, y1)`` is the face oval's
    extent in canvas pixels (forehead to chin, cheek to cheek), the ground truth a face
    detector's box is compared with. The tile's own background is cut away along the head's
    outline (hair, ears and neck kept), so only the canvas shows around the head.
    """
    import cv2

    if not 32 <= face_size < canvas:
        raise ConfigError(f"synthetic photo: face_size={face_size!r}; expected 32 <= face_size < canvas ({canvas})")
    rng = np.random.default_rng([seed, 7])
    fs, C = int(face_size), int(canvas)
    if position is None:
        # off-centre: anywhere that keeps the tile inside, never centred within 10 % of the canvas
        while True:
            x0, y0 = (int(v) for v in rng.integers(0, C - fs + 1, size=2))
            if abs(x0 + fs / 2 - C / 2) > 0.1 * C or abs(y0 + fs / 2 - C / 2) > 0.1 * C or C - fs < 0.2 * C:
                break
    else:
        x0, y0 = (int(v) for v in position)
        if not (0 <= x0 <= C - fs and 0 <= y0 <= C - fs):
            raise ConfigError(f"synthetic photo: position {position!r} puts the {fs} px face outside the "
                              f"{C} px canvas; expected 0 <= x, y <= {C - fs}")
    yy, xx = np.mgrid[0:C, 0:C].astype(np.float32) / C
    c0, c1 = rng.uniform(60, 200, 3), rng.uniform(60, 200, 3)
    img = (c0 * (1 - xx[..., None]) + c1 * yy[..., None] * 0.6 + 0.4 * c1 * xx[..., None]).astype(np.float32)
    img += cv2.GaussianBlur(rng.normal(0, 25, (C, C)).astype(np.float32), (0, 0), 6)[..., None]
    img += rng.normal(0, 4, (C, C, 3)).astype(np.float32)
    # shoulders: a broad ellipse in clothing colour rising to just under the chin
    idn = identity
    cx = x0 + idn.cx * fs
    top = y0 + 0.97 * fs  # just above the bottom of the tile's neck, which is drawn over it
    sh = np.zeros((C, C), np.float32)
    cv2.ellipse(sh, (int(round(cx)), int(round(top + C + 0.45 * fs))), (int(1.2 * fs), int(C + 0.45 * fs)),
                0, 0, 360, 1.0, -1)
    sh = cv2.GaussianBlur(sh, (0, 0), 2.5)[..., None]
    img = img * (1 - sh) + sh * rng.uniform(30, 150, 3).astype(np.float32)
    # the head: render_face's tile, cut along hair, ears and neck
    face = render_face(identity, fs)
    mask = np.zeros((fs, fs), np.float32)
    cv2.ellipse(mask, (int(idn.cx * fs), int((idn.cy - 0.12 * idn.face_h) * fs)),
                (int(1.2 * idn.face_w * fs), int(1.02 * idn.face_h * fs)), 0, 0, 360, 1.0, -1)
    cv2.ellipse(mask, (int(idn.cx * fs), int(idn.cy * fs)), (int(1.12 * idn.face_w * fs), int(idn.face_h * fs)),
                0, 0, 360, 1.0, -1)
    cv2.rectangle(mask, (int((idn.cx - 0.55 * idn.face_w) * fs), int((idn.cy + 0.5 * idn.face_h) * fs)),
                  (int((idn.cx + 0.55 * idn.face_w) * fs), fs), 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)[..., None]
    tile = img[y0:y0 + fs, x0:x0 + fs]
    img[y0:y0 + fs, x0:x0 + fs] = tile * (1 - mask) + face * mask
    box = (x0 + (idn.cx - idn.face_w) * fs, y0 + (idn.cy - idn.face_h) * fs,
           x0 + (idn.cx + idn.face_w) * fs, y0 + (idn.cy + idn.face_h) * fs)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), tuple(float(v) for v in box)  # type: ignore[return-value]


def write_photo_folder(root: str | Path, classes: Sequence[str] = ("happiness", "sadness"), n_subjects: int = 3,
                       per_subject: int = 1, canvas: int = 320, face_size: tuple[int, int] = (120, 160),
                       seed: int = 0, ext: str = "png") -> dict[str, tuple[float, float, float, float]]:
    """Write uncropped synthetic photographs (:func:`render_photo`) as an image folder:
    ``root/<class>/S<NN>_<k>.<ext>`` (subject in the file name, ``subject_pattern='^(S\\d+)_'``).

    Each subject has one face (identity from ``seed``); each image places it at a new size in
    ``face_size`` and a new off-centre position. Returns ``{path relative to root: face box}`` and
    writes the same to ``root/photos.json`` (a JSON file in the root, which the image-folder
    loader ignores). Expressions are not drawn: the classes are folder names only, for tests
    of the face stage, not of recognition.
    """
    import cv2

    if ext not in ("png", "jpg"):
        raise ConfigError(f"synthetic photo: ext={ext!r}; expected 'png' or 'jpg'")
    root = Path(root)
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for j in range(n_subjects):
        identity = _identity(np.random.default_rng([seed, 1, j]))
        for ci, cls in enumerate(classes):
            for k in range(per_subject):
                draw = np.random.default_rng([seed, 3, j, ci, k])
                fs = int(draw.integers(face_size[0], face_size[1] + 1))
                img, box = render_photo(identity, canvas, fs, seed=int(draw.integers(2**31)))
                rel = f"{cls}/S{j + 1:02d}_{k}.{ext}"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                ok, buf = cv2.imencode(f".{ext}", img)
                if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
                    raise DataError("cannot encode image", path=path)
                path.write_bytes(buf.tobytes())
                boxes[rel] = box
    (root / "photos.json").write_text(json.dumps({k: list(v) for k, v in boxes.items()}, indent=1))
    return boxes


# -- motion ----------------------------------------------------------------------------------
def _bump(xs: np.ndarray, ys: np.ndarray, centre: tuple[float, float], sigma: tuple[float, float],
          direction: tuple[float, float], weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian-weighted translation: every pixel near ``centre`` moves along ``direction``."""
    g = np.exp(-0.5 * (((xs - centre[0]) / sigma[0]) ** 2 + ((ys - centre[1]) / sigma[1]) ** 2))
    n = math.hypot(*direction) or 1.0
    return (weight * direction[0] / n) * g, (weight * direction[1] / n) * g


def action_field(action: str, identity: Identity, size: int) -> np.ndarray:
    """Displacement field (H, W, 2: dx, dy in pixels) of one action on a face rendered at ``size``.

    Scaled so that the largest displacement is exactly 1 pixel; a clip multiplies it by its
    amplitude and by the intensity of the current frame.
    """
    if action not in ACTIONS:
        raise ConfigError(f"unknown facial action {action!r}; expected one of {sorted(ACTIONS)}")
    base, _, side = action.rpartition("_")
    if side in ("left", "right"):
        # The subject's left side is the image's right (index 1 of the left-to-right pairs).
        sides = (1,) if side == "left" else (0,)
    else:
        base, sides = action, (0, 1)
    g = _geometry(identity, size)
    xs = np.arange(size, dtype=np.float32)[None, :]
    ys = np.arange(size, dtype=np.float32)[:, None]
    unit = float(size)
    dx = np.zeros((size, size), np.float32)
    dy = np.zeros((size, size), np.float32)
    ew, eh = g.eye_size
    bl = g.brow_len
    bt = identity.brow_thick * unit
    mw = (g.corners[1][0] - g.corners[0][0]) / 2
    lh = identity.lip_h * unit
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for k in sides:
        out = -1.0 if k == 0 else 1.0  # image-x direction away from the midline
        bx, by = g.brows[k]
        ex, ey = g.eyes[k]
        cx_, cy_ = g.corners[k]
        if base == "brow_raise":
            parts.append(_bump(xs, ys, (bx, by - 0.5 * bt), (0.65 * bl, 1.5 * bt + 0.015 * unit), (0.0, -1.0)))
        elif base == "brow_lower":
            parts.append(_bump(xs, ys, (bx - out * 0.2 * bl, by), (0.5 * bl, 1.6 * bt + 0.015 * unit),
                               (-out * 0.45, 1.0)))
        elif base == "eye_widen":
            parts.append(_bump(xs, ys, (ex, ey - 1.1 * eh), (1.0 * ew, 1.1 * eh), (0.0, -1.0)))
            parts.append(_bump(xs, ys, (ex, ey + 1.1 * eh), (0.9 * ew, 1.0 * eh), (0.0, 1.0), 0.45))
        elif base == "eye_narrow":
            parts.append(_bump(xs, ys, (ex, ey + 1.3 * eh), (1.0 * ew, 1.1 * eh), (0.0, -1.0)))
            parts.append(_bump(xs, ys, (ex, ey - 1.2 * eh), (0.9 * ew, 0.9 * eh), (0.0, 1.0), 0.45))
        elif base == "nose_wrinkle":
            nx, ny = g.nose_tip
            nw = g.nose_w
            parts.append(_bump(xs, ys, (nx + out * 0.8 * nw, ny - 0.3 * nw), (0.8 * nw, 0.9 * nw),
                               (-out * 0.25, -1.0)))
            if k == 0:  # the upper lip rises once, at the midline
                mx, my = g.mouth
                parts.append(_bump(xs, ys, (mx, my - 1.2 * lh), (0.6 * mw, 1.0 * lh), (0.0, -1.0), 0.5))
        elif base == "lip_corner_pull":
            parts.append(_bump(xs, ys, (cx_, cy_), (0.45 * mw, 0.5 * mw), (out * 0.8, -0.6)))
        elif base == "lip_corner_depress":
            parts.append(_bump(xs, ys, (cx_, cy_ + 0.3 * lh), (0.4 * mw, 0.45 * mw), (out * 0.25, 1.0)))
        else:  # pragma: no cover - ACTIONS and this table are kept in step
            raise ConfigError(f"facial action {action!r} has no displacement field")
    for px, py in parts:
        dx += px
        dy += py
    peak = float(np.sqrt(dx**2 + dy**2).max())
    field = np.stack([dx, dy], axis=-1)
    return field / peak if peak > 0 else field


def intensity_curve(n_frames: int, apex_index: int) -> np.ndarray:
    """Per-frame intensity from onset to offset: 0 at the onset, 1 at the apex, 0 at the offset.

    Raised-cosine rise and fall: smooth (zero velocity at the onset, apex and offset), as the
    facial actions of spontaneous micro-expressions are described (onset phase, apex, offset
    phase; Yan et al., PLoS ONE 2013, "How fast are the leaked facial expressions").
    """
    if n_frames < 3 or not 0 < apex_index < n_frames - 1:
        raise ConfigError(f"intensity curve: apex index {apex_index} must lie strictly inside "
                          f"0..{n_frames - 1}")
    t = np.arange(n_frames, dtype=np.float64)
    rise = 0.5 * (1 - np.cos(np.pi * t / apex_index))
    fall = 0.5 * (1 + np.cos(np.pi * (t - apex_index) / (n_frames - 1 - apex_index)))
    return np.where(t <= apex_index, rise, fall)


def _intensity_letter(value: float) -> str:
    """FACS intensity letter for a 0-1 intensity: A (trace) .. E (maximum), in fifths.

    The inverse of :func:`mekit.data.schema.au_intensity` (which maps A..E to 0.2..1.0).
    """
    return "ABCDE"[min(4, max(0, math.ceil(round(value * 5, 9)) - 1))]


# -- clips -----------------------------------------------------------------------------------
@dataclass
class _Clip:
    """Ground truth of one clip (what the manifest records)."""

    subject: str
    clip: str
    emotion: str
    actions: tuple[str, ...]
    amplitudes: tuple[float, ...]     # peak displacement of each action, px
    onset: int
    apex: int
    offset: int
    curve: tuple[float, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _class_counts(params: SyntheticParams) -> dict[str, int]:
    """Clips per class: the weights times the total, rounded by largest remainder (exact total)."""
    total = params.n_subjects * params.clips_per_subject
    weights = dict(params.class_weights)
    s = sum(weights.values())
    raw = {c: total * w / s for c, w in weights.items()}
    counts = {c: int(math.floor(v)) for c, v in raw.items()}
    order = sorted(raw, key=lambda c: (-(raw[c] - counts[c]), -weights[c], c))
    for c in order[: total - sum(counts.values())]:
        counts[c] += 1
    return counts


def _plan(params: SyntheticParams) -> list[list[_Clip]]:
    """Per subject, the clips to draw: class, actions, amplitudes and timing (no pixels yet)."""
    counts = _class_counts(params)
    recipes = dict(params.classes)
    pool = [c for c, _ in params.classes for _ in range(counts[c])]
    order = np.random.default_rng([params.seed, 0]).permutation(len(pool))
    labels = [pool[i] for i in order]
    lo_amp, hi_amp = params.amplitude
    plan: list[list[_Clip]] = []
    width = max(2, len(str(params.clips_per_subject)))
    for j in range(params.n_subjects):
        row = []
        for k in range(params.clips_per_subject):
            rng = np.random.default_rng([params.seed, 2, j, k])
            cls = labels[j * params.clips_per_subject + k]
            options = recipes[cls]
            actions = options[int(rng.integers(len(options)))]
            amp = float(rng.uniform(lo_amp, hi_amp))
            amps = (amp,) + tuple(amp * float(rng.uniform(0.5, 1.0)) for _ in actions[1:])
            n = int(rng.integers(params.frames[0], params.frames[1] + 1))
            apex_i = int(round(float(rng.uniform(*params.apex_position)) * (n - 1)))
            apex_i = min(max(apex_i, 1), n - 2)
            onset = int(rng.integers(1, 3000))
            row.append(_Clip(subject=f"sub{j + 1:02d}", clip=f"clip{k + 1:0{width}d}", emotion=cls,
                             actions=tuple(actions), amplitudes=amps, onset=onset, apex=onset + apex_i,
                             offset=onset + n - 1,
                             curve=tuple(float(v) for v in np.round(intensity_curve(n, apex_i), 6))))
        plan.append(row)
    return plan


def _head_path(rng: np.random.Generator, n: int, amount: float) -> np.ndarray:
    """A smooth drift over ``n`` frames: linear trend plus one slow oscillation, |value| <= amount."""
    t = np.linspace(0.0, 1.0, n)
    a = rng.uniform(-1, 1)
    b = rng.uniform(-1, 1) * (1 - abs(a)) / 2  # the oscillation term below spans at most 2|b|
    f = rng.uniform(0.3, 1.2)
    phase = rng.uniform(0, 2 * np.pi)
    path = a * t + b * (np.sin(2 * np.pi * f * t + phase) - np.sin(phase))
    return amount * path


#: Standard normal quantiles at the centres of 256 equal-probability bins (std 0.997).
_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)


def _render_clip(params: SyntheticParams, face: np.ndarray, identity: Identity, clip: _Clip,
                 j: int, k: int) -> list[np.ndarray]:
    """All frames of one clip, onset to offset, as uint8 images ready to encode."""
    import cv2

    size = params.size
    rng = np.random.default_rng([params.seed, 3, j, k])
    n = clip.offset - clip.onset + 1
    curve = np.asarray(clip.curve, np.float32)
    # Displacement at the apex: the sum of the clip's actions at their amplitudes.
    apex_field = np.zeros((size, size, 2), np.float32)
    for action, amp in zip(clip.actions, clip.amplitudes):
        apex_field += np.float32(amp) * action_field(action, identity, size)
    # Per-clip framing (like the varying crops of CASME II) and head drift, both rigid.
    shift = rng.uniform(-1.5, 1.5, 2)
    scale = 1.0 + rng.uniform(-0.02, 0.02)
    tx = _head_path(rng, n, params.head_motion / math.sqrt(2))
    ty = _head_path(rng, n, params.head_motion / math.sqrt(2))
    rot = np.deg2rad(_head_path(rng, n, params.head_rotation))
    gain = 1.0 + rng.uniform(-params.brightness, params.brightness)
    bias = rng.uniform(-100.0, 100.0) * params.brightness  # grey levels: +/-6 at the default 0.06
    grey_coeffs = np.array([0.114, 0.587, 0.299], np.float32)
    noise_lut = _NORMAL_QUANTILES * np.float32(params.noise)
    c = (size - 1) / 2.0
    xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    frames = []
    for i in range(n):
        # Output pixel x samples the neutral face at p = A_i(x) - intensity_i * d(A_i(x)):
        # A_i is the frame's rigid transform (framing + head drift), d the apex displacement,
        # so the skin around each feature moves by intensity_i * d (backward warping).
        ca, sa = math.cos(rot[i]) / scale, math.sin(rot[i]) / scale
        px = c + ca * (xs - c) - sa * (ys - c) - float(shift[0] + tx[i])
        py = c + sa * (xs - c) + ca * (ys - c) - float(shift[1] + ty[i])
        if curve[i] > 0:
            d = cv2.remap(apex_field, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            px -= curve[i] * d[..., 0]
            py -= curve[i] * d[..., 1]
        img = cv2.remap(face, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        if not params.colour:
            img = img @ grey_coeffs
        img = img * np.float32(gain) + np.float32(bias)
        if params.noise > 0:
            # Gaussian noise by table look-up of random bytes (256 normal quantiles): about 9x
            # faster than rng.standard_normal here, and indistinguishable at these levels.
            u8 = np.frombuffer(rng.bytes(img.size), np.uint8).reshape(img.shape[0], -1)
            img += cv2.LUT(u8, noise_lut).reshape(img.shape)
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return frames


def _write_frames(folder: Path, frames: list[np.ndarray], onset: int, params: SyntheticParams) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    opts = [cv2.IMWRITE_JPEG_QUALITY, params.quality] if params.ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    for i, img in enumerate(frames):
        path = folder / f"img{onset + i}.{params.ext}"
        ok, buf = cv2.imencode(f".{params.ext}", img, opts)
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
            raise DataError("cannot encode frame", path=path)
        path.write_bytes(buf.tobytes())


# -- corpus ----------------------------------------------------------------------------------
def _table(root: Path, manifest: Mapping[str, Any], check_files: bool = True) -> SampleTable:
    """The SampleTable of a generated corpus, from its manifest; absent clips are reported."""
    params = SyntheticParams.from_dict(manifest["params"])
    amp_hi = params.amplitude[1]
    report = LoadReport(label_mapping={c: canonical(c) for c, _ in params.classes})
    report.notes.append(f"synthetic corpus, renderer version {manifest.get('version')}, "
                        f"parameters hash {params.digest()}")
    template = f"img{{frame}}.{params.ext}"
    records = []
    for c in manifest["clips"]:
        clip = _Clip(**{**c, "actions": tuple(c["actions"]), "amplitudes": tuple(c["amplitudes"]),
                        "curve": tuple(c["curve"])})
        sid = f"{DATASET}/{clip.subject}/{clip.clip}"
        folder = root / clip.subject / clip.clip
        if check_files:
            absent = [f for f in (clip.onset, clip.apex, clip.offset)
                      if not (folder / template.format(frame=f)).is_file()]
            if absent:
                report.missing.append(sid)
                report.add_problem(sid, f"frames {absent} absent from {folder}")
                continue
        aus: list[str] = []
        for action, amp in zip(clip.actions, clip.amplitudes):
            letter = _intensity_letter(min(1.0, amp / amp_hi))
            aus.extend(f"{au}{letter}" for au in ACTIONS[action].aus)
        records.append({
            "sample_id": sid, "dataset": DATASET, "subject": f"{DATASET}/{clip.subject}", "clip": clip.clip,
            "media": "frames", "path": str(folder.resolve()), "frame_template": template,
            "onset": clip.onset, "apex": clip.apex, "offset": clip.offset, "fps": params.fps,
            "emotion": clip.emotion, "label": canonical(clip.emotion),
            "action_units": tuple(dict.fromkeys(aus)), "intensity": min(1.0, clip.amplitudes[0] / amp_hi),
            "split": "",
            "intensity_curve": clip.curve, "actions": clip.actions,
            "amplitude_px": clip.amplitudes[0],
        })
    if report.problems:
        log.warning("synthetic corpus %s: %d clips absent (excluded)", root, len(report.problems))
    return SampleTable.from_records(records, report, name=DATASET)


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read the synthetic corpus manifest ({e})", path=path,
                        expected=f"a {MANIFEST} written by mekit's synthetic generator") from None
    if not isinstance(d, dict) or not {"params", "clips"} <= set(d):
        raise DataError("not a synthetic corpus manifest", path=path,
                        expected="a JSON object with 'version', 'params' and 'clips'")
    return d


def _generate_into(folder: Path, params: SyntheticParams,
                   progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    plan = _plan(params)
    total = sum(len(r) for r in plan)
    done = 0
    for j, row in enumerate(plan):
        identity = _identity(np.random.default_rng([params.seed, 1, j]))
        face = render_face(identity, params.size)
        for k, clip in enumerate(row):
            frames = _render_clip(params, face, identity, clip, j, k)
            _write_frames(folder / clip.subject / clip.clip, frames, clip.onset, params)
            done += 1
            if progress is not None:
                progress(done, total)
    manifest = {"version": GENERATOR_VERSION, "params": params.to_dict(),
                "clips": [c.to_dict() for row in plan for c in row]}
    # The manifest is written last: a folder without one is never a finished corpus.
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def generate_synthetic(out_dir: str | Path, n_subjects: int = 12, clips_per_subject: int = 11,
                       classes: Sequence[str] | Mapping[str, Sequence[Sequence[str]]] | None = None,
                       class_weights: Mapping[str, float] | Sequence[float] | None = None,
                       size: int = 128, fps: float = 200.0, seed: int = 0,
                       progress: Callable[[int, int], None] | None = None,
                       overwrite: bool = False, **options: Any) -> SampleTable:
    """Render a synthetic micro-expression corpus into ``out_dir`` and return its table.

    Args:
        out_dir: folder to create (it must not exist or be empty, unless ``overwrite``).
        n_subjects, clips_per_subject: corpus size (default 12 x 11 = 132 clips).
        classes: class names among :data:`DEFAULT_CLASSES`, or a mapping class -> recipes
            (tuples of :data:`ACTIONS` names), e.g. ``{"smile": [["lip_corner_pull"]]}``.
        class_weights: relative class frequencies (default :data:`DEFAULT_CLASS_WEIGHTS`, or
            uniform for custom classes). Counts are exact: weights times total, rounded.
        size, fps, seed: frame size in pixels, frame rate, random seed. The same parameters
            always give the same pixels.
        progress: called with (clips done, clips total) after each clip.
        overwrite: replace an existing corpus in ``out_dir``.
        **options: the remaining :class:`SyntheticParams` fields (``frames``, ``amplitude``,
            ``noise``, ``head_motion``, ``head_rotation``, ``brightness``, ``colour``, ``ext``,
            ``quality``, ``apex_position``).

    The corpus is written to a temporary sibling folder and renamed into place when complete,
    so an interrupted generation never leaves a half corpus under ``out_dir``.
    """
    params = SyntheticParams.make(n_subjects=n_subjects, clips_per_subject=clips_per_subject,
                                  classes=classes, class_weights=class_weights, size=size, fps=fps,
                                  seed=seed, **options)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise DataError("output folder exists and is not empty", path=out,
                        expected="a new or empty folder (or overwrite=True)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _generation_lock(out) as lock:
        # temporary folders of a generation that was killed (SIGKILL skips the cleanup below):
        # with the lock held no other process is writing one, so they are safe to remove
        for stale in out.parent.glob(f".{out.name}.tmp-*") if lock.locked else ():
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            log.info("generating synthetic corpus (%d subjects x %d clips, %d px) into %s",
                     params.n_subjects, params.clips_per_subject, params.size, out)
            manifest = _generate_into(tmp, params, progress)
            _move_into_place(tmp, out, replace=overwrite)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _table(out, manifest, check_files=False)


class _generation_lock:
    """An exclusive lock file beside ``out`` for the length of one generation (POSIX flock;
    released by the kernel when the process dies, so a killed run never leaves it held)."""

    def __init__(self, out: Path) -> None:
        self.path = out.parent / f".{out.name}.lock"
        self.fh = None
        self.locked = False

    def __enter__(self) -> _generation_lock:
        self.fh = open(self.path, "a")
        try:
            import fcntl

            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX)
            self.locked = True
        except ImportError:  # not POSIX: no lock, so stale folders are left alone
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            # removed so that nothing is left beside the corpus; a process that opened the old
            # file just before may then generate concurrently, which the atomic rename tolerates
            self.path.unlink(missing_ok=True)
            self.fh.close()  # closing releases the flock


def _move_into_place(tmp: Path, out: Path, replace: bool) -> None:
    """Rename the finished folder to ``out``; an existing ``out`` is replaced only if asked."""
    from mekit.paths import move_into_place

    move_into_place(tmp, out, replace=replace)


def load_synthetic(root: str | Path | None = None, progress: Callable[[int, int], None] | None = None,
                   **params: Any) -> SampleTable:
    """The synthetic corpus as a SampleTable, generated once and reused afterwards.

    With ``root=None`` the corpus lives in ``mekit.paths.cache_dir()/synthetic/<hash>``, the
    hash covering the parameters and the renderer version, so each parameter set is generated
    once (atomically) and reused by every later call. With a ``root``, an existing corpus
    there is loaded (its parameters must match any given), otherwise one is generated there.
    ``params`` are those of :func:`generate_synthetic`.

    Besides the standard columns (``intensity`` is the primary action's peak displacement
    over the largest amplitude, so 0-1; ``action_units`` carry FACS intensity letters from
    the same scale), the table has three ground-truth columns:

    - ``intensity_curve``: per-frame intensity from onset to offset (0 at the onset, 1 at the
      apex, 0 at the offset); the displacement of frame ``f`` is
      ``intensity * intensity_curve[f - onset]`` times the largest amplitude;
    - ``actions``: the facial actions drawn (names in :data:`ACTIONS`);
    - ``amplitude_px``: the primary action's peak displacement in pixels.
    """
    p = SyntheticParams.make(**params)
    if root is None:
        from mekit.paths import cache_dir

        target = cache_dir() / "synthetic" / p.digest()
    else:
        target = Path(root)
    if (target / MANIFEST).is_file():
        manifest = _read_manifest(target)
        if root is not None and params:
            try:
                stored = SyntheticParams.from_dict(manifest["params"])
            except (ConfigError, TypeError) as e:
                raise DataError(f"manifest parameters are invalid ({e})", path=target / MANIFEST) from None
            if stored != p:
                diff = sorted(k for k, v in p.to_dict().items() if stored.to_dict().get(k) != v)
                raise DataError(f"the corpus there was generated with other parameters (differing: {diff})",
                                path=target, expected="the same parameters, or another folder")
        log.debug("reusing synthetic corpus %s", target)
        return _table(target, manifest)
    if target.exists() and target.is_dir() and any(target.iterdir()):
        if root is not None:
            raise DataError(f"folder is not empty and holds no {MANIFEST}", path=target,
                            expected="a synthetic corpus, or a new or empty folder to generate one into")
        # In the cache only: a folder without a manifest cannot be a finished corpus.
        log.warning("removing incomplete synthetic corpus %s", target)
        shutil.rmtree(target)
    try:
        return generate_synthetic(target, progress=progress, **p.to_dict())
    except DataError:
        # Another process finished the same corpus first: use it.
        if (target / MANIFEST).is_file():
            return _table(target, _read_manifest(target))
        raise


# load_synthetic takes **params (those of SyntheticParams); listing them lets load_dataset
# check option names and types (colour: maybe is refused, not read as true).
load_synthetic.option_types = {f.name: f.type for f in fields(SyntheticParams)}  # type: ignore[attr-defined]

"""Views of the head in words ("in profile", "turned to their left", "looking up", "straight at the camera", "from
above") read as regions of yaw and pitch, in the viewer's or the subject's convention (specialist/vocabulary.py)."""

from __future__ import annotations

from facellm.specialist import meaning, vocabulary
from facellm.specialist.meaning import Claim

FRONTAL = 20.0  # degrees of yaw within which a face counts as frontal, facing the camera
PROFILE = 60.0  # degrees of yaw past which it is a profile (side view); three-quarter in between
TILT = 15.0  # degrees of pitch past which a face looks up or down

Box = tuple[tuple[str, tuple[float, float]], ...]  # a range per axis, all of them holding
Region = tuple[Box, ...]  # disjoint boxes, any of them holding


def view_region(text: str, convention: vocabulary.Convention, frontal_named: bool, tilt_named: bool) -> Region | None:
    """The head poses a wording of a view names ("in profile", "turned to their left", "looking up", "straight at
    the camera", "a three-quarter view"), as yaw/pitch ranges; None when it names no view. Yaw is positive when the
    face turns to the viewer's left. `frontal_named` / `tilt_named`: another option names a frontal view / an up or
    down one, so a side or a frontal view here means past / within those limits."""
    found = vocabulary.mentions(text, ("view",))
    named = {m.value for m in found if not m.negated} or {m.value for m in found}
    if not named:
        return None
    side = next((v for v in ("left", "right") if v in named), None) if not {"left", "right"} <= named else None
    turn = next((v for v in ("frontal", "three-quarter", "profile", "away") if v in named), None)
    tilt = next((v for v in ("up", "down") if v in named), None)
    if turn is None and side is None and tilt is None:
        return None
    spans = {
        "frontal": (0.0, FRONTAL),
        "three-quarter": (FRONTAL, PROFILE),
        "profile": (PROFILE, 180.0),
        "away": (FRONTAL, 180.0),
    }
    low, high = spans[turn] if turn else ((FRONTAL if frontal_named else 0.0), 180.0)
    if side is not None:
        viewer_left = (side == "left") == (convention == "viewer")
        yaws = [(low, high) if viewer_left else (-high, -low)]
    elif low == 0.0:
        yaws = [(-high, high)]
    else:
        yaws = [(low, high), (-high, -low)]
    if tilt == "up":
        pitch = (TILT, 90.0)
    elif tilt == "down":
        pitch = (-90.0, -TILT)
    else:
        pitch = (-TILT, TILT) if tilt_named and side is None and turn in (None, "frontal") else (-90.0, 90.0)
    if turn is None and side is None:
        yaws = [(-180.0, 180.0)]
    return tuple((("yaw", yaw), ("pitch", pitch)) for yaw in yaws)


def view_claims(q: str, options, n: int) -> tuple | None:
    """Options read as views of the head (None unless at least one names a view); each is Claim("view", (region,
    negated)); others as meaning.parse reads them."""
    texts = [str(text) for _, text in options]
    views = [vocabulary.values(text, "view", include_negated=True) for text in texts]
    if not any(views):
        return None
    frontal_named = any("frontal" in v for v in views)
    tilt_named = any(v & {"up", "down"} for v in views)
    claims = []
    for (letter, text), named in zip(options, views):
        convention = vocabulary.convention(text) or vocabulary.convention(q) or "viewer"
        region = view_region(text, convention, frontal_named, tilt_named) if named else None
        if region is None:
            claims.append((letter, text, meaning.parse(str(text), n)))
            continue
        denied = all(m.negated for m in vocabulary.mentions(text, ("view",)))
        claims.append((letter, text, Claim("view", (region, denied))))
    return tuple(claims)

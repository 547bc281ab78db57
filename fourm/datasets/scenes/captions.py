"""Captions from the scene graph: an opening that names every object (size, colour, shape), an
optional count by shape, and a few spatial relations as seen from the camera. Templates, order
and relations are drawn with the sample's generator, so a caption is as reproducible as the image.

Colours are distinct within a scene, so "the red cube" always names one object, and every
object's "<colour> <shape>" appears in the caption verbatim.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from fourm.datasets.scenes.world import Scene, SceneObject

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RELATION_MARGIN = 0.4  # metres; closer than this along an axis and the relation is not stated
MAX_RELATIONS = 3

OPENINGS = (
    "There are {count} objects: {listing}.",
    "The scene shows {listing}.",
    "{Count} objects stand on a checkered floor: {listing}.",
    "A rendered scene with {listing}.",
    "On the floor there are {listing}.",
    "We see {count} objects, namely {listing}.",
)
LEFT_TO_RIGHT_OPENINGS = (
    "From left to right: {listing}.",
    "Left to right, the scene holds {listing}.",
)
LEFT_OF = ("The {a} is to the left of the {b}.", "The {b} is to the right of the {a}.",
           "To the left of the {b} is the {a}.", "The {a} sits left of the {b}.")
BEHIND = ("The {a} is behind the {b}.", "The {b} is in front of the {a}.",
          "Behind the {b} stands the {a}.", "The {b} is closer to the camera than the {a}.")


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def name(obj: SceneObject) -> str:
    """'red sphere': unique within a scene (colours are distinct)."""
    return f"{obj.color} {obj.shape}"


def _camera_coordinates(scene: Scene) -> np.ndarray:
    """(n_objects, 2): each object centre's (rightward, forward) distance from the camera."""
    right, _, forward = scene.camera.axes()
    rel = np.array([o.position for o in scene.objects]) - np.asarray(scene.camera.position)
    return np.stack([rel @ right, rel @ forward], axis=1)


def _opening(scene: Scene, rng: np.random.Generator) -> tuple[str, list[int]]:
    """The first sentence, and the scene's object indices in the order it names them."""
    n = len(scene.objects)
    phrases = [_article(f"{o.size} {name(o)}") for o in scene.objects]
    if rng.random() < 0.3:
        order = np.argsort(_camera_coordinates(scene)[:, 0])
        template = LEFT_TO_RIGHT_OPENINGS[rng.integers(len(LEFT_TO_RIGHT_OPENINGS))]
    else:
        order = rng.permutation(n)
        template = OPENINGS[rng.integers(len(OPENINGS))]
    count = NUMBER_WORDS[n]
    listing = _join([phrases[i] for i in order])
    return template.format(count=count, Count=count.capitalize(), listing=listing), [int(i) for i in order]


def _counts(scene: Scene) -> str:
    by_shape = Counter(o.shape for o in scene.objects)
    counts = sorted(by_shape.items())
    parts = [f"{NUMBER_WORDS[c]} {s + 's' if c > 1 else s}" for s, c in counts]
    verb = "is" if counts[0][1] == 1 else "are"  # agrees with the first noun: "There is one cone and two cubes."
    return f"There {verb} {_join(parts)}."


def _relations(scene: Scene, rng: np.random.Generator) -> list[str]:
    """Up to MAX_RELATIONS sentences about random pairs whose relation is clear."""
    coords = _camera_coordinates(scene)
    n = len(scene.objects)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    sentences = []
    for p in rng.permutation(len(pairs)):
        i, j = pairs[p]
        a, b = name(scene.objects[i]), name(scene.objects[j])
        if rng.random() < 0.5 and coords[j, 0] - coords[i, 0] > RELATION_MARGIN:
            templates = LEFT_OF
        elif coords[i, 1] - coords[j, 1] > RELATION_MARGIN:
            templates = BEHIND
        else:
            continue
        sentences.append(templates[rng.integers(len(templates))].format(a=a, b=b))
        if len(sentences) == min(MAX_RELATIONS, n - 1):
            break
    return sentences


def make_caption(scene: Scene, rng: np.random.Generator) -> tuple[str, list[int]]:
    """The caption, and the scene's object indices in the order its opening names them (the
    order of the grounded object list, `grounding.grounded_objects`)."""
    opening, order = _opening(scene, rng)
    sentences = [opening]
    if rng.random() < 0.5:
        sentences.append(_counts(scene))
    sentences += _relations(scene, rng)
    return " ".join(sentences), order

"""The caption's objects grounded in the image: `objects.txt`, one entry per object the caption's
opening names, in the caption's order, each with its size and the grid cell of its visible centre.

    "small greensphere r5 c2; large graycone r4 c6; small redcube hidden"

The size ("small" / "large", as the caption says it) is there because a layout drawn from the list
alone must know how big to draw each object (val 0 was drawn with 574 object pixels against 104
true, though over 8 samples the total area was about right: 318 against 319).

`rROW cCOL` is the cell (of a GROUNDING_GRID x GROUNDING_GRID grid over the image) holding the
mean of the object's visible pixels in the colorseg map; `hidden` when fewer than MIN_VISIBLE
pixels show. This is a phrase-grounding annotation (each named phrase linked to a place in the
image), written as text so a FourM reads and writes it as it does a caption: decoded left to
right, an object's shape is chosen after its colour, with the caption's "<colour> <shape>" to copy.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fourm.datasets.scenes.world import COLOR_NAMES, SHAPES, Scene, colorseg_label

GROUNDING_GRID = 8   # cells per side
MIN_VISIBLE = 4      # pixels; fewer and the object is `hidden`
SEPARATOR = "; "


class GroundedObject(NamedTuple):
    size: str
    colour: str
    shape: str
    cell: tuple[int, int] | None  # (row, col), None when hidden


def object_cell(colorseg: np.ndarray, label: int) -> tuple[int, int] | None:
    """(row, col) of the cell holding the centre of `label`'s pixels in colorseg (H, W), or None
    when fewer than MIN_VISIBLE pixels carry it."""
    ys, xs = np.nonzero(colorseg == label)
    if ys.size < MIN_VISIBLE:
        return None
    height, width = colorseg.shape
    return int(ys.mean() * GROUNDING_GRID / height), int(xs.mean() * GROUNDING_GRID / width)


def grounded_objects(scene: Scene, colorseg: np.ndarray, order: list[int]) -> str:
    """objects.txt for `scene`, its objects in `order` (the caption's), colorseg (H, W) uint8."""
    entries = []
    for index in order:
        obj = scene.objects[index]
        cell = object_cell(colorseg, colorseg_label(obj.shape, obj.color))
        place = "hidden" if cell is None else f"r{cell[0]} c{cell[1]}"
        entries.append(f"{obj.size} {label_word(obj.color, obj.shape)} {place}")
    return SEPARATOR.join(entries)


def label_word(colour: str, shape: str) -> str:
    """The object's colorseg label as one word ("greensphere"): the layout step reads colour and shape
    as one token, so it cannot draw one object's colour with another's shape. No separator: the text
    tokenizer splits words at punctuation."""
    return f"{colour}{shape}"


def split_label_word(word: str) -> tuple[str, str] | None:
    """(colour, shape) of a label word, None when it is not one."""
    for colour in COLOR_NAMES:
        if word.startswith(colour) and word[len(colour):] in SHAPES:
            return colour, word[len(colour):]
    return None


def parse_grounded_objects(text: str) -> list[GroundedObject]:
    """One GroundedObject per well-formed entry of objects.txt (or of a generated one: malformed
    entries are skipped, so a sampled list is read as far as it makes sense)."""
    out = []
    for entry in text.split(";"):
        words = entry.split()
        label = split_label_word(words[1]) if len(words) in (3, 4) else None
        if label is None:
            continue
        if len(words) == 3 and words[2] == "hidden":
            out.append(GroundedObject(words[0], *label, None))
        elif len(words) == 4 and _is_cell_word(words[2], "r") and _is_cell_word(words[3], "c"):
            out.append(GroundedObject(words[0], *label, (int(words[2][1:]), int(words[3][1:]))))
    return out


def _is_cell_word(word: str, prefix: str) -> bool:
    return word[:1] == prefix and word[1:].isdigit()

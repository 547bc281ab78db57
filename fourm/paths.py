"""Where the repository's configs live, and how relative paths in configs are resolved."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"


def resolve(path: str | Path) -> Path:
    """A path as given if it exists (or is absolute), else relative to the repository root."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    candidate = REPO_ROOT / path
    return candidate if candidate.exists() else path

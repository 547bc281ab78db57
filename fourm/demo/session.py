"""DemoSession: what the demo serves, loaded once: a FourM checkpoint, the tokenizer of each of its
modalities (those that exist), a few val samples and a scratch folder for outputs.

    session = DemoSession.load("runs/fourm_tiny/model", samples="data/scenes/val")

Nothing here imports gradio; the tabs call the plain functions of `flextok_view` and `any_to_any`.
"""
from __future__ import annotations

import itertools
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from fourm.demo.samples import Sample, load_samples
from fourm.modalities import ModalitySpec

log = logging.getLogger(__name__)


@dataclass
class DemoSession:
    """checkpoint: the FourM folder. specs: its modalities in model order. tokenizers: those that
    loaded; missing: {name: why not} for the others (the page says so instead of failing)."""

    checkpoint: str
    model: Any
    specs: dict[str, ModalitySpec]
    tokenizers: dict[str, Any]
    missing: dict[str, str]
    samples: list[Sample]
    class_names: list[str]
    work_dir: Path
    device: str = "cpu"
    _requests: Iterator[int] = field(default_factory=lambda: itertools.count(1))  # next() is atomic: tabs run in threads

    @classmethod
    def load(cls, checkpoint: str | os.PathLike, samples: Optional[str | os.PathLike] = None, device: str = "cpu",
             work_dir: Optional[str | os.PathLike] = None, max_samples: int = 16) -> "DemoSession":
        from fourm.model import FourM
        from fourm.paths import resolve

        folder = resolve(checkpoint)
        model = FourM.from_pretrained(folder, map_location=device).eval()  # FileNotFoundError names the file
        specs = {s.name: s for s in model.config.modalities}
        tokenizers, missing = load_available_tokenizers(specs, device)
        sample_list, class_names = load_samples(resolve(samples) if samples else None, specs, max_samples)
        work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="fourm_demo_"))
        work.mkdir(parents=True, exist_ok=True)
        log.info("demo: %s with %s; %d samples; outputs under %s", folder, ", ".join(tokenizers) or "no tokenizers",
                 len(sample_list), work)
        return cls(str(checkpoint), model, specs, tokenizers, missing, sample_list, class_names, work, device)

    def spec_of_kind(self, kind: str) -> Optional[ModalitySpec]:
        """The first modality of `kind` that has a tokenizer (the FlexTok tab uses image_seq)."""
        return next((s for s in self.specs.values() if s.kind == kind and s.name in self.tokenizers), None)

    def sample(self, key: Optional[str]) -> Sample:
        for s in self.samples:
            if s.key == key:
                return s
        raise ValueError(f"no val sample '{key}'" + ("" if self.samples else " (start the demo with --samples FOLDER)"))

    def new_folder(self, prefix: str) -> Path:
        """A fresh folder under the scratch folder for one request's files."""
        path = self.work_dir / f"{prefix}_{next(self._requests):04d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def tokenizer(self, name: str) -> Any:
        if name not in self.tokenizers:
            raise ValueError(f"modality '{name}' has no tokenizer: {self.missing.get(name, 'not loaded')}")
        return self.tokenizers[name]


def load_available_tokenizers(specs: dict[str, ModalitySpec], device: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Load each modality's tokenizer on its own, so one missing tokenizer only disables its modality."""
    from fourm.generation.outputs import load_modality_tokenizers

    loaded, missing = {}, {}
    for name, spec in specs.items():
        try:
            tokenizer = load_modality_tokenizers({name: spec})[name]
        except (FileNotFoundError, ValueError) as err:
            missing[name] = str(err)
            log.warning("demo: %s", err)
            continue
        loaded[name] = tokenizer.to(device) if hasattr(tokenizer, "to") else tokenizer
    return loaded, missing

"""Dataset distillation: the synthetic images themselves (embedded in the page), then the training section."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from pathlib import Path

from harness.report.sections import Case, Section, register
from harness.report.sections import training as training_section

MAX_IMAGE_BYTES = 400_000  # the whole report stays within a few MB


@register("dataset_distillation")
def render(technique: str, cases: Sequence[Case]) -> Section:
    section = training_section.render(technique, cases)
    section.title = "dataset distillation"
    for case in cases:
        rel = ((case.get("record") or {}).get("details") or {}).get("images")
        if not rel:
            continue
        base = Path(case.get("_dir", "."))
        # Relative to the run record's directory, as the schema says; a path written from the repository root
        # (results/...) is found too.
        candidates = [base / rel, base.parent / rel, Path(rel)]
        path = next((p for p in candidates if p.is_file()), candidates[0])
        caption = f"{case['case_id']}: synthetic training set ({rel})"
        if not path.is_file():
            section.note += f" {case['case_id']}: image {rel} not found beside the run record."
            continue
        data = path.read_bytes()
        if len(data) > MAX_IMAGE_BYTES:
            section.note += f" {case['case_id']}: image {rel} is {len(data):,} bytes, too large to embed."
            continue
        mime = mimetypes.guess_type(path.name)[0] or "image/png"
        section.images.append({"src": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}",
                               "caption": caption})
    return section

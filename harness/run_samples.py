"""A run record's raw samples, kept once per run beside the compact JSON record.

The figures every gate, baseline and report reads are in each case's ``metrics``; the raw per-call timings, paired
block times, probe ratios and per-step training curves behind them are long lists of numbers that made a record of
the main command about 9 MB as JSON. They move into ``run-<stamp>.samples.npz`` (NumPy's compressed archive, float64
and int64: lossless), and each list's place in the record holds ``{"$samples": key}``. A case's ``details`` and
``training`` (the tables and per-seed arms the report draws) go there too when large, as compressed JSON text, their
place holding ``{"$json": key}``. :func:`attach` puts everything back, so a record read with its samples equals the
one written; the figures the gate, accepting and the history read (``metrics``, verdicts) never leave the record.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MARKER = "$samples"
JSON_MARKER = "$json"
MIN_LENGTH = 16  # shorter lists (a seed list, a handful of rounds) stay in the record, readable where they are
BULK_KEYS = ("details", "training")  # a record's report material, moved out when its JSON is longer than:
BULK_MIN_BYTES = 2048
SUFFIX = ".samples.npz"


class SamplesError(ValueError):
    """The samples file is missing, corrupt or not the one its record names."""


def sidecar_path(record_path: Path) -> Path:
    """``run-<stamp>.json`` -> ``run-<stamp>.samples.npz``, beside it."""
    record_path = Path(record_path)
    return record_path.with_name(record_path.name.removesuffix(".json") + SUFFIX)


def _array(value: list[Any]) -> np.ndarray | None:
    """The list as a lossless array, or None where it stays in the record: too short, or not all floats (None for
    JSON's null, a NaN) nor all ints."""
    if len(value) < MIN_LENGTH:
        return None
    if all(type(v) is float or v is None for v in value) and any(v is not None for v in value):
        return np.array([math.nan if v is None else v for v in value], dtype=np.float64)
    if all(type(v) is int for v in value) and all(-(2**63) <= v < 2**63 for v in value):
        return np.array(value, dtype=np.int64)
    return None


def split(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A copy of ``data`` with every long numeric list under ``cases`` replaced by a marker, and the arrays by key."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any, bulk: bool = False) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v, k in BULK_KEYS) for k, v in value.items()}
            if bulk and out:
                text = json.dumps(out, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
                if len(text) > BULK_MIN_BYTES:
                    key = f"s{len(arrays)}"
                    arrays[key] = np.frombuffer(text, dtype=np.uint8)
                    return {JSON_MARKER: key}
            return out
        if isinstance(value, list | tuple):
            array = _array(list(value))
            if array is None:
                return [walk(v) for v in value]
            key = f"s{len(arrays)}"
            arrays[key] = array
            return {MARKER: key}
        return value

    compact = dict(data)
    if isinstance(data.get("cases"), list | tuple):
        compact["cases"] = [{k: walk(v) if k == "record" else v for k, v in case.items()}
                            if isinstance(case, dict) else case for case in data["cases"]]
    return compact, arrays


def _value(array: np.ndarray) -> Any:
    """An array read back: a list of floats (NaN as None) or ints, or the JSON a uint8 array holds."""
    if array.dtype == np.uint8:
        return json.loads(array.tobytes().decode("utf-8"))
    if array.dtype.kind == "f":
        return [None if math.isnan(x) else x for x in array.tolist()]
    return [int(x) for x in array.tolist()]


def attach(data: dict[str, Any], lookup: Callable[[str], Any]) -> dict[str, Any]:
    """``data`` with every marker replaced by ``lookup(key)`` (and the markers inside what that returns)."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and (MARKER in value or JSON_MARKER in value):
                return walk(lookup(str(value.get(MARKER, value.get(JSON_MARKER)))))
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(data)


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as one compressed ``.npz``."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def read(path: Path, expected_sha256: str | None, record: Path) -> dict[str, Any]:
    """The lists of the samples file at ``path``; checked against the digest its record holds."""
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        raise SamplesError(f"{record}: its samples file {path} is missing (copy run-*.samples.npz along with "
                           "run-*.json; the record's figures alone: load it with samples=False)") from None
    except OSError as exc:
        raise SamplesError(f"{record}: cannot read its samples file {path} ({exc.strerror or exc})") from None
    if expected_sha256 is not None and digest(blob) != expected_sha256:
        raise SamplesError(f"{record}: the samples file {path} is not the one written with this record "
                           "(its sha256 differs); expected the .samples.npz of the same run")
    try:
        return read_blob(blob)
    except (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as exc:
        raise SamplesError(f"{record}: its samples file {path} is not a readable .npz archive ({exc})") from None


def read_blob(blob: bytes) -> dict[str, Any]:
    """The values of an ``.npz`` archive's bytes, by key."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {key: _value(archive[key]) for key in archive.files}


def without_samples(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every list marker read as ``[]`` and every table marker as ``{}``: the figures alone."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and MARKER in value:
                return []
            if len(value) == 1 and JSON_MARKER in value:
                return {}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(data)

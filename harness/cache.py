"""On-disk cache for trained weights, ONNX exports and quantized models, outside git, keyed by content."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ENV_VAR = "OPTBENCH_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$OPTBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/optbench``, else ``~/.cache/optbench``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "optbench"


def make_key(*parts: Any) -> str:
    """A short stable hash of JSON-able parts: everything that changes the cached thing goes in."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def source_hash(obj: object) -> str:
    """Hash of the source of the module that defines ``obj``: editing a model's file invalidates its weights."""
    module = inspect.getmodule(obj)
    try:
        src = inspect.getsource(module) if module is not None else repr(obj)
    except (OSError, TypeError):
        src = repr(obj)
    return hashlib.sha256(src.encode()).hexdigest()[:20]


class Cache:
    """A folder of cache entries, one namespace per kind of thing; writes are atomic."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, namespace: str, key: str, suffix: str) -> Path:
        folder = self.root / namespace
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}{suffix}"

    def get_or_create(self, path: Path, create: Callable[[Path], None], validate: Callable[[Path], None]) -> Path:
        """Return ``path`` if it exists and ``validate`` accepts it; otherwise (re)build it atomically.

        A stale or corrupt entry is logged and rebuilt, never trusted.
        """
        if path.exists():
            try:
                validate(path)
                return path
            except Exception as exc:  # any failure to validate means rebuild
                logger.warning("cache entry %s is unusable (%s); rebuilding", path, exc)
                path.unlink(missing_ok=True)
        atomic_write(path, create)
        validate(path)
        return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``path`` and rename it over ``path``; a crash leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

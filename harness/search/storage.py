"""Where studies live: in memory by default, or any Optuna RDB URL (an SQLite file, PostgreSQL) so that several
processes or machines share one study and a killed worker loses no finished trial (each trial is committed when
it finishes)."""

from __future__ import annotations

from typing import Any

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from harness.context import StudyStorage
from harness.errors import ConfigError, one_line

SPACE_ATTR = "optbench_search_space"


# Where studies live is the run's choice, carried by its Context (harness.context.StudyStorage) and passed to
# open_study as an argument, as Optuna's own create_study(storage=...) takes it: this module keeps no setting.
StorageSettings = StudyStorage


def storage_for(url: str | None, study_prefix: str | None = None) -> StudyStorage:
    """The study storage a run names (``url`` checked: a malformed one is a ConfigError naming it)."""
    if url is not None:
        check_url(url)
    return StudyStorage(url, study_prefix or "optbench")


def check_url(url: str) -> None:
    """Raise ConfigError naming ``url`` when it is not a database URL SQLAlchemy can parse and load a driver for."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, ValueError, SQLAlchemyError, ImportError) as exc:
        raise ConfigError(f"optuna storage {url!r} is not a usable database URL (e.g. sqlite:///study.db, "
                          f"postgresql+psycopg://user@host/db): {one_line(exc)}") from None


def open_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """The Optuna storage at ``url`` (None: a new in-memory study each time); unreachable → ConfigError."""
    if url is None:
        return None
    check_url(url)
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
        return optuna.storages.RDBStorage(url, heartbeat_interval=None, engine_kwargs={"pool_pre_ping": True})
    except (SQLAlchemyError, OSError) as exc:
        raise ConfigError(f"optuna storage {url!r} is unreachable: {one_line(exc)}") from None


def open_study(name: str, url: str | None, space: dict[str, list[Any]], *, direction: str = "maximize",
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create or load study ``name``; a stored study with another search space is refused, naming both."""
    storage = open_storage(url)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    stored = study.user_attrs.get(SPACE_ATTR)
    if stored is None:
        study.set_user_attr(SPACE_ATTR, space)
    elif stored != space:
        raise ConfigError(f"study {name!r} in {url} was created with another search space: stored {stored}, "
                          f"asked {space}; use another study name")
    return study

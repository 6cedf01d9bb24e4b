"""Study storage: in memory, an SQLite file shared across opens, and clear errors for bad URLs and spaces."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.search import storage


def test_a_study_in_sqlite_keeps_its_trials_across_opens(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = storage.open_study("s", url, {"x": ["float", 0, 1]})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = storage.open_study("s", url, {"x": ["float", 0, 1]})
    assert len(again.trials) == 3


def test_a_study_name_reused_with_another_space_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage.open_study("s", url, {"x": ["float", 0, 1]})
    with pytest.raises(ConfigError, match=r"study 's' .* another search space"):
        storage.open_study("s", url, {"x": ["float", 0, 2]})


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db", "postgresql+nosuchdriver://h/db"])
def test_a_malformed_url_is_refused_naming_it(url):
    with pytest.raises(ConfigError, match="is not a usable database URL"):
        storage.check_url(url)


def test_an_unreachable_server_is_refused_naming_the_url():
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    with pytest.raises(ConfigError, match=r"unreachable"):
        storage.open_storage(url)


def test_an_sqlite_file_in_a_missing_folder_is_unreachable(tmp_path):
    with pytest.raises(ConfigError, match="unreachable"):
        storage.open_storage(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}")


def test_in_memory_is_the_default():
    assert storage.open_storage(None) is None
    assert storage.storage_for(None).url is None


def test_a_named_storage_is_checked_and_carries_its_prefix():
    assert storage.storage_for("sqlite:///x.db", "mine") == storage.StudyStorage("sqlite:///x.db", "mine")
    assert storage.storage_for("sqlite:///x.db").study_prefix == "optbench"
    with pytest.raises(ConfigError, match="is not a usable database URL"):
        storage.storage_for("not a url")

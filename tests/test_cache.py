import pytest

from harness.cache import Cache, atomic_write, default_cache_dir, make_key, source_hash


def test_key_is_stable_and_sensitive():
    assert make_key("a", {"x": 1, "y": 2}) == make_key("a", {"y": 2, "x": 1})
    assert make_key("a", {"x": 1}) != make_key("a", {"x": 2})


def test_source_hash_changes_with_module():
    import harness.gate
    import harness.registry

    assert source_hash(harness.gate.Tolerances) == source_hash(harness.gate.check_contract)
    assert source_hash(harness.gate.Tolerances) != source_hash(harness.registry.Registry)


def test_default_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("OPTBENCH_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"


def test_get_or_create_rebuilds_corrupt_entries(tmp_path):
    cache = Cache(tmp_path)
    path = cache.path("ns", "k", ".txt")
    built = []

    def create(p):
        built.append(1)
        p.write_text("good")

    def validate(p):
        if p.read_text() != "good":
            raise ValueError("corrupt")

    cache.get_or_create(path, create, validate)
    cache.get_or_create(path, create, validate)
    assert len(built) == 1
    path.write_text("garbage")
    cache.get_or_create(path, create, validate)
    assert len(built) == 2 and path.read_text() == "good"


def test_atomic_write_leaves_old_file_on_crash(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]

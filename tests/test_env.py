from harness import env
from harness.gate import Scope


def _env(**changes):
    base = env.capture(threads=1)
    return base | changes


def test_capture_records_what_speed_depends_on():
    e = env.capture(threads=3)
    assert e["threads"] == 3 and e["cpu"] and e["logical_cores"] >= 1
    assert set(e["cpu_flags"]) <= set(env.CPU_FLAGS)
    assert e["libraries"]["torch"] and e["libraries"]["onnxruntime"]


def test_same_environment_compares_everything():
    assert env.comparable_scopes(_env(), _env()) == frozenset(Scope)


def test_other_cpu_model_of_the_same_class_still_compares_speed():
    """The speed probe absorbs a faster or slower chip of one class; the class is what decides speed."""
    assert env.comparable_scopes(_env(cpu="Some Other CPU"), _env()) == frozenset(Scope)
    assert env.machine_class(_env(cpu="Some Other CPU")) == env.machine_class(_env())


def test_other_features_cores_threads_gpu_or_libraries_make_another_class():
    changes = ({"cpu_flags": ["avx2"]}, {"threads": 7}, {"gpu": "NVIDIA H100"}, {"logical_cores": 64},
               {"arch": "aarch64"}, {"cpu_flags": ["asimd", "asimddp", "i8mm"]},
               {"libraries": {"torch": "9.0", "onnxruntime": "1.32.0"}})
    for change in changes:
        assert env.comparable_scopes(_env(**change), _env()) == {Scope.ANYWHERE}, change
        assert env.class_difference(_env(**change), _env()), change
    assert env.class_difference(_env(), _env()) == []


def test_machine_class_is_readable_and_stable():
    e = {"arch": "x86_64", "cpu_flags": ["avx2", "fma"], "logical_cores": 2, "threads": 1, "gpu": None,
         "libraries": {"torch": "2.13.0", "onnxruntime": "1.32.0"}}
    key = env.machine_class(e)
    assert key.startswith("x86_64-avx2+fma-2cpu-1t-nogpu-torch2.13.0-onnxruntime1.32.0-")
    assert len(key.split("-")[-1]) == 6
    assert env.machine_class(dict(e)) == key


def test_cpu_features_are_read_with_py_cpuinfo(monkeypatch):
    import cpuinfo

    env._cpu.cache_clear()
    monkeypatch.setattr(cpuinfo, "get_cpu_info", lambda: {"brand_raw": "Neoverse", "flags": ["asimd", "asimddp",
                                                                                               "i8mm", "sve", "crc32"]})
    try:
        assert env._cpu() == ("Neoverse", ("asimd", "asimddp", "i8mm", "sve"))
    finally:
        env._cpu.cache_clear()


def test_describe_names_cpu_threads_and_runtimes():
    line = env.describe(_env(cpu="CPU X", cpu_flags=["avx2", "fma"], threads=2))
    assert line.startswith("CPU X [avx2,fma]") and "2 thread(s)" in line and "torch " in line


def test_cpus_available_is_the_affinity_mask_and_every_cpu_where_there_is_none(monkeypatch):
    import os

    from harness import env

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    assert env.cpus_available() == 2
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert env.cpus_available() == 5

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


def test_other_cpu_model_with_the_same_features_still_compares_speedups():
    scopes = env.comparable_scopes(_env(cpu="Some Other CPU", logical_cores=64), _env())
    assert scopes == {Scope.ANYWHERE, Scope.SAME_ISA}


def test_other_features_threads_or_gpu_compare_only_artifact_figures():
    for change in ({"cpu_flags": ["avx2"]}, {"threads": 7}, {"gpu": "NVIDIA H100"}):
        assert env.comparable_scopes(_env(**change), _env()) == {Scope.ANYWHERE}, change


def test_describe_names_cpu_threads_and_runtimes():
    line = env.describe(_env(cpu="CPU X", cpu_flags=["avx2", "fma"], threads=2))
    assert line.startswith("CPU X [avx2,fma]") and "2 thread(s)" in line and "torch " in line

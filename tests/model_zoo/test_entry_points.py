"""Model lookup and registration: built-ins, user specs, and models from ``optbench.models`` entry points."""

import dataclasses
import sys
import types
from importlib import metadata

import pytest

import model_zoo
from harness.errors import RegistryError
from model_zoo import ENTRY_POINT_GROUP, MODELS, ModelSpec

PLUGIN = "fake_optbench_models"


def toy(name: str) -> ModelSpec:
    return dataclasses.replace(model_zoo.get_model("cancer_mlp"), name=name)


@pytest.fixture(autouse=True)
def restore_registry():
    before = set(MODELS.names())
    yield
    for name in set(MODELS.names()) - before:
        MODELS.remove(name)


@pytest.fixture
def plugin(monkeypatch):
    """An importable module that a fake entry point can name, with every shape of entry-point target."""
    module = types.ModuleType(PLUGIN)
    module.SPEC = toy("ep_single")
    module.make_one = lambda: toy("ep_made")
    module.make_many = lambda: [toy("ep_many_a"), toy("ep_many_b")]
    module.make_generator = lambda: (toy(f"ep_gen_{i}") for i in range(2))
    module.not_a_spec = 42
    module.returns_junk = lambda: 42
    module.returns_mixed = lambda: [toy("ep_mixed"), "oops"]

    def explode():
        raise RuntimeError("no weights here\nsecond line of the message")

    module.explode = explode
    monkeypatch.setitem(sys.modules, PLUGIN, module)
    return module


def use_entry_points(monkeypatch, *targets: tuple[str, str]) -> None:
    eps = [metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP) for name, value in targets]

    def fake_entry_points(**params):
        assert params == {"group": ENTRY_POINT_GROUP}
        return metadata.EntryPoints(eps)

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)


def test_unknown_model_name_lists_the_valid_names():
    with pytest.raises(RegistryError) as info:
        model_zoo.get_model("no_such_model")
    message = str(info.value)
    assert "no_such_model" in message
    for name in ("cancer_mlp", "digits_cnn", "digits_resnet", "minilm"):
        assert name in message


def test_a_user_can_register_a_model_from_a_conftest():
    spec = model_zoo.register_model(toy("users_own"))
    assert model_zoo.get_model("users_own") is spec
    with pytest.raises(RegistryError, match="already registered"):
        model_zoo.register_model(toy("users_own"))


def test_no_entry_points_registers_nothing(monkeypatch):
    use_entry_points(monkeypatch)
    before = MODELS.names()
    assert model_zoo.load_entry_point_models() == []
    assert MODELS.names() == before


def test_entry_points_may_name_a_spec_a_factory_or_an_iterable_factory(plugin, monkeypatch):
    use_entry_points(
        monkeypatch,
        ("single", f"{PLUGIN}:SPEC"),
        ("one", f"{PLUGIN}:make_one"),
        ("many", f"{PLUGIN}:make_many"),
        ("gen", f"{PLUGIN}:make_generator"),
    )
    names = model_zoo.load_entry_point_models()
    assert names == ["ep_single", "ep_made", "ep_many_a", "ep_many_b", "ep_gen_0", "ep_gen_1"]
    assert model_zoo.get_model("ep_single") is plugin.SPEC
    assert all(name in MODELS for name in names)


def test_an_entry_point_may_name_a_module_that_registers_on_import(tmp_path, monkeypatch):
    (tmp_path / "fake_registering_module.py").write_text(
        "import dataclasses\n"
        "import model_zoo\n"
        "SPEC = model_zoo.register_model(\n"
        "    dataclasses.replace(model_zoo.get_model('cancer_mlp'), name='ep_from_module')\n"
        ")\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_registering_module", raising=False)
    use_entry_points(monkeypatch, ("mod", "fake_registering_module"))
    assert model_zoo.load_entry_point_models() == ["ep_from_module"]
    assert model_zoo.get_model("ep_from_module").name == "ep_from_module"
    assert model_zoo.load_entry_point_models() == []  # already imported: nothing new, and no error


def test_loading_the_same_entry_points_twice_is_harmless(plugin, monkeypatch):
    use_entry_points(monkeypatch, ("single", f"{PLUGIN}:SPEC"), ("many", f"{PLUGIN}:make_many"))
    first = model_zoo.load_entry_point_models()
    # make_many builds new but equal specs on every call: still the same model, not a clash
    assert model_zoo.load_entry_point_models() == first
    assert model_zoo.get_model("ep_single") is plugin.SPEC


def test_a_different_model_under_a_taken_name_is_an_error(plugin, monkeypatch):
    plugin.clash = lambda: dataclasses.replace(toy("cancer_mlp"), description="another model entirely")
    use_entry_points(monkeypatch, ("clash", f"{PLUGIN}:clash"))
    with pytest.raises(RegistryError, match=r"'cancer_mlp'.*entry point 'clash'.*different"):
        model_zoo.load_entry_point_models()
    assert model_zoo.get_model("cancer_mlp").description != "another model entirely"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"{PLUGIN}:explode", "RuntimeError: no weights here second line"),
        ("no_such_module_anywhere:thing", "ModuleNotFoundError"),
        (f"{PLUGIN}:missing_attribute", "AttributeError"),
        (f"{PLUGIN}:not_a_spec", "resolved to int"),
        (f"{PLUGIN}:returns_junk", "returned int"),
        (f"{PLUGIN}:returns_mixed", "iterable holding str"),
    ],
    ids=["raises", "missing_module", "missing_attribute", "not_callable", "returns_junk", "returns_mixed"],
)
def test_a_failing_entry_point_is_a_one_line_error_naming_it(plugin, monkeypatch, target, expected):
    use_entry_points(monkeypatch, ("good", f"{PLUGIN}:SPEC"), ("broken", target))
    with pytest.raises(RegistryError) as info:
        model_zoo.load_entry_point_models()
    message = str(info.value)
    assert "\n" not in message
    assert "'broken'" in message and target in message and expected in message

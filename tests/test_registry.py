import pytest

from harness.errors import RegistryError
from harness.registry import Registry


def test_register_and_get():
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)

    @reg.register("b")
    def b():
        return 2

    assert reg.get("a") == 1
    assert reg.get("b") is b
    assert reg.names() == ["a", "b"]
    assert "a" in reg and "z" not in reg
    assert len(reg) == 2


def test_duplicate_registration_is_refused():
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(RegistryError, match="thing 'a' is already registered"):
        reg.add("a", 2)
    assert reg.get("a") == 1


def test_unknown_name_lists_valid_names():
    reg: Registry[int] = Registry("model")
    reg.add("x", 1)
    reg.add("y", 2)
    with pytest.raises(RegistryError) as info:
        reg.get("nope")
    assert str(info.value) == "unknown model 'nope'; expected one of: x, y"


@pytest.mark.parametrize("bad", ["", None, 3])
def test_empty_or_non_string_name_is_refused(bad):
    with pytest.raises(RegistryError, match="non-empty string"):
        Registry("thing").add(bad, 1)

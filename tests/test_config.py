import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.config import Config, require_choice, require_range
from harness.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Toy(Config):
    ratio: float = 0.5
    mode: str = "a"
    dims: tuple[int, ...] = (1, 2)
    VERSION = 3

    def validate(self) -> None:
        require_range("ratio", self.ratio, 0.0, 1.0, high_open=True)
        require_choice("mode", self.mode, ("a", "b"))


def test_invalid_value_names_the_field():
    with pytest.raises(ConfigError) as info:
        Toy(name="t", ratio=1.3)
    assert str(info.value) == "`ratio` must be in [0, 1), got 1.3"
    with pytest.raises(ConfigError, match="`mode` must be one of a, b; got 'c'"):
        Toy(name="t", mode="c")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", True])
def test_range_rejects_non_numbers(bad):
    with pytest.raises(ConfigError, match="`ratio`"):
        Toy(name="t", ratio=bad)


@pytest.mark.parametrize("name", ["", "has space", "a/b", None])
def test_name_must_be_a_slug(name):
    with pytest.raises(ConfigError, match="`name`"):
        Toy(name=name)


def test_configs_are_frozen():
    cfg = Toy(name="t")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ratio = 0.1  # type: ignore[misc]


def test_replace_validates():
    with pytest.raises(ConfigError):
        Toy(name="t").replace(ratio=-0.1)


@given(ratio=st.floats(0, 1, exclude_max=True), mode=st.sampled_from(["a", "b"]),
       dims=st.lists(st.integers(0, 9), max_size=4).map(tuple))
def test_dict_round_trip(ratio, mode, dims):
    cfg = Toy(name="t", ratio=ratio, mode=mode, dims=dims)
    data = cfg.to_dict()
    assert data["type"] == "Toy" and data["version"] == 3
    assert Toy.from_dict(data) == cfg


def test_from_dict_refuses_other_version_type_and_unknown_fields():
    data = Toy(name="t").to_dict()
    with pytest.raises(ConfigError, match="`version` of Toy must be 3, got 2"):
        Toy.from_dict({**data, "version": 2})
    with pytest.raises(ConfigError, match="`type` must be 'Toy'"):
        Toy.from_dict({**data, "type": "Other"})
    with pytest.raises(ConfigError, match="unknown field"):
        Toy.from_dict({**data, "extra": 1})

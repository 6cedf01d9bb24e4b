"""Search spaces as plain data: validation names the dimension, and suggestions stay inside the space."""

from __future__ import annotations

import optuna
import pytest

from harness.errors import ConfigError
from harness.search.space import signature, suggest, validate_space

SPACE = {"lr": ("log", 1e-4, 1e-1), "drop": ("float", 0.0, 0.5), "layers": ("int", 1, 4),
         "batch_size": ("choice", 16, 32)}


def test_suggestions_stay_inside_every_dimension():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        params = suggest(study.ask(), SPACE)
        assert 1e-4 <= params["lr"] <= 1e-1 and 0 <= params["drop"] <= 0.5
        assert params["layers"] in range(1, 5) and params["batch_size"] in (16, 32)


@pytest.mark.parametrize(("space", "message"), [
    ({}, "empty search space"),
    ({"lr": ("log", 0.0, 1.0)}, "`search_space.lr`"),
    ({"lr": ("float", 2.0, 1.0)}, "`search_space.lr`"),
    ({"lr": ("int", 1)}, "`search_space.lr`"),
    ({"bs": ("choice",)}, "`search_space.bs` must list at least one choice"),
    ({"bs": "choice"}, "`search_space.bs` must start with one of"),
])
def test_malformed_spaces_are_refused_naming_the_dimension(space, message):
    with pytest.raises(ConfigError, match=message):
        validate_space(space)


def test_the_signature_does_not_depend_on_declaration_order():
    assert signature(dict(reversed(list(SPACE.items())))) == signature(SPACE)

"""The least-squares refit of a pruned encoder's output projections: its figures are the errors the refit model
really has, each projection is the least-squares solution on the model's own inputs, the embeddings end closer to
the teacher's, and a layer map that does not fit is a one-line error."""

from __future__ import annotations

import copy

import pytest
import torch

from harness.errors import TechniqueError
from harness.techniques._embedding_finetune import layer_list, trim
from harness.techniques._layer_refit import projections, refit_projections
from harness.techniques.transformer_pruning import apply_plan
from tests.techniques.embedding_toys import tiny_bert_reference

PLAN = {0: ((1,), tuple(range(0, 64, 3))), 1: ((2,), tuple(range(1, 64, 4)))}


def _pruned():
    ref = tiny_bert_reference()
    teacher = ref.module
    return teacher, apply_plan(copy.deepcopy(teacher), PLAN), ref.splits.test.inputs


def _block_inputs(model, block, inputs):
    """The block's (input to dense, residual) at the real tokens, seen in a whole forward pass of the model (the
    refit itself runs layer by layer from cached inputs: this checks it against the plain pass)."""
    inputs = trim(inputs)
    seen = []

    def hook(_m, args, kwargs):
        values = [*args, *(kwargs[k] for k in ("hidden_states", "input_tensor") if k in kwargs)]
        seen.append((values[0][inputs[-1].bool()], values[1][inputs[-1].bool()]))

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            model(*inputs)
    finally:
        handle.remove()
    return seen[0]


def _measured_errors(model, teacher, inputs):
    out = []
    for theirs, ours in zip(projections(teacher), projections(model), strict=True):
        xt, rt = _block_inputs(teacher, theirs, inputs)
        x, r = _block_inputs(model, ours, inputs)
        with torch.inference_mode():
            z = theirs.dense(xt) + rt
            out.append(float((ours.dense(x) + r - z).pow(2).sum() / z.pow(2).sum()))
    return out


def _assert_least_squares(teacher, their_blocks, model, inputs):
    """Each of ``model``'s projections does no worse than the least-squares solution, on its own inputs, for the
    pre-LayerNorm sum of the teacher block it is matched to."""
    for theirs, ours in zip(their_blocks, projections(model), strict=True):
        xt, rt = _block_inputs(teacher, theirs, inputs)
        x, r = _block_inputs(model, ours, inputs)
        with torch.inference_mode():
            y = (theirs.dense(xt) + rt - r).double()
        x1 = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
        best = torch.linalg.lstsq(x1, y).solution
        fitted = torch.cat([ours.dense.weight.T, ours.dense.bias[None]]).double()
        assert (x1 @ fitted - y).pow(2).sum() <= (x1 @ best - y).pow(2).sum() * (1 + 1e-4) + 1e-9


def test_the_figures_are_the_errors_the_refit_model_has():
    teacher, pruned, inputs = _pruned()
    before = _measured_errors(pruned, teacher, inputs)
    figures = refit_projections(pruned, teacher, inputs, (0, 1))
    after = _measured_errors(pruned, teacher, inputs)
    assert figures["refit_error_after"] == pytest.approx(sum(after) / len(after), rel=1e-3)
    assert figures["refit_error_before"] < sum(before) / len(before) + 1e-9  # the first block's inputs are as pruned
    assert all(a < b for a, b in zip(after, before, strict=True))


def test_each_projection_is_the_least_squares_solution_on_the_models_own_inputs():
    teacher, pruned, inputs = _pruned()
    refit_projections(pruned, teacher, inputs, (0, 1), ridge=0.0)
    _assert_least_squares(teacher, projections(teacher), pruned, inputs)


def test_the_refit_brings_the_embeddings_closer_to_the_teachers():
    teacher, pruned, inputs = _pruned()
    with torch.inference_mode():
        target = teacher(*inputs)
        start = torch.nn.functional.cosine_similarity(pruned(*inputs), target).mean()
    refit_projections(pruned, teacher, inputs, (0, 1))
    with torch.inference_mode():
        end = torch.nn.functional.cosine_similarity(pruned(*inputs), target).mean()
    assert end > start


def test_an_unpruned_copy_is_left_as_it_was():
    teacher, _, inputs = _pruned()
    same = copy.deepcopy(teacher)
    figures = refit_projections(same, teacher, inputs, (0, 1), ridge=0.0)
    assert figures["refit_error_before"] < 1e-9 and figures["refit_error_after"] < 1e-9
    with torch.inference_mode():
        assert torch.allclose(same(*inputs), teacher(*inputs), atol=1e-4)


@pytest.mark.parametrize("layer_map", [(0,), (0, 2), (1, 0, 1)])
def test_a_layer_map_that_does_not_fit_is_a_one_line_error(layer_map):
    teacher, pruned, inputs = _pruned()
    with pytest.raises(TechniqueError, match=r"`layer_map` \[.*\] must name a teacher layer 0-1 for each of the "
                                             r"model's 2 layers") as err:
        refit_projections(pruned, teacher, inputs, layer_map)
    assert "\n" not in str(err.value)


def test_a_student_layer_is_fit_to_the_teacher_layer_it_is_mapped_to():
    teacher, _, inputs = _pruned()
    student = copy.deepcopy(teacher)
    parent, name, layers = layer_list(student)
    setattr(parent, name, torch.nn.ModuleList([layers[0]]))  # one layer, matched to the teacher's second
    refit_projections(student, teacher, inputs, (1,), ridge=0.0)
    _assert_least_squares(teacher, projections(teacher)[2:], student, inputs)

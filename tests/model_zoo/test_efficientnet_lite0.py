"""The pretrained EfficientNet-Lite0: the packaged weights map onto the architecture one to one, the model names
what the bundled photographs show, and its data are deterministic crops split by photograph."""

from __future__ import annotations

import pytest
import torch

from model_zoo import efficientnet_lite0 as lite0


@pytest.fixture(scope="module")
def model() -> lite0.EfficientNetLite0:
    return lite0.build()


def test_every_packaged_tensor_has_one_place_and_a_missing_one_is_named(model):
    source = torch.load(lite0.weights_path(), map_location="cpu", weights_only=True)
    assert len(lite0.convert_state_dict(source, model)) == len(source) == len(model.state_dict())
    del source["_blocks.3._depthwise_conv.weight"]
    with pytest.raises(KeyError, match=r"lack '_blocks\.3\._depthwise_conv\.weight'"):
        lite0.convert_state_dict(source, model)


@pytest.mark.parametrize(("photo", "classes"), [
    ("skimage:coffee", {967}),  # espresso
    ("sklearn:china", {698}),  # palace
    ("sklearn:flower", {985}),  # daisy
    ("skimage:chelsea", {281, 282, 285}),  # tabby, tiger cat, Egyptian cat
    ("skimage:rocket", {657, 744}),  # missile, projectile
])
def test_the_model_names_what_a_bundled_photograph_shows(model, photo, classes):
    with torch.no_grad():
        logits = model(lite0.crops(lite0._photo(photo))[:1])  # the centre crop at the smaller scale
    assert int(logits.argmax()) in classes


def test_tensorflow_same_padding_puts_the_odd_pixel_after():
    assert lite0._same_padding(3, 2, 224) == (0, 1)
    assert lite0._same_padding(5, 2, 28) == (1, 2)
    assert lite0._same_padding(3, 1, 14) == (1, 1)


def test_splits_are_twenty_crops_per_photograph_scaled_to_plus_minus_one():
    splits = lite0.data()
    for name, split in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        (pixels,) = split.inputs
        assert pixels.shape == (20 * len(lite0.PHOTOS[name]), 3, 224, 224)
        assert pixels.min() >= -1.0 and pixels.max() <= 1.0
    photos = [p for names in lite0.PHOTOS.values() for p in names]
    assert len(photos) == len(set(photos))  # no photograph in two splits
    again = lite0.crops(lite0._photo("skimage:coffee"))
    assert torch.equal(again, lite0.crops(lite0._photo("skimage:coffee")))
    assert torch.equal(again[1], again[0].flip(2))  # each crop is followed by its mirror image

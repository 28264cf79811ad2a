"""One framing policy: hand-computed regions, and training frames a prompt exactly as the runtime does."""

import dataclasses

import numpy as np
import pytest

from core.contract import InputSpec
from core.framing import frame_for, needs_first_pass, outline_extent
from core.geometry import Letterbox
from core.prompt import Prompt
from core.runtime import Predictor
from training.config import TrainConfig
from training.dataset import ClickDataset


@pytest.fixture
def zoom(binary_spec) -> InputSpec:
    return dataclasses.replace(binary_spec, zoom_context=2.0, zoom_min_side=16)


def test_first_pass_only_for_clicks_under_zoom_in(zoom, binary_spec):
    clicks, boxed = Prompt().add_click(5, 5), Prompt().add_box(1, 1, 9, 9)
    assert needs_first_pass(clicks, zoom)
    assert not needs_first_pass(boxed, zoom) and not needs_first_pass(boxed.add_click(5, 5), zoom)
    assert not needs_first_pass(clicks, binary_spec)


def test_outline_extent_by_hand():
    mask = np.zeros((20, 30), bool)
    mask[3:6, 2:5] = True  # x 2..4, y 3..5
    assert outline_extent(mask, np.array([[10.0, 1.0]])) == (2, 1, 10, 5)
    assert outline_extent(np.zeros((20, 30), bool), np.array([[7.0, 8.0]])) == (7, 8, 7, 8)


def test_frame_for_by_hand(zoom, binary_spec):
    assert frame_for(Prompt().add_box(120, 40, 159, 79), 200, 120, binary_spec) == Letterbox.whole(200, 120, 64)
    # A 40 x 40 box, context 2: an 80-pixel square centred on it.
    assert frame_for(Prompt().add_box(120, 40, 159, 79), 200, 120, zoom).region == (100, 20, 180, 100)
    # The lesion clicks count with the box: a click at x = 179 widens the extent to 60 px.
    assert frame_for(Prompt().add_box(120, 40, 159, 79).add_click(179, 60), 200, 120, zoom).region == (90, 0, 210, 120)
    clicks = Prompt().add_click(20, 20)
    assert frame_for(clicks, 200, 120, zoom) == Letterbox.whole(200, 120, 64)  # the first pass
    assert frame_for(clicks, 200, 120, zoom, outline=(10, 10, 29, 29)).region == (0, 0, 40, 40)
    assert frame_for(clicks, 200, 120, zoom, outline=(10, 10, 12, 12)).region == (4, 4, 20, 20)  # min side 16


# --- training against the runtime --------------------------------------------------------------

W, H = 256, 192  # a quarter in the 64 x 64 input: the reference below maps to whole model pixels and back
REFERENCE = np.zeros((H, W), bool)
REFERENCE[48:112, 64:128] = True


class Oracle(Predictor):
    """Answers every pass with the reference outline, so that its first pass finds the reference exactly."""

    def __init__(self, spec: InputSpec):
        self.spec, self.card = spec, {}
        self.answer = Letterbox.whole(W, H, spec.input_size).image_to_model(REFERENCE.astype(np.float32))

    def run(self, batch):
        uniform = np.full((len(batch), self.spec.num_classes), 1 / self.spec.num_classes, np.float32)
        return np.repeat(self.answer[None], len(batch), axis=0), uniform


class Midpoint:
    """A generator without chance: a uniform draw is its range's midpoint, random() is 0.5. Training's
    framing then adds no jitter: the first pass it imitates finds the reference's tight box."""

    def uniform(self, low=0.0, high=1.0, size=None):
        return (low + high) / 2 if size is None else np.full(size, (low + high) / 2)

    def random(self):
        return 0.5


@pytest.mark.parametrize("zoom_context", [1.6, 0.0], ids=["zoom-in", "whole image"])
@pytest.mark.parametrize(
    "prompt",
    [
        Prompt().add_box(60, 40, 131, 115),
        Prompt().add_box(60, 40, 131, 115).add_click(150, 70),
        Prompt().add_click(90, 80).add_click(20, 20, positive=False),
        Prompt().add_click(100, 60).add_click(140, 100),
    ],
    ids=["box", "box and a click outside", "click", "clicks, one outside"],
)
def test_training_frames_a_prompt_as_the_runtime_does(prompt, zoom_context):
    cfg = TrainConfig(input_size=64, zoom_context=zoom_context, scale=[1.0, 1.0])
    spec = cfg.spec()
    seen_at_run_time = Oracle(spec).predict(np.zeros((H, W), np.uint8), prompt).region
    trained_on = ClickDataset([], cfg, spec).frame(REFERENCE, prompt, Midpoint())
    assert (trained_on.image_width, trained_on.image_height, trained_on.size) == (W, H, 64)
    assert trained_on.region == seen_at_run_time
    if zoom_context:
        assert seen_at_run_time != (0, 0, W, H)

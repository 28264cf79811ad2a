import json

import pytest

from core.contract import SPEC_VERSION, ContractError, InputSpec

BINARY = dict(class_names=("benign", "malignant"), malignant_classes=("malignant",))


def test_round_trip_through_json():
    spec = InputSpec(input_size=256, zoom_context=1.5, **BINARY)
    again = InputSpec.from_json(spec.to_json())
    assert again == spec
    assert again.malignant_indices == (1,)
    assert again.zoom_in


def test_lists_from_json_become_tuples():
    spec = InputSpec.from_dict({**json.loads(InputSpec(input_size=64, **BINARY).to_json())})
    assert isinstance(spec.class_names, tuple) and hash(spec)


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "carries no input spec"),
        ("{not json", "not valid JSON"),
        (json.dumps({"spec_version": SPEC_VERSION + 1}), "not understood"),
        (json.dumps({"spec_version": SPEC_VERSION, "input_size": 64, "colour": 1, **BINARY}), "unknown fields"),
        (json.dumps({"spec_version": SPEC_VERSION, "input_size": 64}), "incomplete"),
    ],
)
def test_refuses_what_it_does_not_understand(text, message):
    with pytest.raises(ContractError, match=message):
        InputSpec.from_json(text)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_size=100, **BINARY), "multiple of 32"),
        (dict(input_size=64, class_names=("a",), malignant_classes=()), "at least two"),
        (dict(input_size=64, class_names=("a", "b"), malignant_classes=("c",)), "not in class_names"),
        (dict(input_size=64, mask_threshold=1.5, **BINARY), "mask_threshold"),
        (dict(input_size=64, zoom_context=0.5, **BINARY), "zoom_context"),
    ],
)
def test_invalid_specs_are_refused(kwargs, message):
    with pytest.raises(ContractError, match=message):
        InputSpec(**kwargs)

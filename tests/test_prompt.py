import math

import numpy as np
import pytest

from core.prompt import MAX_INPUTS, Box, Click, Prompt, PromptError, parse_json, request_frame


def test_box_becomes_one_foreground_and_four_background_clicks():
    clicks = Box(30, 10, 10, 50).to_clicks()  # corners in any order
    assert clicks[0] == Click(20, 30, True)
    assert sorted((c.x, c.y) for c in clicks[1:]) == [(10, 10), (10, 50), (30, 10), (30, 50)]
    assert not any(c.positive for c in clicks[1:])


def test_box_and_clicks_combine_and_prompt_is_immutable():
    p0 = Prompt()
    p1 = p0.add_box(10, 10, 30, 50)
    p2 = p1.add_click(12, 12, positive=False).add_click(20, 20)
    assert len(p0) == 0 and len(p1) == 1
    assert p2.points(True).tolist() == [[20, 30], [20, 20]]
    assert len(p2.points(False)) == 5
    assert p2.undo() == p1.add_click(12, 12, positive=False)
    assert p2.undo().undo().undo() == p0


def test_the_last_box_is_in_force_and_undo_restores_the_previous_one():
    p = Prompt().add_box(0, 0, 10, 10).add_box(5, 5, 20, 20)
    assert p.box == Box(5, 5, 20, 20)
    assert p.undo().box == Box(0, 0, 10, 10)


def test_a_box_starts_a_new_object_and_undo_steps_back_one_entry_of_the_history():
    clicks = Prompt().add_click(5, 5).add_click(8, 3, positive=False)
    boxed = clicks.add_box(30, 50, 10, 10)
    refined = boxed.add_click(12, 12, positive=False)
    alone = Prompt().add_box(10, 10, 30, 50).add_click(12, 12, positive=False)
    assert refined.in_force == alone.inputs and refined.all_clicks() == alone.all_clicks()
    assert refined.box == alone.box and refined.clicks == alone.clicks == (Click(12, 12, False),)
    for positive in (True, False):
        np.testing.assert_array_equal(refined.points(positive), alone.points(positive))
    assert boxed.starts_afresh and not refined.starts_afresh and not clicks.starts_afresh
    assert refined.undo() == boxed and boxed.undo() == clicks  # undoing the box brings the clicks back
    assert clicks.in_force == clicks.inputs and clicks.box is None
    assert Prompt().add_click(1, 1, positive=False).add_box(0, 0, 9, 9).validate(10, 10)  # the box has its lesion


@pytest.mark.parametrize(
    "prompt, message",
    [
        (Prompt(), "at least one click on the lesion"),
        (Prompt().add_click(5, 5, positive=False), "at least one click on the lesion"),
        (Prompt().add_click(100, 5), "outside"),
        (Prompt().add_click(-1, 5), "outside"),
        (Prompt().add_click(math.nan, 5), "finite"),
        (Prompt().add_box(10, 10, 10, 40), "zero area"),
        (Prompt().add_box(10, 10, 120, 40), "outside"),
    ],
)
def test_validation_gives_clear_messages(prompt, message):
    with pytest.raises(PromptError, match=message):
        prompt.validate(width=100, height=80)


def test_valid_prompt_passes():
    assert Prompt().add_click(99, 79).validate(100, 80)


def test_request_format_round_trip():
    data = {
        "clicks": [{"x": 120, "y": 88, "positive": True}, {"x": 3.5, "y": 4, "positive": False}],
        "box": [100, 50, 150, 120],
    }
    prompt = Prompt.from_dict(data)
    assert prompt.to_dict() == data
    assert prompt.all_clicks()[0] == Click(125, 85, True)
    np.testing.assert_array_equal(prompt.points(False)[-1], [3.5, 4])


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "JSON object"),
        ({"box": [1, 2, 3]}, r"\[x0, y0, x1, y1\]"),
        ({"clicks": [{"x": 1}]}, "needs 'x' and 'y'"),
        ({"clicks": [{"x": "1", "y": 2}]}, "must be a number"),
        ({"clicks": [{"x": 1, "y": 2, "positive": "yes"}]}, "true or false"),
    ],
)
def test_malformed_requests(data, message):
    with pytest.raises(PromptError, match=message):
        Prompt.from_dict(data)


def test_an_ordered_history_round_trips_and_the_short_form_is_kept_where_it_says_it_all():
    clicks_then_box = Prompt().add_click(5, 5).add_box(1, 1, 20, 20).add_click(3, 3, positive=False)
    data = clicks_then_box.to_dict()
    assert data == {
        "inputs": [
            {"x": 5, "y": 5, "positive": True},
            {"box": [1, 1, 20, 20]},
            {"x": 3, "y": 3, "positive": False},
        ]
    }
    assert Prompt.from_dict(data) == clicks_then_box
    box_then_click = Prompt().add_box(1, 1, 20, 20).add_click(3, 3)
    assert box_then_click.to_dict() == {"clicks": [{"x": 3, "y": 3, "positive": True}], "box": [1, 1, 20, 20]}
    assert Prompt.from_dict(box_then_click.to_dict()) == box_then_click
    with pytest.raises(PromptError, match="not both"):
        Prompt.from_dict({"inputs": [], "clicks": []})


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"clicks": [{"x": ' + "9" * 400 + ', "y": 1}]}', "a number of 400 characters; the limit is 40"),
        ("[" * 5000 + "]" * 5000, "nests 5000 levels deep; the limit is 8"),
        ('{"comment": "' + "[" * 100 + '"}', None),  # brackets inside a string do not nest
        ('{"clicks": [], "pad": "' + "x" * 70_000 + '"}', "characters long; the limit is 65,536"),
        ('{"clicks": [{"x": NaN, "y": 1}]}', "NaN is not a number a prompt can hold"),
        ("{'clicks': oops", "not valid JSON"),
        (None, "must be JSON text"),
    ],
)
def test_prompt_json_is_bounded_before_and_while_parsing(text, message):
    if message is None:
        assert parse_json(text) == {"comment": "[" * 100}
        return
    with pytest.raises(PromptError, match=message):
        parse_json(text)


def test_a_prompt_holds_a_bounded_number_of_inputs():
    many = {"clicks": [{"x": 1, "y": 1}] * (MAX_INPUTS + 1)}
    with pytest.raises(PromptError, match=f"at most {MAX_INPUTS} clicks and boxes"):
        Prompt.from_dict(many)
    long = Prompt(tuple(Click(1, 1) for _ in range(MAX_INPUTS + 1)))
    with pytest.raises(PromptError, match="undo some, or clear"):
        long.validate(10, 10)
    with pytest.raises(PromptError, match="must be a whole number from 0"):
        request_frame({"frame": -1})

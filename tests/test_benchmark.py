import json

from core.benchmark import EXAMPLES, KINDS, lesion_prompts
from core.cli import main


def test_benchmark_times_each_kind_of_prompt_on_an_image(tiny_model, scan, capsys):
    args = ["benchmark", "--model", str(tiny_model), "--image", scan, "--box", "120", "40", "160", "80"]
    assert main([*args, "--rounds", "3", "--warmup", "1", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["provider"] == "CPUExecutionProvider" and result["input_size"] == 64
    assert result["images"] == ["scan.png (200x120)"] and result["n_prompts"] == 9
    assert set(result["by_prompt"]) == set(KINDS)
    for kind in result["by_prompt"].values():
        assert 0 < kind["network_p50_ms"] <= kind["p50_ms"] <= kind["p95_ms"] and kind["n"] == 3
    assert result["box_over_network"] >= 1 and result["machine"] in out[0]


def test_benchmark_needs_the_lesion_of_each_image(tiny_model, scan, capsys):
    assert main(["benchmark", "--model", str(tiny_model), "--image", scan]) == 2
    assert "give --box" in capsys.readouterr().err


def test_the_shipped_examples_carry_their_lesions_prompts():
    for image in sorted(EXAMPLES.glob("busi_*.png")):
        prompts = lesion_prompts(image)
        x0, y0, x1, y1 = prompts["box"]
        assert x0 <= prompts["click"]["x"] <= x1 and y0 <= prompts["click"]["y"] <= y1
        assert {"x", "y", "positive"} <= set(prompts["correction"])

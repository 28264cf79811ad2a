import json

from core.cli import main


def test_benchmark_prints_a_json_line(tiny_model, capsys):
    assert main(["benchmark", "--model", str(tiny_model), "--clicks", "9", "--warmup", "3", "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["provider"] == "CPUExecutionProvider" and result["input_size"] == 64
    assert 0 < result["p50_ms"] <= result["p95_ms"] and result["n_clicks"] == 9
    assert set(result["by_prompt"]) == {"box", "click", "box+click"}

"""The GPU check's dry run: the same steps as on a GPU (parallel reproduction, report, export, latency), on the
CPU at a tiny size, as CI runs them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_its_whole_path_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = json.loads((out / "check.json").read_text())["steps"]
    assert list(steps) == ["environment", "manifest", "reproduce", "export", "latency", "trim"]
    assert not [name for name, step in steps.items() if "error" in step]
    assert len(list(out.glob("reproduce/seed*/*.json"))) == 9 and (out / "reproduce" / "reproduction.md").is_file()
    assert steps["export"]["passed"] and "CPUExecutionProvider against PyTorch" in steps["export"]["parity"]
    assert set(steps["latency"]["latency_ms"]) == {"pytorch-cpu", "CPUExecutionProvider"}
    assert not list(out.rglob("last.pt")) and 0 < steps["trim"]["out_mb"] <= 60

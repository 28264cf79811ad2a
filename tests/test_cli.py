"""The `liverclick` command: assembled from the packages' registrations, light to start, one message for a
model that cannot be loaded and one for a missing training dependency."""

import subprocess
import sys

import pytest

from core.cli import main
from training.adapters import phantom_manifest

COMMANDS = {
    "serve",
    "predict",
    "train",
    "evaluate",
    "compare",
    "reproduce",
    "reproduce-report",
    "export",
    "benchmark",
    "data",
    "feedback",
}


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("    ")}
    assert listed >= COMMANDS


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_building_the_command_line_imports_nothing_heavy():
    code = (
        "import sys\nfrom core.cli import build_parser\nbuild_parser()\n"
        "print(sorted(m for m in ('torch', 'gradio', 'matplotlib', 'onnx') if m in sys.modules))"
    )
    assert run(code).stdout.strip() == "[]"


WITHOUT_TORCH = """
import importlib.abc
import sys


class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoTorch())
"""


@pytest.mark.parametrize(
    "argv",
    [["train", "--config", "configs/phantoms_smoke.yaml"], ["export", "--checkpoint", "x.pt", "--out", "x.onnx"]],
    ids=["train", "export"],
)
def test_a_missing_training_dependency_gets_one_message(argv):
    code = f"{WITHOUT_TORCH}from core.cli import main\nsys.exit(main({argv}))"
    done = run(code)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"liverclick {argv[0]}: needs the training extra (torch is not installed): "
        "pip install torch==2.13.0 'liverclick[train]'"
    )


@pytest.mark.parametrize("command", ["predict", "evaluate", "benchmark", "serve"])
def test_every_command_explains_a_model_it_cannot_load(command, tmp_path, capsys):
    missing = str(tmp_path / "missing.onnx")
    requests = tmp_path / "req.jsonl"
    requests.write_text('{"id": "a", "image": "x.png", "box": [1, 1, 5, 5]}\n')
    manifest = phantom_manifest(tmp_path / "phantoms", n=4) if command == "evaluate" else None
    argv = {
        "predict": ["--requests", str(requests), "--out", str(tmp_path / "out")],
        "evaluate": ["--data", str(manifest), "--split", "all", "--report", str(tmp_path / "r.json")],
        "benchmark": [],
        "serve": [],
    }[command]
    assert main([command, "--model", missing, *argv]) == 2
    reason = f"no model file at {missing} (bundled models: busi_joint_lite, default)"
    assert capsys.readouterr().err.strip() == f"liverclick {command}: cannot load the model: {reason}"

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from core.contract import SPEC_METADATA_KEY, InputSpec
from core.prompt import Prompt
from core.runtime import Segmenter, load_model
from export import onnx_export
from export.onnx_export import ParityError, check_parity, export_onnx
from training.checkpoint import save_checkpoint
from training.config import TrainConfig
from training.networks import build_network

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = TrainConfig.load(None, ["width=0.125", "input_size=64", "zoom_context=1.5", "cls_pool=mask"])
    torch.manual_seed(0)
    net = build_network(cfg).eval()
    with torch.no_grad():  # weights and statistics that give confident, input-dependent outputs, as after training
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        net.seg_head.fuse.weight.mul_(3.0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, net, cfg, iteration=7)
    return path


def test_export_embeds_contract_and_passes_parity(tmp_path, checkpoint):
    out = tmp_path / "m.onnx"
    report = export_onnx(checkpoint, out, card={"metrics": {"val_ji": 0.5}})
    assert report.passed and report.max_abs_mask <= 1e-3
    assert "ONNX Runtime CPUExecutionProvider against PyTorch" in str(report) and report.reference.endswith("cpu")
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    spec = InputSpec.from_json(meta[SPEC_METADATA_KEY])
    assert spec.input_size == 64 and spec.zoom_context == 1.5
    assert not list(tmp_path.glob("*.data"))  # one self-contained file
    seg = Segmenter(out, provider="cpu")
    assert seg.card["metrics"] == {"val_ji": 0.5} and seg.card["iterations"] == 7 and "diagnosis" in seg.card["notice"]
    in_pytorch = load_model(checkpoint, provider="cpu")  # a checkpoint loads like any model, through training
    assert (in_pytorch.provider, in_pytorch.version) == ("pytorch-cpu", "iter 7") and seg.version == "iter 7"
    img = np.random.default_rng(0).integers(0, 255, (90, 120), dtype=np.uint8)
    pred = seg.predict(img, Prompt().add_box(30, 20, 80, 60))
    assert pred.mask.shape == img.shape and abs(sum(pred.class_probs.values()) - 1) < 1e-5
    batch = onnx_export.parity_inputs(spec)
    assert seg.run(batch)[0].shape == (len(batch), 64, 64)  # dynamic batch


def test_gate_fails_when_weights_are_tampered_with_after_export(tmp_path, checkpoint):
    out = tmp_path / "m.onnx"
    export_onnx(checkpoint, out)
    model = onnx.load(str(out))
    biggest = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    w = numpy_helper.to_array(biggest).copy()
    w *= 1.5
    biggest.CopyFrom(numpy_helper.from_array(w, biggest.name))
    onnx.save(model, str(out))
    from training.checkpoint import load_checkpoint

    net, _, spec, _ = load_checkpoint(checkpoint)
    report = check_parity(out, net, spec)
    assert not report.passed
    assert "FAILED" in str(report)


def test_failed_gate_writes_no_file(tmp_path, checkpoint, monkeypatch):
    real = onnx_export._torch_export

    def export_other_network(module, size, path, opset):
        other = onnx_export.WithProbabilities(build_network(TrainConfig.load(None, ["width=0.125", "cls_pool=mask"])))
        real(other.eval(), size, path, opset)

    monkeypatch.setattr(onnx_export, "_torch_export", export_other_network)
    out = tmp_path / "m.onnx"
    with pytest.raises(ParityError, match="FAILED"):
        export_onnx(checkpoint, out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_fp16_export_has_its_own_tolerance(tmp_path, checkpoint):
    report = export_onnx(checkpoint, tmp_path / "h.onnx", fp16=True)
    assert report.passed and report.tolerance == 2e-2
    model = onnx.load(str(tmp_path / "h.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert json.loads({p.key: p.value for p in model.metadata_props}[onnx_export.CARD_METADATA_KEY])["name"]


def test_calibration_is_folded_into_the_exported_model(tmp_path, checkpoint):
    """The temperature divides the class logits inside the ONNX model, which carries the operating points."""
    calibration = {"temperature": 2.5, "operating_points": {"sensitivity_90": 0.3, "youden": 0.5}}
    report = export_onnx(checkpoint, tmp_path / "cal.onnx", calibration=calibration)
    assert report.passed
    seg, plain = Segmenter(tmp_path / "cal.onnx", provider="cpu"), load_model(checkpoint)
    assert seg.spec.temperature == 2.5 and dict(seg.spec.operating_points) == calibration["operating_points"]
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    tempered, raw = seg.run(x)[1][0], plain.run(x)[1][0]
    logit = np.log(raw)
    expected = np.exp(logit / 2.5) / np.exp(logit / 2.5).sum()
    assert np.allclose(tempered, expected, atol=1e-4) and not np.allclose(tempered, raw, atol=1e-3)

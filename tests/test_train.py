import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.manifest import read_manifest
from training.adapters import phantom_manifest
from training.checkpoint import TorchPredictor
from training.config import TrainConfig
from training.networks import build_network
from training.train import lr_factor, train, validate

TINY = [
    "width=0.125",
    "input_size=64",
    "batch_size=4",
    "num_workers=0",
    "val_max_images=4",
    "classes=[cyst, hemangioma, metastasis, hcc]",
    "malignant=[metastasis, hcc]",
]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    return phantom_manifest(tmp_path_factory.mktemp("phantoms"), n=24, seed=0)


def test_config_overrides_and_errors(tmp_path):
    cfg = TrainConfig.load(None, ["width=0.5", "classes=[a, b, c]", "malignant=[c]", "zoom_context=1.5"])
    assert cfg.width == 0.5 and cfg.spec().class_names == ("a", "b", "c") and cfg.spec().zoom_in
    with pytest.raises(ValueError, match="KEY=VALUE"):
        TrainConfig.load(None, ["nonsense=1"])
    (tmp_path / "c.yaml").write_text("widht: 0.3\n")
    with pytest.raises(ValueError, match="unknown config keys"):
        TrainConfig.load(tmp_path / "c.yaml")


def test_paper_step_schedule():
    cfg = TrainConfig(iterations=100)
    assert lr_factor(cfg, 0) == 1.0 and lr_factor(cfg, 49) == 1.0 and lr_factor(cfg, 50) == pytest.approx(0.1)


def test_a_predictor_runs_the_network_where_it_is_and_leaves_it_so():
    """Handed a network, the predictor neither moves it (here: on the meta device, where moving would fail) nor
    changes its mode."""
    net = build_network(TrainConfig.load(None, TINY)).to("meta").train()
    predictor = TorchPredictor(net, TrainConfig.load(None, TINY).spec())
    assert predictor.provider == "pytorch-meta"
    assert all(p.device.type == "meta" for p in net.parameters()) and net.training


@pytest.mark.slow
def test_validation_leaves_the_network_as_it_found_it(phantoms, torch_device):
    """validate() runs the training network itself: afterwards it is on the same device, in the same dtype and
    still in train mode, with the same weights and batch-norm statistics."""
    cfg = TrainConfig.load(None, [f"data={phantoms}", *TINY])
    net = build_network(cfg).to(torch_device, torch.float64).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cases = [c for c in read_manifest(phantoms)[0] if c.split == "val"][:3]
    scores = validate(net, cfg, cases)
    assert 0 <= scores["val_ji_two_click"] <= 1 and np.isfinite(scores["val_score"])
    assert net.training
    assert {(p.device.type, p.dtype) for p in net.parameters()} == {(torch.device(torch_device).type, torch.float64)}
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.slow
def test_training_changes_the_weights_on_the_chosen_device(tmp_path, phantoms, torch_device):
    """Also with a data worker process, forked after validation has used OpenCV's threads."""
    overrides = [f"data={phantoms}", "iterations=3", "val_every=100", f"device={torch_device}", *TINY]
    cfg = TrainConfig.load(None, [*overrides, "num_workers=1"])
    torch.manual_seed(cfg.seed * 1000)  # the seed training starts from: the same initial weights
    initial = build_network(cfg).state_dict()
    trained = torch.load(train(cfg, tmp_path), map_location="cpu", weights_only=False)
    changed = [k for k, v in trained["model"].items() if v.is_floating_point() and not torch.equal(v, initial[k])]
    conv_weights = [k for k in initial if k.endswith("weight") and initial[k].ndim == 4]
    assert set(conv_weights) <= set(changed), sorted(set(conv_weights) - set(changed))[:5]
    assert "optimizer" not in trained  # best.pt: the weights, contract and config, not the optimiser's state


@pytest.mark.slow
def test_train_few_iterations_checkpoint_and_resume(tmp_path, phantoms, torch_device):
    cfg = TrainConfig.load(
        None,
        [f"data={phantoms}", "iterations=4", "val_every=2", "checkpoint_every=2", "zoom_context=1.5", *TINY]
        + [f"device={torch_device}"],
    )
    best = train(cfg, tmp_path)
    assert best.is_file() and (tmp_path / "last.pt").is_file()
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0].startswith("iteration") and len(log) == 1 + 3  # untrained, @2, @4
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:  # the same rows as TensorBoard scalars
        assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    assert ckpt["iteration"] == 4 and "spec" in ckpt and ckpt["config"]["zoom_context"] == 1.5
    cfg.iterations = 6
    train(cfg, tmp_path)  # resumes at 4
    assert torch.load(tmp_path / "last.pt", weights_only=False)["iteration"] == 6


@pytest.mark.slow
@pytest.mark.parametrize("system", ["seg", "cls"])
def test_single_task_systems_train(tmp_path, phantoms, system, torch_device):
    overrides = [f"data={phantoms}", "iterations=2", "val_every=2", f"system={system}", f"device={torch_device}"]
    assert train(TrainConfig.load(None, [*overrides, *TINY]), tmp_path).is_file()


@pytest.mark.slow
def test_two_process_ddp_on_gloo_keeps_ranks_equal(tmp_path, phantoms):
    """torchrun with 2 CPU processes: after training, both ranks hold the same weights (parameters;
    batch-norm statistics are buffers that DDP broadcasts from rank 0 before each forward); both validated
    their share of the images and agree on the scores; the process group the script made is still there."""
    script = tmp_path / "ddp_check.py"
    script.write_text(
        "import os, sys, torch\n"
        "from pathlib import Path\n"
        "from training.config import TrainConfig\n"
        "from training import train as t\n"
        "captured = {}\n"
        "original = t.DistributedDataParallel\n"
        "def keep(module, **kw):\n"
        "    captured['net'] = module\n"
        "    return original(module, **kw)\n"
        "t.DistributedDataParallel = keep\n"
        "cfg = TrainConfig.load(None, sys.argv[2:])\n"
        "out = Path(sys.argv[1])\n"
        "import torch.distributed as dist\n"
        "dist.init_process_group('gloo')\n"
        "rank = dist.get_rank()\n"
        "shares = []\n"
        "validate = t.validate\n"
        "def counted(model, cfg, cases, seed=0):\n"
        "    shares.append(len(cases[rank::2]))\n"
        "    return validate(model, cfg, cases, seed)\n"
        "t.validate = counted\n"
        "t.train(cfg, out / 'run')\n"
        "assert dist.is_initialized(), 'train() destroyed a process group it did not create'\n"
        "dist.barrier()\n"
        "torch.save(dict(captured['net'].named_parameters()), out / f'rank{rank}.pt')\n"
        "(out / f'shares{rank}.txt').write_text(' '.join(map(str, shares)))\n"
    )
    args = [f"data={phantoms}", "iterations=3", "val_every=2", "checkpoint_every=100", "threads=1", *TINY]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29517",
        str(script),
        str(tmp_path),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert saved["iteration"] == 3
    shares = [(tmp_path / f"shares{r}.txt").read_text().split() for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 3 and all(int(n) >= 1 for n in shares[0] + shares[1])  # 0, 2, 3
    assert len((tmp_path / "run" / "log.csv").read_text().splitlines()) == 1 + 3
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=f"ranks differ at {key}")
        torch.testing.assert_close(a[key], saved["model"][key])


CONFIGS = sorted(Path(__file__).resolve().parents[1].glob("configs/*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(config):
    cfg = TrainConfig.load(config)
    assert cfg.spec().class_names == tuple(cfg.classes)


def test_init_from_copies_early_encoder_stages(tmp_path):
    from training.checkpoint import init_from_checkpoint, resolve_checkpoint, save_checkpoint
    from training.networks import build_network

    cfg = TrainConfig.load(None, ["width=0.125", "input_size=64"])
    torch.manual_seed(1)
    source = build_network(cfg)
    save_checkpoint(tmp_path / "full.pt", source, cfg, optimizer={"big": torch.zeros(1000)}, iteration=3)
    torch.manual_seed(2)
    target = build_network(cfg)
    copied = init_from_checkpoint(target, resolve_checkpoint(tmp_path / "full.pt"), 2, cfg.spec())
    assert copied > 0
    a, b = source.state_dict(), target.state_dict()
    assert torch.equal(a["encoder.stages.1.0.0.weight"], b["encoder.stages.1.0.0.weight"])
    assert not torch.equal(a["encoder.stages.2.0.0.weight"], b["encoder.stages.2.0.0.weight"])
    assert not torch.equal(a["seg_head.fuse.weight"], b["seg_head.fuse.weight"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resolve_checkpoint(tmp_path / "missing.pt")


def test_a_network_with_new_inputs_starts_computing_what_its_source_computed(tmp_path):
    """init_from with the heads, into a network with disk and previous-outline channels: the channels the source
    has keep their weights, the new ones start at zero, so the outputs are the source's."""
    from training.checkpoint import init_from_checkpoint, save_checkpoint
    from training.networks import build_network

    cfg = TrainConfig.load(None, ["width=0.125", "input_size=64"])
    torch.manual_seed(1)
    source = build_network(cfg).eval()
    save_checkpoint(tmp_path / "src.pt", source, cfg)
    wider = TrainConfig.load(None, ["width=0.125", "input_size=64", "click_encoding=both", "previous_mask=true"])
    assert wider.spec().channels == ("image", "fg_distance", "bg_distance", "fg_disk", "bg_disk", "previous_mask")
    target = build_network(wider).eval()
    init_from_checkpoint(target, tmp_path / "src.pt", 5, wider.spec(), heads=True)
    x = torch.rand(2, 6, 64, 64)
    with torch.no_grad():
        for got, want in zip(target(x), source(x[:, :3]), strict=True):
            assert torch.allclose(got, want, atol=1e-5)


def test_train_cli_names_bad_rows_and_can_skip_them(tmp_path, phantoms, capsys):
    import csv

    from core.cli import main

    with open(phantoms) as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["mask"] = "masks/missing.png"
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {**r, "image": str(phantoms.parent / r["image"]), "mask": str(phantoms.parent / r["mask"])} for r in rows
        )
    smoke = Path(__file__).resolve().parents[1] / "configs" / "phantoms_smoke.yaml"
    args = [
        "train",
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(smoke),
        f"data={bad}",
        "iterations=1",
        "val_every=100",
        *TINY,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "row 2: mask file not found" in err and "skip_bad_rows" in err
    assert main([*args, "skip_bad_rows=true"]) == 0
    assert "skipped 1 bad manifest rows" in capsys.readouterr().err
    assert main(["train", "--config", str(smoke), "widht=1"]) == 2

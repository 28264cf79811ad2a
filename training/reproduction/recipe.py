"""The run's own section of the reproduction document: the commands that ran, the protocol, the time each
system/seed took, the config, what it changes versus the paper's recipe, and the commands at the paper's size."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from ..config import SYSTEMS, TrainConfig
from ..evaluation.markdown import markdown_table

PAPER_CONFIGS = {"seg": "paper_seg_only.yaml", "cls": "paper_cls_only.yaml", "joint": "paper_joint.yaml"}
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
SKIP = ("system", "amp")  # the system is set per run; mixed precision runs on CUDA only


def paper_recipes() -> dict:
    """The paper's recipe per system (``configs/paper_*.yaml`` of this checkout), for the report; {} if absent."""
    out = {}
    for system, name in PAPER_CONFIGS.items():
        if (CONFIG_DIR / name).is_file():
            out[system] = {k: v for k, v in TrainConfig.load(CONFIG_DIR / name).to_dict().items() if k != "data"}
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _per_system(values: dict) -> str:
    """``a`` when the three systems agree, else ``seg / cls / joint``."""
    texts = [yaml.safe_dump(values.get(s), default_flow_style=True).removesuffix("...\n").strip() for s in SYSTEMS]
    return f"`{texts[0]}`" if len(set(texts)) == 1 else " / ".join(f"`{t}`" for t in texts)


def config_markdown(configs: dict) -> list[str]:
    """The config used (joint's, in full) and the entries in which the systems' configs differ."""
    joint = {k: v for k, v in configs["joint"].items() if k not in SKIP}
    lines = [
        "### Config",
        "",
        "Each system trained from this config, `system` set per run (classification-only on its lesion-centred "
        "patch: the lesion's box times `cls_patch_context`, the image channel only):",
        "",
        "```yaml",
        yaml.safe_dump(joint, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    if joint.get("cls_pool") == "mask":
        lines += [
            "(`cls_pool: mask` pools under the predicted outline: the joint system only; classification-only "
            "pools its whole patch.)",
            "",
        ]
    differ = [k for k in joint if len({repr(configs[s].get(k)) for s in SYSTEMS}) > 1]
    if differ:
        lines += ["The systems' configs differ in (seg only / cls only / joint):", ""]
        lines += markdown_table(
            ["Setting", "Value"], [[k, _per_system({s: configs[s].get(k) for s in SYSTEMS})] for k in differ]
        )
    else:
        lines += ["All three systems share it: the same width, input size, iterations and prompt mix.", ""]
    return lines


def changes_markdown(configs: dict, paper: dict) -> list[str]:
    """Where this run's configs depart from the paper's recipe (``configs/paper_*.yaml``), system by system."""
    lines = ["### What this run changes versus the paper's recipe", ""]
    if set(paper) != set(SYSTEMS):
        return lines + ["The paper's recipes (`configs/paper_*.yaml`) were not found when the run started.", ""]
    rows = []
    for key in configs["joint"]:
        if key in SKIP:
            continue
        ours = {s: configs[s].get(key) for s in SYSTEMS}
        theirs = {s: paper[s].get(key) for s in SYSTEMS}
        if ours != theirs:
            rows.append([key, _per_system(theirs), _per_system(ours)])
    if not rows:
        return lines + ["Nothing: this run is the paper's recipe (apart from the data).", ""]
    lines += [
        "Values for seg only / cls only / joint where they differ. The paper trained on private 4-class liver "
        "ultrasound; its recipes are `configs/paper_{seg_only,cls_only,joint}.yaml`.",
        "",
    ]
    return lines + markdown_table(["Setting", "Paper", "This run"], rows)


def timing_markdown(timing: dict) -> list[str]:
    rows = []
    for seed, by_system in timing.items():
        cells = []
        for s in SYSTEMS:
            t = by_system.get(s)
            cells.append(
                "–"
                if t is None
                else f"{_duration(t['train_seconds'])} training ({t['iterations']} it), "
                f"{_duration(t['evaluate_seconds'])} evaluation"
            )
        rows.append([str(seed), *cells])
    return markdown_table(["Seed", *(SYSTEMS[s] for s in SYSTEMS)], rows)


def paper_size_markdown(record: dict) -> list[str]:
    """The commands that run the paper's recipes at full size on GPUs (torchrun), on this run's data."""
    configs, paper = record["settings"]["configs"], record.get("paper_recipes") or {}
    labels = []
    for key in ("classes", "malignant"):
        if paper.get("joint", {}).get(key) not in (None, configs["joint"][key]):
            labels.append(f"{key}=[{','.join(configs['joint'][key])}]")
    seeds = " ".join(str(s) for s in record["seeds"])
    data = record["data"] if Path(record["data"]).is_absolute() else f"$PWD/{record['data']}"
    extra = " ".join(shlex.quote(e) for e in labels)
    override = f'data="{data}" {extra}'.rstrip()
    loop = " ".join(f"{s}:{name.removesuffix('.yaml')}" for s, name in PAPER_CONFIGS.items())
    config_args = " ".join(f"--config configs/{name}" for name in PAPER_CONFIGS.values())
    return [
        "## At the paper's size, on GPUs",
        "",
        "`configs/paper_*.yaml` are the paper's recipes (VGG16-BN x1.0, its iterations and learning rates per "
        "system). Train each system and seed with `torchrun` (DistributedDataParallel, NCCL; `batch_size` is per "
        "process) into the run folder's layout, then `reproduce` finds each finished training, checks that it was "
        "trained with the config it names, and evaluates it (on the GPU when there is one):",
        "",
        "```bash",
        f"for S in {seeds}; do for SYS in {loop}; do",
        "  torchrun --nproc_per_node=8 -m training.train --config configs/${SYS#*:}.yaml \\",
        f"      --out runs/paper/seed$S/${{SYS%%:*}} seed=$S {override}",
        "done; done",
        f"liverclick reproduce --data {record['data']} --out runs/paper --seeds {seeds} \\",
        f"    {config_args} {extra}".rstrip(),
        "liverclick reproduce-report runs/paper --markdown docs/reproduction-paper.md --plots docs/reproduction-paper",
        "```",
        "",
    ]


def run_section(record: dict, summary: dict) -> list[str]:
    settings, data = record["settings"], summary["data"]
    noc = (
        "run for segmentation-only and joint (in each report)"
        if settings["noc"]
        else "not run: optional (`--noc`), the costliest part of an evaluation (RITM's clicker, up to 20 passes per "
        "image) and not one of the paper's figures"
    )
    lines = [
        "## The run",
        "",
        "Produced by" + (" (continued with the later commands)" if len(record["commands"]) > 1 else "") + ":",
        "",
        "```bash",
        *record["commands"],
        "```",
        "",
        f"Started {record['started']}, code revision `{record.get('revision', '?')}`, PyTorch {record['torch']}. "
        f"Test split: {data['n_images']} images, {settings['inputs_per_image']} simulated inputs per image and mode "
        "(two-click: a box with positional error, turned into 5 clicks; one-click: one pixel in the lesion core), "
        "seeded by the seed and the case id; classification from the two-click inputs, averaged per image, "
        "sensitivity and specificity at Youden's point; 95% CIs by percentile bootstrap over images "
        f"({settings['bootstrap']} resamples, within classes for classification). NoC: {noc}.",
        "",
        "Time per system and seed:",
        "",
    ]
    lines += timing_markdown(summary["timing"])
    lines += config_markdown(settings["configs"])
    lines += changes_markdown(settings["configs"], record.get("paper_recipes") or {})
    return lines + paper_size_markdown(record)

"""The paper's comparison, per seed: ``liverclick reproduce --data MANIFEST.csv --out DIR --seeds 0 1 2
[--config BASE.yaml] [key=value ...]`` trains the three systems (segmentation only, classification only on
its lesion-centred patch, joint) from one config and evaluates each on the test split with the paper's
protocol. The run folder holds everything the report needs:

- ``DIR/run.json``: each system's config, the evaluation settings, the seeds and the commands that ran;
- ``DIR/seed<S>/<system>/``: the training run (``last.pt``, ``best.pt``, ``log.csv``); an interrupted
  run resumes from ``last.pt``;
- ``DIR/seed<S>/<system>.json``: the evaluation report; a system/seed with its report is skipped.

Seed S seeds both the training and the simulated test inputs, so the three systems of a seed are paired
on the same inputs. The summary across seeds and ``reproduction.md`` come from :mod:`.report`.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import time
from pathlib import Path

import torch

from core.manifest import read_manifest

from ..checkpoint import git_revision, load_for_provider
from ..config import SYSTEMS, TrainConfig
from ..evaluation.protocol import disk_radius_from_training, evaluate
from ..train import train
from . import ReproductionError, write_json_atomic
from .recipe import paper_recipes

# Config entries that say where and how fast a run goes, not what it computes: may differ on resuming.
RUNNING_KEYS = ("data", "num_workers", "checkpoint_every", "threads", "device")


def system_configs(configs: list[Path], overrides: list[str], data: Path) -> dict[str, TrainConfig]:
    """Each system's config: one base config (or none: the defaults) for all three, or three files naming one
    system each (the paper's recipes); ``overrides`` apply to all. Seeds and systems are set per run."""
    for item in overrides:
        if item.partition("=")[0] in ("seed", "system"):
            raise ReproductionError(f"override {item!r}: seeds are given with --seeds and systems are set per run")
    common = [*overrides, f"data={Path(data).resolve()}"]
    try:
        if len(configs) <= 1:
            base = configs[0] if configs else None
            return {s: TrainConfig.load(base, [*common, f"system={s}"]) for s in SYSTEMS}
        loaded = [(path, TrainConfig.load(path, common)) for path in configs]
    except (ValueError, OSError) as exc:
        raise ReproductionError(f"bad config: {exc}") from None
    per: dict[str, tuple[Path, TrainConfig]] = {}
    for path, cfg in loaded:
        if cfg.system in per:
            raise ReproductionError(f"{per[cfg.system][0]} and {path} both configure {SYSTEMS[cfg.system]}")
        per[cfg.system] = (path, cfg)
    if len(per) != len(SYSTEMS):
        raise ReproductionError("give one --config for all three systems, or one for each of " + ", ".join(SYSTEMS))
    return {s: per[s][1] for s in SYSTEMS}


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in (*RUNNING_KEYS, "seed")}


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every entry that differs between two nested dicts (keys of ``old`` only)."""
    out = []
    for key, value in old.items():
        if isinstance(value, dict) and isinstance(new.get(key), dict):
            out += differences(value, new[key], f"{prefix}{key}.")
        elif key in new and new[key] != value:
            out.append(f"{prefix}{key}: {value!r} -> {new[key]!r}")
    return out


def open_record(out: Path, settings: dict, seeds: list[int], command: str, data: Path) -> dict:
    """``DIR/run.json``, created or continued: refuses settings other than those the folder was started with."""
    path = out / "run.json"
    if path.exists():
        record = json.loads(path.read_text(encoding="utf-8"))
        changed = differences(record["settings"], settings)
        if changed:
            raise ReproductionError(
                f"{out} holds a reproduction with other settings ({'; '.join(changed)}): use another --out"
            )
    else:
        record = {
            "data": str(data),
            "settings": settings,
            "seeds": [],
            "commands": [],
            "started": time.strftime("%Y-%m-%d %H:%M %Z"),
            "revision": git_revision(),
            "torch": torch.__version__,
            "paper_recipes": paper_recipes(),
        }
    record["seeds"] = sorted(set(record["seeds"]) | set(seeds))
    if command and command not in record["commands"]:
        record["commands"].append(command)
    write_json_atomic(record, path)
    return record


def trained_state(folder: Path, cfg: TrainConfig) -> dict:
    """Iteration and training time of ``folder/last.pt`` ({} without one); refuses a run trained otherwise."""
    last = folder / "last.pt"
    if not last.exists():
        return {}
    state = torch.load(last, map_location="cpu", weights_only=False)
    expected = cfg.to_dict()
    saved = {k: v for k, v in state["config"].items() if k in expected}
    changed = differences(_comparable(saved), expected) + (
        [f"seed: {saved['seed']} -> {cfg.seed}"] if saved.get("seed") != cfg.seed else []
    )
    if changed:
        raise ReproductionError(f"{folder} was trained with another config ({'; '.join(changed)}): use another --out")
    return {"iteration": state["iteration"], "train_seconds": round(state.get("elapsed_s", 0.0), 1)}


def run_system(cfg: TrainConfig, folder: Path, settings: dict, label: str) -> dict:
    """Train (or resume, or find finished) one system/seed in ``folder`` and evaluate it on the test split."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = trained_state(folder, cfg)
    best, done = folder / "best.pt", state.get("iteration", 0)
    if done < cfg.iterations or not best.exists():
        resuming = f"resuming at iteration {done} of {cfg.iterations}" if done else f"{cfg.iterations} iterations"
        print(f"{label}: training in {folder} ({resuming})", flush=True)
        best = train(cfg, folder)
        state = trained_state(folder, cfg)
    print(f"{label}: evaluating {best} on the test split", flush=True)
    cases, _ = read_manifest(cfg.data, split="test", labels=tuple(cfg.classes))
    radius, rule = disk_radius_from_training(Path(cfg.data))
    modes = ("two-click",) if cfg.system == "cls" else ("two-click", "one-click")
    noc = settings["noc"] and cfg.system != "cls"
    n_inputs, n_boot = settings["inputs_per_image"], settings["bootstrap"]
    predictor = load_for_provider(best)
    report = evaluate(
        predictor,
        cases,
        modes=modes,
        seed=cfg.seed,
        n_inputs=n_inputs,
        noc=noc,
        n_boot=n_boot,
        disk_radius=radius,
        disk_rule=rule,
        progress=True,
    )
    report["data"] = {"manifest": cfg.data, "split": "test", **report["data"]}
    report["model"].update(path=str(best), system=SYSTEMS[cfg.system])
    report["reproduce"] = {"seed": cfg.seed, "system": cfg.system, "config": cfg.to_dict(), **state}
    return report


def reproduce(
    data: Path,
    out: Path,
    *,
    configs: list[Path],
    overrides: list[str],
    seeds: list[int],
    n_inputs: int = 5,
    noc: bool = False,
    n_boot: int = 2000,
    command: str = "",
    parallel: int = 1,
) -> None:
    """Train and evaluate the three systems for each seed in ``out``, skipping the systems/seeds done; with
    ``parallel`` > 1, that many system/seed runs at once, each in its own process."""
    cfgs = system_configs(configs, overrides, data)
    settings = {
        "configs": {s: _comparable(c.to_dict()) for s, c in cfgs.items()},
        "inputs_per_image": n_inputs,
        "noc": noc,
        "bootstrap": n_boot,
    }
    open_record(out, settings, seeds, command, data)
    steps = [(seed, system) for seed in seeds for system in SYSTEMS]
    jobs = []
    for k, (seed, system) in enumerate(steps, 1):
        job = Job(
            cfg=dataclasses.replace(cfgs[system], seed=seed),
            folder=out / f"seed{seed}" / system,
            report=out / f"seed{seed}" / f"{system}.json",
            label=f"[{k}/{len(steps)}] seed {seed}, {SYSTEMS[system]}",
        )
        if job.report.exists():
            print(f"{job.label}: done before, skipped ({job.report})", flush=True)
        else:
            jobs.append(job)
    if parallel > 1 and len(jobs) > 1:
        run_in_parallel(jobs, settings, parallel)
        return
    for job in jobs:
        start = time.time()
        write_json_atomic(run_system(job.cfg, job.folder, settings, job.label), job.report)
        print(f"{job.label}: done in {time.time() - start:.0f} s ({job.report})", flush=True)


@dataclasses.dataclass(frozen=True)
class Job:
    """One system/seed of a reproduction: its config, training folder, report and how progress names it."""

    cfg: TrainConfig
    folder: Path
    report: Path
    label: str

    @property
    def log(self) -> Path:
        return self.report.with_suffix(".log")


def share_of_cores(parallel: int, cores: int, cuda: bool) -> dict:
    """Each of ``parallel`` runs' part of the machine: data workers and torch threads. On a GPU a run's own
    process mostly waits for the GPU, so its cores go to data workers (at least one). On the CPU the network
    takes ~90% of a step, so the cores go to its threads, and a data worker only from four cores on."""
    per_run = max(1, cores // parallel)
    if cuda:
        return {"num_workers": max(1, per_run - 1), "threads": 1}
    workers = 1 if per_run >= 4 else 0
    return {"num_workers": workers, "threads": per_run - workers}


def _run_job(job: Job, settings: dict) -> None:
    """A child process: one job, everything it and its data workers print into the job's log, its report
    written atomically."""
    log = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    start = time.time()
    write_json_atomic(run_system(job.cfg, job.folder, settings, job.label), job.report)
    print(f"{job.label}: done in {time.time() - start:.0f} s ({job.report})", flush=True)


def run_in_parallel(jobs: list[Job], settings: dict, parallel: int) -> None:
    """Run the jobs ``parallel`` at a time, each in a fresh (spawned) process with its share of the cores;
    a failed job stops none of the others and is named at the end with the tail of its log."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    share = share_of_cores(parallel, cores, torch.cuda.is_available())
    print(f"{len(jobs)} runs, {parallel} at a time; each with {share} (of {cores} cores)", flush=True)
    context = multiprocessing.get_context("spawn")
    waiting, running, failed = list(jobs), {}, []
    while waiting or running:
        while waiting and len(running) < parallel:
            job = waiting.pop(0)
            job.folder.mkdir(parents=True, exist_ok=True)
            shared = dataclasses.replace(job, cfg=dataclasses.replace(job.cfg, **share))
            process = context.Process(target=_run_job, args=(shared, settings))
            process.start()
            running[process] = (job, time.time())
            print(f"{job.label}: started (log {job.log})", flush=True)
        time.sleep(0.5)
        for process in [p for p in running if not p.is_alive()]:
            job, started = running.pop(process)
            process.join()
            if process.exitcode == 0 and job.report.exists():
                print(f"{job.label}: done in {time.time() - started:.0f} s ({job.report})", flush=True)
            else:
                tail = job.log.read_text(encoding="utf-8", errors="replace")[-1500:] if job.log.exists() else ""
                failed.append(f"{job.label} (exit code {process.exitcode}; {job.log}):\n{tail}")
                print(f"{job.label}: FAILED, exit code {process.exitcode} (log {job.log})", flush=True)
    if failed:
        raise ReproductionError(f"{len(failed)} of {len(jobs)} runs failed:\n" + "\n".join(failed))

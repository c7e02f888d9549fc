"""The paper's setting on a lent GPU in one device call (issue 12): hg8_256 teacher, hg4_128 students, 256 input.

A lent GPU machine gives a session about 15 minutes in all and one command at most 10 minutes, receives the
working tree plus at most 64 MiB, and returns at most 8 files of 16 MiB. This script fits the three runs of the
paper's setting into that:

* ``merge``: gathers the crop-pack chunks of ``experiments/make_lspet_crops.py`` (each travels in its own call beside
  the working tree) into ``$PAPER256_STATE/lspet_crops`` (default ``/root/paper256``; it survives between calls
  while the machine is held), and checks that torch sees the GPU and that posedistill imports.
* ``probe``: measures the training step rate of the teacher and the student and the teacher's forward rate
  (synthetic batches, bf16 autocast + channels_last, and fp32 for the teacher) and the training loader's rate on
  the pack; writes ``probe.json``.
* ``smoke``: one tiny epoch of the teacher and of the FPD student through the real CLI (a few hundred images), to
  fail fast before the long call.
* ``run --budget S``: plans the epochs from the probe so that everything ends within S seconds, then trains the
  teacher (``configs/experiments/paper256/teacher_hg8_256.yaml``), then the FPD student and its ground-truth control side by
  side with the same epochs (re-planned from the teacher's measured rate), evaluates each best checkpoint on the
  test slice with and without flip test, and writes to ``$OUT``: ``results.tar.gz`` (logs, configs, metrics,
  evaluations, probe), the two students' slim checkpoints and the teacher's, in fp16, the teacher's split into
  parts under 16 MiB (``cat teacher_hg8_256.pt.part* > teacher_hg8_256.pt``; posedistill loads fp16 weights into
  its fp32 models). Runs still going at their deadline are stopped; their ``best.pt`` is what they reached.

    python experiments/make_lspet_crops.py --source ../shared/data/lspet --out .gpu/lspet_crops --chunks 3   # here
    # then three device calls in a row (each within the 30 s the machine stays held), carry .gpu/lspet_crops/chunkN:
    python experiments/gpu_paper256.py merge probe smoke        # chunk0 carried (~140 s)
    python experiments/gpu_paper256.py merge                    # chunk1 carried (~6 s)
    python experiments/gpu_paper256.py merge run --budget 505   # chunk2 carried; budget = device time left - ~60 s

``PAPER256_REHEARSE=1`` runs every step here on the CPU with tiny models (a few minutes) before device time is
spent. Measured on an H100 on 2026-11-26: docs/experiments.md.

``--setting gpu128`` trains the same three runs at 128 input, the CPU runs' setting (``configs/experiments/gpu128/``:
hourglass depth 3, 32x32 heatmaps), from the pack of ``make_lspet_crops.py --max-box 128 --chunks 2 --out
.gpu/lspet_crops128`` (33.5 MiB of images: too much beside the tree for one call, so two calls in a row):

    python experiments/gpu_paper256.py --setting gpu128 merge                                     # chunk0 carried
    python experiments/gpu_paper256.py --setting gpu128 --quick-probe merge probe run --budget 570  # chunk1 carried
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("PAPER256_STATE", "/root/paper256"))
OUT = Path(os.environ.get("OUT", str(STATE / "out")))
PACK = STATE / "lspet_crops"
RUNS = STATE / "runs"
N_TRAIN, N_VAL = 6500, 500
PART = 15 * 2**20
RUN_NAMES = ("teacher_hg8_256", "fpd_hg4_128", "student_hg4_128")
CONFIGS = {name: ROOT / "configs" / "experiments" / "paper256" / f"{name}.yaml" for name in RUN_NAMES}
PACK_SOURCE = ROOT / ".gpu" / "lspet_crops"
T0 = time.monotonic()
#: engine step rate / probe rate, measured on an H100: 0.68 with a host sync every step (256 input), 1.15 with
#: train.sync_every 25 (128 input; the engine outran the probe's synthetic loop): the planner assumes 1.0
EFFICIENCY = 1.0
#: PAPER256_REHEARSE=1: the same steps on the CPU with tiny models, input 64 and a few images, to check the script
#: here before spending device time (models, input size and slices below replace the configs' ones).
REHEARSE = os.environ.get("PAPER256_REHEARSE") == "1"
DEVICE = "cpu" if REHEARSE else "cuda"
ARCHS = {"teacher": "hg2_32", "student": "hg1_32"} if REHEARSE else {"teacher": "hg8_256", "student": "hg4_128"}
SIZE = 64 if REHEARSE else 256
PROBE_MODES = ("fp32_cl", "fp32", "bf16_cl", "bf16")
if REHEARSE:
    N_TRAIN, N_VAL = 96, 32
REHEARSE_SET = (["data.train=1-96", "data.val=6501-6532", "data.input_size=64", "train.batch_size=8",
                 "data.workers=1"] if REHEARSE else [])


def configure(setting: str) -> None:
    """Point the globals at a setting: ``paper256`` (256 input, configs/experiments/paper256, the 3-chunk pack) or ``gpu128``
    (128 input, configs/experiments/gpu128, the one-chunk pack of ``--max-box 128``)."""
    global STATE, OUT, PACK, RUNS, SIZE, PACK_SOURCE
    if setting == "paper256":
        return
    STATE = Path(os.environ.get("PAPER256_STATE", f"/root/{setting}"))
    OUT = Path(os.environ.get("OUT", str(STATE / "out")))
    PACK, RUNS = STATE / "lspet_crops", STATE / "runs"
    SIZE = 64 if REHEARSE else 128
    PACK_SOURCE = ROOT / ".gpu" / "lspet_crops128"
    CONFIGS.update({name: ROOT / "configs" / "experiments" / setting / f"{name}.yaml" for name in RUN_NAMES})


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {msg}", flush=True)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["PYTHONUNBUFFERED"] = "1"
    return e


# ---------------------------------------------------------------------------------------------------- merge
def merge() -> None:
    src = PACK_SOURCE
    (PACK / "images").mkdir(parents=True, exist_ok=True)
    new = 0
    for chunk in sorted(src.glob("chunk*")):
        for p in chunk.rglob("*"):
            q = PACK / p.relative_to(chunk)
            if p.is_file() and not q.exists():
                q.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, q)
                new += 1
    count = len(list((PACK / "images").glob("*.jpg")))
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    sys.path.insert(0, str(ROOT / "src"))
    import posedistill  # noqa: F401  (fails here, not mid-run, when a dependency is missing)

    log(f"merge: {new} new files; {count} images, joints.mat {'present' if (PACK / 'joints.mat').is_file() else 'MISSING'}"
        f"; torch {torch.__version__}, {gpu}")


# ---------------------------------------------------------------------------------------------------- probe
def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def _rate(step, batch: int, seconds: float) -> float:
    for _ in range(3):
        step()
    _sync()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or n == 0:
        step()
        n += 1
        if n % 5 == 0:
            _sync()
    _sync()
    return n * batch / (time.perf_counter() - start)


def _role_configs() -> dict:
    """The setting's teacher and (ground-truth) student configs, by role: their batch size and hourglass depth
    are what the probe and the sweep measure."""
    sys.path.insert(0, str(ROOT / "src"))
    from posedistill.config import load_config

    return {"teacher": load_config(CONFIGS["teacher_hg8_256"]), "student": load_config(CONFIGS["student_hg4_128"])}


def _train_step(model, opt, loss_fn, x, t, w, bf16: bool):
    """One fwd + bwd + optimizer step on a fixed synthetic batch, as a callable for :func:`_rate`."""
    import torch

    def step():
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), t, w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def probe(seconds: float = 2.0, batch: int | None = None) -> dict:
    """Step rates at the teacher config's batch size and each config's hourglass depth (see ``sweep`` for rates
    against batch size)."""
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from posedistill.training.losses import HeatmapLoss
    from posedistill.models import build_model

    torch.backends.cudnn.benchmark = True
    dev = torch.device(DEVICE)
    cfgs = _role_configs()
    batch = 4 if REHEARSE else (batch or cfgs["teacher"].train.batch_size)
    seconds = 0.3 if REHEARSE else seconds
    res: dict = {"gpu": _gpu_name(), "torch": torch.__version__, "batch": batch, "input": SIZE}
    loss_fn = HeatmapLoss(10.0)
    t, w = torch.rand(batch, 14, SIZE // 4, SIZE // 4, device=dev), torch.ones(batch, 14, device=dev)
    modes = {"fp32_cl": (False, True), "fp32": (False, False), "bf16_cl": (True, True), "bf16": (True, False)}
    modes = {m: v for m, v in modes.items() if m in PROBE_MODES}
    for key, arch in ARCHS.items():
        model = build_model(arch, num_joints=14, depth=cfgs[key].model.depth).to(dev)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        for mode, (bf16, cl) in modes.items():
            fmt = torch.channels_last if cl else torch.contiguous_format
            model.to(memory_format=fmt)
            x = torch.randn(batch, 3, SIZE, SIZE, device=dev).contiguous(memory_format=fmt)
            res[f"{key}_train_{mode}_img_s"] = _rate(_train_step(model, opt, loss_fn, x, t, w, bf16), batch, seconds)
            log(f"probe: {arch} train {mode} {res[f'{key}_train_{mode}_img_s']:.0f} img/s")
        if key == "teacher":  # the mode every run uses: the teacher's fastest
            res["mode"] = max(modes, key=lambda m: res[f"teacher_train_{m}_img_s"])
            log(f"probe: mode {res['mode']}")
        bf16, cl = modes[res["mode"]]
        fmt = torch.channels_last if cl else torch.contiguous_format
        model.to(memory_format=fmt).eval()
        x = torch.randn(batch, 3, SIZE, SIZE, device=dev).contiguous(memory_format=fmt)
        res[f"{key}_train_img_s"] = res[f"{key}_train_{res['mode']}_img_s"]

        @torch.no_grad()
        def fwd():
            with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=bf16):
                model(x)
        res[f"{key}_fwd_img_s"] = _rate(fwd, batch, seconds)
        log(f"probe: {arch} forward {res['mode']} {res[f'{key}_fwd_img_s']:.0f} img/s")
        del model, opt
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    res["loader_img_s"] = _loader_rate()
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "probe.json").write_text(json.dumps(res, indent=2))  # travels back in results.tar.gz
    return res


def sweep(batches: tuple[int, ...] = (32, 64, 128, 256), seconds: float = 1.5) -> dict:
    """Training step rate against batch size, fp32 and bf16 (channels_last), for the teacher and the student at
    the setting's input size (synthetic batches) -> ``$OUT/sweep.json``. At 128 input the step time barely
    depends on the batch below some size (the host issues thousands of small kernels a step): this says which
    batch a run should use."""
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from posedistill.training.losses import HeatmapLoss
    from posedistill.models import build_model

    torch.backends.cudnn.benchmark = True
    dev = torch.device(DEVICE)
    batches = (2, 4) if REHEARSE else batches
    seconds = 0.3 if REHEARSE else seconds
    res: dict = {"gpu": _gpu_name(), "torch": torch.__version__, "input": SIZE, "rates_img_s": {}}
    loss_fn = HeatmapLoss(10.0)
    cfgs = _role_configs()
    for key, arch in ARCHS.items():
        depth = cfgs[key].model.depth
        model = build_model(arch, num_joints=14, depth=depth).to(dev).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        for batch in batches:
            for bf16 in (False, True):
                x = torch.randn(batch, 3, SIZE, SIZE, device=dev).contiguous(memory_format=torch.channels_last)
                t = torch.rand(batch, 14, SIZE // 4, SIZE // 4, device=dev)
                w = torch.ones(batch, 14, device=dev)
                name = f"{arch}_b{batch}_{'bf16' if bf16 else 'fp32'}_cl"
                step = _train_step(model, opt, loss_fn, x, t, w, bf16)
                res["rates_img_s"][name] = rate = _rate(step, batch, seconds)
                log(f"sweep: {arch} depth {depth} batch {batch} {'bf16' if bf16 else 'fp32'}+cl: {rate:.0f} img/s, "
                    f"{1000 * batch / rate:.1f} ms a step")
        if DEVICE == "cuda":  # the whole fp32 step captured as one CUDA graph (PyTorch's whole-network recipe)
            for batch in (32, 128):
                try:
                    res["rates_img_s"][f"{arch}_b{batch}_fp32_cl_cudagraph"] = rate = _graphed_rate(
                        model, loss_fn, batch, seconds)
                    log(f"sweep: {arch} batch {batch} fp32+cl CUDA graph: {rate:.0f} img/s")
                except Exception as exc:  # noqa: BLE001 (a measurement, not a feature: report and go on)
                    log(f"sweep: {arch} batch {batch} CUDA graph failed: {type(exc).__name__}: {exc}"[:300])
        del model, opt
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sweep.json").write_text(json.dumps(res, indent=2))
    return res


def _graphed_rate(model, loss_fn, batch: int, seconds: float) -> float:
    import torch

    opt = torch.optim.Adam(model.parameters(), 1e-3, capturable=True)
    x = torch.randn(batch, 3, SIZE, SIZE, device="cuda").contiguous(memory_format=torch.channels_last)
    t = torch.rand(batch, 14, SIZE // 4, SIZE // 4, device="cuda")
    w = torch.ones(batch, 14, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), t, w).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = loss_fn(model(x), t, w)
        loss.backward()
        opt.step()
    return _rate(graph.replay, batch, seconds)


def _loader_rate(batches: int = 40) -> float:
    """Samples/s of the teacher config's training loader (its workers) on the pack, after the first batches."""
    from posedistill.config import load_config
    from posedistill.data.loader import build_loader
    from posedistill.training.datasets import read_training_data

    split = "train" if len(list((PACK / "images").glob("*.jpg"))) >= 6500 else "1-2000"
    cfg = load_config(CONFIGS["teacher_hg8_256"], [f"data.root={PACK}", f"data.train={split}", "data.val=null",
                                                   *REHEARSE_SET])
    batches = 4 if REHEARSE else batches
    data = read_training_data(cfg, validation=False)
    loader = build_loader(data.train_set(stride=4), batch_size=cfg.train.batch_size, shuffle=True,
                          num_workers=cfg.data.workers, drop_last=True)
    it = iter(loader)
    skip = cfg.data.workers * 2
    batches = max(1, min(batches, len(loader) - skip - 1))
    for _ in range(skip):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * cfg.train.batch_size / (time.perf_counter() - start)
    log(f"probe: training loader ({cfg.data.workers} workers) {rate:.0f} samples/s")
    return rate


# ---------------------------------------------------------------------------------------------------- train
def _train(name: str, epochs: int, *, teacher: Path | None = None, extra: list[str] = (),
           out: Path | None = None) -> subprocess.Popen:
    out = out or RUNS / name
    cmd = [sys.executable, "-m", "posedistill", "distill" if teacher else "train", "--config", str(CONFIGS[name]),
           "--out", str(out), "--overwrite", "--no-progress", "--device", DEVICE,
           "--set", f"data.root={PACK}", "--set", f"train.epochs={epochs}", *extra]
    mode = json.loads((STATE / "probe.json").read_text()).get("mode", "bf16_cl")
    cmd += ["--set", f"train.amp={'bf16' if mode.startswith('bf16') else 'none'}",
            "--set", f"train.channels_last={str(mode.endswith('_cl')).lower()}"]
    for item in REHEARSE_SET:
        cmd += ["--set", item]
    if REHEARSE:
        cmd += ["--set", f"model.name={ARCHS['teacher' if name.startswith('teacher') else 'student']}"]
    if teacher is not None:
        cmd += ["--teacher", str(teacher)]
    out.mkdir(parents=True, exist_ok=True)
    console = open(out.parent / f"{out.name}.console", "w")
    log(f"start {name}: {epochs} epochs ({' '.join(cmd[3:])})")
    return subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=console, stderr=subprocess.STDOUT)


def _wait(proc: subprocess.Popen, name: str, deadline: float) -> None:
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        log(f"{name}: deadline reached, stopping it (its best.pt is what it reached)")
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    log(f"{name}: exit {proc.returncode}")


def smoke() -> None:
    extra = ["--set", "data.train=1-256", "--set", "data.val=1-64", "--set", "data.workers=4",
             "--set", "schedule.warmup_epochs=0"]
    t = _train("teacher_hg8_256", 1, extra=extra, out=STATE / "smoke" / "teacher")
    _wait(t, "smoke teacher", time.monotonic() + 150)
    best = STATE / "smoke" / "teacher" / "best.pt"
    s = _train("fpd_hg4_128", 1, teacher=best, extra=extra, out=STATE / "smoke" / "fpd")
    _wait(s, "smoke fpd", time.monotonic() + 120)
    for name in ("teacher", "fpd"):
        tail = (STATE / "smoke" / f"{name}.console").read_text().strip().splitlines()[-3:]
        log(f"smoke {name}: " + " / ".join(tail))
    result = STATE / "smoke" / "fpd_eval.json"
    _evaluate(STATE / "smoke" / "fpd" / "best.pt", result, flip=True, split="1-64").wait()
    log(f"smoke evaluate: PCK {json.loads(result.read_text())['pck']['mean']:.1f}" if result.is_file()
        else "smoke evaluate: FAILED " + result.with_suffix(".log").read_text()[-300:])


def _evaluate(ckpt: Path, out: Path, *, flip: bool, split: str = "test") -> subprocess.Popen:
    cmd = [sys.executable, "-m", "posedistill", "evaluate", str(ckpt), "--data", str(PACK), "--dataset", "lspet",
           "--split", split, "--flip" if flip else "--no-flip", "--device", DEVICE, "--workers", "3",
           "--json", str(out)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=open(out.with_suffix(".log"), "w"),
                            stderr=subprocess.STDOUT)


def _epoch_times(run: Path) -> list[float]:
    path = run / "log.csv"
    if not path.is_file():
        return []
    with open(path) as fh:
        return [float(r["epoch_time_s"]) for r in csv.DictReader(fh) if r.get("epoch_time_s")]


def _export(run: Path, name: str) -> list[Path]:
    """fp16 slim checkpoint of ``run/best.pt`` into $OUT, split into parts under 16 MiB when larger."""
    sys.path.insert(0, str(ROOT / "src"))
    from posedistill.models.checkpoint import DEPLOY_KEYS, load_checkpoint, save_checkpoint

    best = run / "best.pt"
    if not best.is_file():
        log(f"{name}: no best.pt to export")
        return []
    ckpt = load_checkpoint(best)
    slim = {k: ckpt[k] for k in DEPLOY_KEYS if k in ckpt}
    slim["model"] = {k: (v.detach().half().clone() if v.is_floating_point() else v.detach().clone())
                     for k, v in ckpt["model"].items()}
    slim["provenance"] = {"weights": "fp16 copy of best.pt (experiments/gpu_paper256.py)", "gpu": _gpu_name()}
    tmp = STATE / f"{name}.pt"
    save_checkpoint(tmp, slim)
    data = tmp.read_bytes()
    OUT.mkdir(parents=True, exist_ok=True)
    if len(data) <= PART:
        paths = [OUT / f"{name}.pt"]
        paths[0].write_bytes(data)
    else:
        paths = []
        for i in range(0, len(data), PART):
            paths.append(OUT / f"{name}.pt.part{i // PART}")
            paths[-1].write_bytes(data[i:i + PART])
    log(f"{name}: exported {len(data) / 2**20:.1f} MiB as {len(paths)} file(s)")
    return paths


def _pack_results() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / ".results.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for p in sorted(STATE.rglob("*")):
            rel = p.relative_to(STATE)
            if (p.is_file() and p.suffix != ".pt" and rel.parts[0] not in ("lspet_crops", "out")
                    and "tb" not in rel.parts):  # log.csv holds what the TensorBoard events hold
                tar.add(p, arcname=str(rel))
    tmp.replace(OUT / "results.tar.gz")


def run(budget: float, teacher_share: float) -> None:
    deadline = T0 + budget
    p = json.loads((STATE / "probe.json").read_text())
    reserve = 45.0  # student evaluations, exports and the results archive
    startup = 25.0  # process start, data, cuDNN autotuning, worker spawn
    # measured on an H100 (docs/experiments.md): these small-kernel networks leave the GPU idle between launches
    # (the host is the bottleneck), so the two students side by side barely slow each other and each run is
    # planned on its own rate, scaled by the teacher's measured / probed rate
    r_teacher = min(EFFICIENCY * p["teacher_train_img_s"], p["loader_img_s"])
    teacher_epoch = N_TRAIN / r_teacher + 2 * N_VAL / p["teacher_fwd_img_s"] + 4.0
    available = deadline - time.monotonic() - reserve
    t_teacher = teacher_share * available
    e_teacher = max(3, min(80, int((t_teacher - startup) / teacher_epoch)))
    log(f"plan: teacher {e_teacher} epochs of ~{teacher_epoch:.1f} s in {t_teacher:.0f} s")
    teacher = _train("teacher_hg8_256", e_teacher)
    # stop the teacher if it runs 20 % over its plan, and in any case early enough for a few student epochs
    _wait(teacher, "teacher_hg8_256", min(time.monotonic() + 1.2 * t_teacher, deadline - reserve - 90))
    exports = _export(RUNS / "teacher_hg8_256", "teacher_hg8_256")
    evals = [_evaluate(RUNS / "teacher_hg8_256" / "best.pt", RUNS / f"teacher_hg8_256_test{s}.json", flip=f)
             for f, s in ((True, ""), (False, "_noflip"))]

    # students: both at once, same epochs; per-sample GPU time re-scaled by the teacher's measured/probed ratio
    times = _epoch_times(RUNS / "teacher_hg8_256")
    measured = N_TRAIN / (sorted(times)[len(times) // 2]) if times else r_teacher
    eff = min(1.3, max(0.4, measured / p["teacher_train_img_s"]))
    per_sample = (1 / p["teacher_fwd_img_s"] + 1 / p["student_train_img_s"]) / eff
    r_fpd = min(1 / per_sample, p["loader_img_s"] / 2)
    student_epoch = N_TRAIN / r_fpd + 2 * N_VAL / p["student_fwd_img_s"] + 3.0
    t_students = deadline - time.monotonic() - reserve
    e_students = max(2, min(80, int((t_students - startup) / student_epoch)))
    log(f"plan: teacher ran at {measured:.0f} img/s (x{eff:.2f} of the probe); students {e_students} epochs of "
        f"~{student_epoch:.1f} s in {t_students:.0f} s")
    best_teacher = RUNS / "teacher_hg8_256" / "best.pt"
    fpd = _train("fpd_hg4_128", e_students, teacher=best_teacher)
    gt = _train("student_hg4_128", e_students)
    for proc, name in ((fpd, "fpd_hg4_128"), (gt, "student_hg4_128")):
        _wait(proc, name, deadline - reserve + 5)
    for name in ("fpd_hg4_128", "student_hg4_128"):
        evals += [_evaluate(RUNS / name / "best.pt", RUNS / f"{name}_test{s}.json", flip=f)
                  for f, s in ((True, ""), (False, "_noflip"))]
    for name in ("fpd_hg4_128", "student_hg4_128"):
        exports += _export(RUNS / name, name)
    for proc in evals:
        try:
            proc.wait(timeout=max(deadline - time.monotonic() - 8, 1))
        except subprocess.TimeoutExpired:
            proc.kill()
    for f in sorted(RUNS.glob("*_test*.json")):
        log(f"{f.stem}: PCK@0.2 {json.loads(f.read_text())['pck']['mean']:.1f}")
    _pack_results()
    log(f"done: {[x.name for x in sorted(OUT.iterdir())]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setting", choices=["paper256", "gpu128"], default="paper256",
                    help="paper256: 256 input, configs/paper256; gpu128: 128 input, configs/experiments/gpu128")
    ap.add_argument("--quick-probe", action="store_true", help="probe fp32 + channels_last only (1.5 s a rate)")
    ap.add_argument("steps", nargs="+", choices=["merge", "probe", "sweep", "smoke", "run"])
    ap.add_argument("--budget", type=float, default=560.0, help="seconds from the script's start to its end")
    ap.add_argument("--teacher-share", type=float, default=0.55, help="share of the training time for the teacher")
    args = ap.parse_args()
    configure(args.setting)
    global PROBE_MODES
    if args.quick_probe:
        PROBE_MODES = ("fp32_cl",)
    for step in args.steps:
        if step == "merge":
            merge()
        elif step == "probe":
            probe(seconds=1.5 if args.quick_probe else 2.0)
        elif step == "sweep":
            sweep()
        elif step == "smoke":
            smoke()
        else:
            run(args.budget, args.teacher_share)


if __name__ == "__main__":
    main()

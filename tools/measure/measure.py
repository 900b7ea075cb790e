#!/usr/bin/env python3
"""Measure the GPU memory of real training and inference steps, as truth records.

Builds each model from its config.json with random weights (nothing is
downloaded), runs a job matrix - full / LoRA (PEFT), gradient checkpointing
on / off, sdpa / eager attention, several sequence lengths and models - for N
real steps on the GPU, and writes for every job three records in the format of
../shared/truth/pytorch.jsonl: torch.cuda.max_memory_allocated,
torch.cuda.max_memory_reserved and nvidia-smi's used memory. Each record
carries the script's exact settings and the vramfit command that expresses
the job, so bench/accuracy takes a recorded file as it is (tools/measure/README.md).

    python3 tools/measure/measure.py --dry-run            # the jobs, no torch needed
    python3 tools/measure/measure.py --out runs.jsonl     # measure (needs a CUDA GPU)

Only the standard library is imported at module level: torch, transformers,
peft and bitsandbytes are imported inside the measuring path, so argument
parsing, the matrix, the record format and --dry-run work without them
(tests/tools/measure_test.py checks it). Every job runs in its own process, so
the CUDA context, the caching allocator and nvidia-smi's reading belong to
that job alone. Nothing is estimated here: a job that fails writes no record.
"""

import argparse
import datetime
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CATALOG_FILES = (REPO / "data" / "models" / "core.json", REPO / "data" / "models" / "extra.json")

# One small and one ~1B model from the built-in catalog (their config.json is
# stored there verbatim, with its source).
DEFAULT_MODELS = ("HuggingFaceTB/SmolLM2-135M", "meta-llama/Llama-3.2-1B")

METHODS = ("full", "lora")
GRAD_CKPT = ("none", "full")
ATTNS = ("sdpa", "eager")
PRECISIONS = ("bf16-mixed", "bf16", "fp32")
OPTIMIZERS = ("adamw", "adamw-8bit")
INFER_DTYPES = ("bf16", "fp16", "fp32")
TASKS = ("train", "infer")

# Every field of a ../shared/truth/pytorch.jsonl record, in that file's order
# (../shared/truth/README.md).
TRUTH_FIELDS = (
    "id", "source", "source_section", "model", "params", "task", "precision", "quantization",
    "optimizer", "micro_batch_size", "grad_accum", "seq_len", "prompt_tokens", "new_tokens",
    "grad_checkpointing", "attn_impl", "lora", "distributed", "num_gpus", "gpu", "versions",
    "measured_value", "measured_unit", "metric", "measured_what", "notes", "kind",
    "value_gib_normalized", "normalization_note",
)

# The three figures of a job: (id suffix, vramfit compare, metric text).
METRICS = (
    ("alloc", "allocated",
     "torch.cuda.max_memory_allocated() after the last step (peak over the whole process: model "
     "build, every step)"),
    ("resv", "reserved",
     "torch.cuda.max_memory_reserved() after the last step (the caching allocator's peak)"),
    ("smi", "total",
     "nvidia-smi --query-gpu=memory.used after the last step, less the reading before this process "
     "touched CUDA (so: this process's CUDA context + reserved + non-torch memory; the caching "
     "allocator keeps its peak reservation, so this is the peak); MiB resolution"),
)

GIB = float(1 << 30)
MIB = 1 << 20


class UsageError(Exception):
    """A bad argument: one line, exit 2."""


@dataclass(frozen=True)
class Job:
    """One measured job. Fields not used by its task keep their defaults."""

    task: str  # "train" | "infer"
    model: str  # catalog id, or a path to a config.json
    attn: str = "sdpa"
    batch: int = 1
    # train
    method: str = "full"
    grad_ckpt: str = "none"
    precision: str = "bf16-mixed"
    optimizer: str = "adamw"
    seq: int = 0
    steps: int = 3
    lora_rank: int = 16
    lora_targets: str = "all-linear"
    # infer
    dtype: str = "bf16"
    prompt: int = 0
    new: int = 0

    def name(self):
        base = Path(self.model).parent.name if self.model.endswith(".json") else self.model
        short = re.sub(r"[^A-Za-z0-9.]+", "-", base.rstrip("/").split("/")[-1]).lower()
        if self.task == "infer":
            return f"{short}.infer.{self.dtype}.{self.attn}.b{self.batch}.p{self.prompt}n{self.new}"
        method = self.method if self.method == "full" else f"lora-r{self.lora_rank}-{self.lora_targets}"
        ckpt = "ckpt" if self.grad_ckpt == "full" else "nockpt"
        return (f"{short}.{method}.{ckpt}.{self.attn}.{self.precision}.{self.optimizer}"
                f".b{self.batch}.s{self.seq}")

    def settings(self):
        """The settings that apply to the job's task, as a dict."""
        train_only = {"method", "grad_ckpt", "precision", "optimizer", "seq", "steps", "lora_rank",
                      "lora_targets"}
        infer_only = {"dtype", "prompt", "new"}
        lora_only = {"lora_rank", "lora_targets"}
        out = {}
        for f in fields(self):
            if self.task == "train" and f.name in infer_only:
                continue
            if self.task == "infer" and f.name in train_only:
                continue
            if self.task == "train" and self.method != "lora" and f.name in lora_only:
                continue
            out[f.name] = getattr(self, f.name)
        return out


# --- Arguments and the job matrix.

def _list_of(allowed, what):
    def parse(text):
        items = [x.strip() for x in text.split(",") if x.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{what}: empty list")
        for x in items:
            if x not in allowed:
                raise argparse.ArgumentTypeError(
                    f"{what}: '{x}' is not one of {', '.join(allowed)}")
        return items
    return parse


def _counts(what, lo=1):
    def parse(text):
        out = []
        for x in text.split(","):
            x = x.strip().lower()
            mult = 1
            if x.endswith("k"):
                x, mult = x[:-1], 1024
            if not x.isdigit() or int(x) * mult < lo:
                raise argparse.ArgumentTypeError(f"{what}: '{x}' is not a whole number >= {lo}")
            out.append(int(x) * mult)
        return out
    return parse


def _lora_targets(text):
    if text in ("all-linear", "attn", "mlp"):
        return text
    names = [t.strip() for t in text.split(",")]
    known = ("q", "k", "v", "o", "gate", "up", "down")
    for t in names:
        if t not in known:
            raise argparse.ArgumentTypeError(
                f"--lora-targets: '{t}' is not all-linear, attn, mlp or one of {','.join(known)}")
    return ",".join(names)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    p = _Parser(
        prog="measure.py",
        description="Measure GPU memory of training / inference jobs built from config.json with "
                    "random weights; write truth records (tools/measure/README.md).")
    p.add_argument("--model", action="append", metavar="ID|CONFIG",
                   help="a catalog model id (its config.json is read from data/models/*.json) or a "
                        "path to a config.json; repeatable (default: %s)" % ", ".join(DEFAULT_MODELS))
    p.add_argument("--tasks", type=_list_of(TASKS, "--tasks"), default=["train", "infer"],
                   help="train, infer or both (train,infer)")
    p.add_argument("--method", type=_list_of(METHODS, "--method"), default=["full", "lora"],
                   help="training methods: full, lora (PEFT) (full,lora)")
    p.add_argument("--grad-ckpt", type=_list_of(GRAD_CKPT, "--grad-ckpt"), default=["none", "full"],
                   help="gradient checkpointing: none, full (HF gradient_checkpointing_enable) (none,full)")
    p.add_argument("--attn", type=_list_of(ATTNS, "--attn"), default=["sdpa"],
                   help="attention kernel (attn_implementation): sdpa, eager (sdpa)")
    p.add_argument("--seq", type=_counts("--seq"), default=[512, 2048],
                   help="training tokens per sample, a list (512,2048)")
    p.add_argument("--batch", type=_counts("--batch"), default=[2],
                   help="training micro-batch, a list (2)")
    p.add_argument("--precision", type=_list_of(PRECISIONS, "--precision"), default=["bf16-mixed"],
                   help="bf16-mixed (full: fp32 weights under torch.autocast bf16, as HF Trainer --bf16 "
                        "over an fp32 model; lora: bf16 base, fp32 adapters, autocast), bf16 (pure), "
                        "fp32 (bf16-mixed)")
    p.add_argument("--optimizer", type=_list_of(OPTIMIZERS, "--optimizer"), default=["adamw"],
                   help="torch AdamW (foreach), or bitsandbytes AdamW8bit (adamw)")
    p.add_argument("--steps", type=int, default=3,
                   help="training steps per job, at least 2: AdamW creates its states in the first "
                        "step, so the peak comes in the second or later (3)")
    p.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (16)")
    p.add_argument("--lora-targets", type=_lora_targets, default="all-linear",
                   help="all-linear (PEFT's), attn, mlp, or q,k,v,o,gate,up,down (all-linear)")
    p.add_argument("--infer-dtype", type=_list_of(INFER_DTYPES, "--infer-dtype"), default=["bf16"],
                   help="inference weight dtype (bf16)")
    p.add_argument("--infer-batch", type=_counts("--infer-batch"), default=[1],
                   help="generate() batch, a list (1)")
    p.add_argument("--prompt", type=_counts("--prompt"), default=[1024],
                   help="prompt tokens, a list (1024)")
    p.add_argument("--new", type=_counts("--new"), default=[128],
                   help="new tokens generated (greedy, min_new_tokens = max_new_tokens), a list (128)")
    p.add_argument("--gpu-name", default="H100-80GB",
                   help="--dry-run only: the GPU named in the vramfit commands shown (a measured "
                        "record names the GPU torch reports) (H100-80GB)")
    p.add_argument("--id-prefix", default="m",
                   help="prefix of every record id, to keep ids unique across runs in one file (m)")
    p.add_argument("--out", metavar="FILE",
                   help="append the records to FILE (JSON lines); default stdout")
    p.add_argument("--job-timeout", type=int, default=180, help="seconds per job (180)")
    p.add_argument("--time-budget", type=int, default=0, metavar="S",
                   help="start no job after S seconds; the jobs left are listed, not run (0: none)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the jobs, their vramfit commands and the record shape; no torch, no GPU")
    p.add_argument("--run-one", metavar="JOB_JSON", help=argparse.SUPPRESS)
    return p


def parse_args(argv):
    """Parses argv. Raises UsageError (one line) on a bad value."""
    a = build_parser().parse_args(argv)
    if a.steps < 2:
        raise UsageError("--steps: at least 2 (AdamW creates its states in the first step; the "
                         "peak comes in the second or later)")
    if a.lora_rank < 1:
        raise UsageError("--lora-rank: at least 1")
    if a.time_budget < 0:
        raise UsageError("--time-budget: 0 (none) or a number of seconds")
    if a.job_timeout < 1:
        raise UsageError("--job-timeout: at least 1 second")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", a.id_prefix):
        raise UsageError("--id-prefix: letters, digits, '.', '_' and '-' only")
    a.model = a.model or list(DEFAULT_MODELS)
    return a


def expand(a):
    """The job matrix of parsed arguments, in a stable order: every model's
    training jobs (method x grad-ckpt x attn x precision x optimizer x batch x
    seq), then its inference jobs (dtype x attn x batch x prompt x new)."""
    jobs = []
    for model in a.model:
        if "train" in a.tasks:
            for m, c, at, pr, o, b, s in itertools.product(
                    a.method, a.grad_ckpt, a.attn, a.precision, a.optimizer, a.batch, a.seq):
                lora = m == "lora"
                jobs.append(Job(task="train", model=model, method=m, grad_ckpt=c, attn=at,
                                precision=pr, optimizer=o, batch=b, seq=s, steps=a.steps,
                                lora_rank=a.lora_rank if lora else Job.lora_rank,
                                lora_targets=a.lora_targets if lora else Job.lora_targets))
        if "infer" in a.tasks:
            for d, at, b, p, n in itertools.product(a.infer_dtype, a.attn, a.infer_batch, a.prompt,
                                                     a.new):
                jobs.append(Job(task="infer", model=model, dtype=d, attn=at, batch=b, prompt=p, new=n))
    names = [j.name() for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"the matrix lists a job twice: {dup[0]} (a repeated value in a list?)")
    return jobs


# --- The model's config.json.

def load_config(model):
    """The config.json dict for a catalog id or a config.json path, and the
    vramfit MODEL argument that names the same architecture."""
    if model.endswith(".json") or Path(model).is_file() or Path(model, "config.json").is_file():
        path = Path(model, "config.json") if Path(model).is_dir() else Path(model)
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"--model {model}: cannot read a config.json ({e})")
        if not isinstance(cfg, dict) or "model_type" not in cfg:
            raise UsageError(f"--model {model}: not a config.json (no model_type)")
        return cfg, str(path.resolve())
    want = model.lower()
    for f in CATALOG_FILES:
        if not f.is_file():
            continue
        for entry in json.loads(f.read_text()).get("models", []):
            ids = [entry.get("id", "")] + entry.get("also", []) + entry.get("aliases", [])
            if want in (i.lower() for i in ids):
                cfg = entry.get("config")
                if not isinstance(cfg, dict) or "model_type" not in cfg:
                    raise UsageError(f"--model {model}: the catalog entry has no config.json")
                return dict(cfg), entry["id"]
    raise UsageError(f"--model {model}: not a catalog id (data/models/*.json) nor a config.json path")


# --- vramfit's side of a job.

LORA_TARGET_MODULES = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
                       "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}


def vramfit_args(job, gpu, transformers_version=None):
    """The job as bench/accuracy_cases.json args (vramfit flags, '_' for '-')."""
    if job.task == "train":
        args = {"method": job.method, "precision": job.precision, "optimizer": job.optimizer,
                "batch": job.batch, "seq": job.seq, "grad_ckpt": job.grad_ckpt, "attn": job.attn}
        if job.method == "lora":
            args["lora_rank"] = job.lora_rank
            args["lora_targets"] = job.lora_targets
    else:
        args = {"dtype": job.dtype, "batch": job.batch, "prompt": job.prompt, "new": job.new,
                "attn": job.attn}
        # vramfit models transformers 4.x releases (--transformers X.Y).
        m = re.match(r"(4\.\d+)", transformers_version or "")
        if m:
            args["transformers"] = m.group(1)
    args["gpu"] = gpu
    return args


def vramfit_command(model_arg, mode, args):
    """The vramfit command line of the args (JSON output)."""
    words = ["vramfit", mode, model_arg]
    for k, v in args.items():
        words += ["--" + k.replace("_", "-"), str(v)]
    return " ".join(shlex.quote(w) for w in words + ["--json"])


# --- Records.

def describe_precision(job):
    if job.task == "infer":
        return f"{job.dtype} (weights and compute)"
    if job.precision == "fp32":
        return "fp32 (weights, gradients, AdamW states)"
    if job.precision == "bf16":
        return ("bf16 pure (bf16 weights and gradients, optimizer states like the parameter; LoRA "
                "adapters fp32 as PEFT casts them)")
    if job.method == "lora":
        return "bf16-mixed: bf16 frozen base, fp32 LoRA adapters (PEFT autocast_adapter_dtype), torch.autocast bf16"
    return "bf16-mixed: fp32 weights, gradients and AdamW states under torch.autocast bf16 (HF Trainer --bf16 over an fp32 model)"


def make_records(job, meas, model_arg, measure_command, id_prefix="m"):
    """The three truth records (allocated, reserved, nvidia-smi) of one
    measured job. `meas` is what run_job returned."""
    env = meas["env"]
    gpu = env["gpu_name"]
    args = vramfit_args(job, gpu, env.get("transformers"))
    mode = "train" if job.task == "train" else "infer"
    versions = ", ".join(f"{k} {env[k]}" for k in ("torch", "cuda", "transformers", "peft",
                                                     "bitsandbytes", "driver") if env.get(k))
    lora = None
    if job.task == "train" and job.method == "lora":
        lora = (f"PEFT LoRA r={job.lora_rank}, lora_alpha={2 * job.lora_rank}, dropout 0, targets "
                f"{job.lora_targets} ({meas['trainable_params']} trainable)")
    base = {
        "source": ("tools/measure/measure.py (vramfit): random weights built from config.json (no "
                   f"download), {job.steps if job.task == 'train' else 1} real step(s) on "
                   f"{gpu}, {env['date']}"),
        "source_section": job.name(),
        "model": model_arg,
        "params": str(meas["params"]),
        "task": {"train": "full_ft" if job.method == "full" else "lora"}.get(job.task, "inference"),
        "precision": describe_precision(job),
        "quantization": None,
        "optimizer": None if job.task == "infer" else (
            "torch.optim.AdamW (foreach, lr 1e-5)" if job.optimizer == "adamw"
            else "bitsandbytes.optim.AdamW8bit (lr 1e-5)"),
        "micro_batch_size": job.batch,
        "grad_accum": 1 if job.task == "train" else None,
        "seq_len": job.seq if job.task == "train" else None,
        "prompt_tokens": job.prompt if job.task == "infer" else None,
        "new_tokens": job.new if job.task == "infer" else None,
        "grad_checkpointing": (job.grad_ckpt == "full") if job.task == "train" else None,
        "attn_impl": meas["attn_impl"],
        "lora": lora,
        "distributed": None,
        "num_gpus": 1,
        "gpu": f"{gpu} (nvidia-smi: {env['gpu_total_mib']} MiB total)",
        "versions": versions,
    }
    notes = ("random input ids, labels = input ids (transformers' own loss), use_cache False; "
             "model built on the GPU with random init; one process per job" if job.task == "train"
             else "random prompt ids, greedy generate() with min_new_tokens = max_new_tokens "
                  "(no early stop); one process per job")
    records = []
    for suffix, compare, metric in METRICS:
        value = {"alloc": meas["max_allocated"], "resv": meas["max_reserved"],
                 "smi": meas["smi_used_bytes"]}[suffix]
        if value is None:
            continue  # nvidia-smi absent: no reading, no record
        r = dict(base)
        r.update({
            "id": f"{id_prefix}-{job.name()}-{suffix}",
            "measured_value": int(value),
            "measured_unit": "bytes",
            "metric": metric,
            "measured_what": ("peak over model build + %d training steps" % job.steps
                              if job.task == "train" else "peak over model build + generate()"),
            "notes": notes,
            "kind": "peak_memory",
            "value_gib_normalized": round(value / GIB, 6),
            "normalization_note": "bytes -> GiB (2^30 B)",
        })
        rec = {k: r[k] for k in TRUTH_FIELDS}
        rec["vramfit"] = {"model": model_arg, "mode": mode, "compare": compare, "args": args,
                          "command": vramfit_command(model_arg, mode, args)}
        rec["measure"] = {"settings": job.settings(), "command": measure_command,
                          "detail": meas.get("detail", {})}
        records.append(rec)
    return records


def record_template(job, model_arg, gpu):
    """The shape of a job's record, with every measured field null."""
    env = {"gpu_name": gpu, "gpu_total_mib": "<total>", "date": "<date>"}
    fake = {"env": env, "max_allocated": 0, "max_reserved": 0, "smi_used_bytes": 0,
            "params": None, "trainable_params": None, "attn_impl": job.attn}
    rec = make_records(job, fake, model_arg, "<measure.py command>")[0]
    for k in ("measured_value", "value_gib_normalized", "params", "versions"):
        rec[k] = None
    return rec


# --- Measuring (torch, transformers, peft imported here only).

def _smi(query, index=None):
    """nvidia-smi --query-gpu rows (list of lists of str), or None."""
    cmd = ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"]
    if index is not None:
        cmd += ["-i", str(index)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines() if line.strip()]


def _smi_index():
    """nvidia-smi's index of the GPU this process uses (cuda:0)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    rows = _smi("index,uuid") or []
    if visible.isdigit():
        return int(visible)
    for idx, uuid in rows:
        if visible and visible in uuid:
            return int(idx)
    return int(rows[0][0]) if rows else None


def _smi_used_mib(index):
    rows = _smi("memory.used", index)
    return int(rows[0][0]) if rows else None


class _SmiSampler(threading.Thread):
    """Polls nvidia-smi's used memory (a cross-check of the after-reading)."""

    def __init__(self, index):
        super().__init__(daemon=True)
        self.index, self.peak, self.stop = index, None, threading.Event()

    def run(self):
        while not self.stop.is_set():
            v = _smi_used_mib(self.index)
            if v is not None:
                self.peak = v if self.peak is None else max(self.peak, v)
            self.stop.wait(0.2)


def _versions(torch):
    env = {"torch": torch.__version__, "cuda": torch.version.cuda}
    for name in ("transformers", "peft", "bitsandbytes", "accelerate"):
        mod = sys.modules.get(name)
        if mod is not None:
            env[name] = getattr(mod, "__version__", "?")
    return env


def _build_model(job, cfg, torch):
    import transformers

    cfg = dict(cfg)
    model_type = cfg.pop("model_type")
    for k in ("torch_dtype", "dtype", "transformers_version", "_name_or_path"):
        cfg.pop(k, None)
    config = transformers.AutoConfig.for_model(model_type, **cfg)
    config.use_cache = job.task == "infer"
    if job.task == "infer":
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[job.dtype]
    elif job.precision == "fp32" or (job.precision == "bf16-mixed" and job.method == "full"):
        dtype = torch.float32
    else:
        dtype = torch.bfloat16
    with torch.device("cuda"):
        try:  # transformers >= 4.56 names it dtype; older releases torch_dtype
            model = transformers.AutoModelForCausalLM.from_config(
                config, dtype=dtype, attn_implementation=job.attn)
        except TypeError:
            model = transformers.AutoModelForCausalLM.from_config(
                config, torch_dtype=dtype, attn_implementation=job.attn)
    if next(model.parameters()).dtype != dtype:
        model = model.to(dtype)
    return model


def _train(job, model, torch, detail):
    if job.grad_ckpt == "full":
        model.gradient_checkpointing_enable()  # transformers' default (reentrant) checkpointing
    if job.method == "lora":
        import peft

        if job.lora_targets == "all-linear":
            targets = "all-linear"
        else:
            short = {"attn": "q,k,v,o", "mlp": "gate,up,down"}.get(job.lora_targets, job.lora_targets)
            targets = [LORA_TARGET_MODULES[t] for t in short.split(",")]
        lcfg = peft.LoraConfig(r=job.lora_rank, lora_alpha=2 * job.lora_rank, lora_dropout=0.0,
                               target_modules=targets, task_type="CAUSAL_LM")
        if job.grad_ckpt == "full":
            model.enable_input_require_grads()  # reentrant checkpointing over a frozen embedding
        model = peft.get_peft_model(model, lcfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    detail["trainable_params"] = sum(p.numel() for p in params)
    if job.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=1e-5)
    else:
        import bitsandbytes

        opt = bitsandbytes.optim.AdamW8bit(params, lr=1e-5)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (job.batch, job.seq), device="cuda")
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if job.precision == "bf16-mixed"
                else torch.autocast("cuda", enabled=False))
    per_step = []
    for _ in range(job.steps):
        with autocast:
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        per_step.append(torch.cuda.max_memory_allocated())
    detail["allocated_peak_after_each_step"] = per_step
    detail["loss_last"] = float(loss.detach())
    return model


def _infer(job, model, torch, detail):
    model.eval()
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (job.batch, job.prompt), device="cuda")
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=job.new, min_new_tokens=job.new, do_sample=False,
                             pad_token_id=0)
    torch.cuda.synchronize()
    detail["generated_tokens"] = int(out.shape[1] - job.prompt)
    if detail["generated_tokens"] != job.new:
        raise RuntimeError(f"generate() made {detail['generated_tokens']} tokens, not {job.new}")


def run_job(job):
    """Measures one job in this process. Returns the measurement dict."""
    t0 = time.time()
    index = _smi_index()
    used_before = _smi_used_mib(index)  # before this process creates its CUDA context
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU visible to torch")
    cfg, _ = load_config(job.model)
    torch.manual_seed(0)
    sampler = _SmiSampler(index)
    sampler.start()
    detail = {}
    model = _build_model(job, cfg, torch)
    params = sum(p.numel() for p in model.parameters())
    if job.task == "train":
        model = _train(job, model, torch, detail)
    else:
        _infer(job, model, torch, detail)
    torch.cuda.synchronize()
    max_alloc = torch.cuda.max_memory_allocated()
    max_resv = torch.cuda.max_memory_reserved()
    detail["reserved_after_bytes"] = torch.cuda.memory_reserved()
    used_after = _smi_used_mib(index)
    sampler.stop.set()
    sampler.join(timeout=5)
    props = torch.cuda.get_device_properties(0)
    env = _versions(torch)
    driver = _smi("driver_version,memory.total", index)
    env.update({
        "gpu_name": torch.cuda.get_device_name(0),
        "gpu_total_mib": int(driver[0][1]) if driver else props.total_memory // MIB,
        "driver": driver[0][0] if driver else None,
        "date": datetime.date.today().isoformat(),
    })
    detail.update({"smi_index": index, "smi_used_before_mib": used_before,
                   "smi_used_after_mib": used_after, "smi_used_peak_sampled_mib": sampler.peak,
                   "elapsed_s": round(time.time() - t0, 1), "seed": 0})
    smi_bytes = None
    if used_before is not None and used_after is not None:
        smi_bytes = (used_after - used_before) * MIB
    attn = getattr(getattr(model, "config", None), "_attn_implementation", None) or job.attn
    return {"env": env, "max_allocated": max_alloc, "max_reserved": max_resv,
            "smi_used_bytes": smi_bytes, "params": params,
            "trainable_params": detail.get("trainable_params"), "attn_impl": attn, "detail": detail}


# --- Driver.

RESULT_MARK = "@@measure-result@@ "


def _run_one_main(job_json):
    job = Job(**json.loads(job_json))
    meas = run_job(job)
    print(RESULT_MARK + json.dumps(meas), flush=True)
    return 0


def _measure_all(a, jobs, argv, out):
    command = " ".join(shlex.quote(w) for w in ["python3", "tools/measure/measure.py"] + argv)
    ok = failed = 0
    start = time.time()
    for n, job in enumerate(jobs, 1):
        if a.time_budget and time.time() - start > a.time_budget:
            left = [j.name() for j in jobs[n - 1:]]
            print(f"--time-budget {a.time_budget} s spent: {len(left)} jobs not run: "
                  f"{' '.join(left)}", file=sys.stderr)
            failed += len(left)
            break
        _, model_arg = load_config(job.model)
        print(f"[{n}/{len(jobs)}] {job.name()} ...", file=sys.stderr, flush=True)
        try:
            p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run-one",
                                json.dumps(asdict(job))], capture_output=True, text=True,
                               timeout=a.job_timeout)
        except subprocess.TimeoutExpired:
            print(f"  failed: over --job-timeout {a.job_timeout} s; no record", file=sys.stderr)
            failed += 1
            continue
        lines = [l for l in p.stdout.splitlines() if l.startswith(RESULT_MARK)]
        if p.returncode != 0 or not lines:
            tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"  failed (exit {p.returncode}): {tail}; no record", file=sys.stderr)
            failed += 1
            continue
        meas = json.loads(lines[-1][len(RESULT_MARK):])
        for rec in make_records(job, meas, model_arg, command, a.id_prefix):
            out.write(json.dumps(rec) + "\n")
        out.flush()
        ok += 1
        print(f"  allocated {meas['max_allocated'] / GIB:.3f} GiB, reserved "
              f"{meas['max_reserved'] / GIB:.3f} GiB, nvidia-smi "
              f"{'-' if meas['smi_used_bytes'] is None else '%.3f GiB' % (meas['smi_used_bytes'] / GIB)}"
              f" ({meas['detail']['elapsed_s']} s)", file=sys.stderr, flush=True)
    print(f"{ok} jobs measured, {failed} failed, {time.time() - start:.0f} s", file=sys.stderr)
    return 0 if failed == 0 else 1


def _dry_run(a, jobs, out):
    out.write(json.dumps({"dry_run": True, "jobs": len(jobs)}) + "\n")
    for job in jobs:
        _, model_arg = load_config(job.model)
        args = vramfit_args(job, a.gpu_name)
        mode = "train" if job.task == "train" else "infer"
        out.write(json.dumps({
            "job": job.name(), "settings": job.settings(),
            "records": [f"{a.id_prefix}-{job.name()}-{s}" for s, _, _ in METRICS],
            "vramfit": {"model": model_arg, "mode": mode, "args": args,
                        "command": vramfit_command(model_arg, mode, args)}}) + "\n")
    if jobs:
        _, model_arg = load_config(jobs[0].model)
        out.write(json.dumps({"record_template": record_template(jobs[0], model_arg, a.gpu_name)})
                  + "\n")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        a = parse_args(argv)
        if a.run_one:
            return _run_one_main(a.run_one)
        jobs = expand(a)
        for m in a.model:
            load_config(m)  # a bad --model fails before any job runs
        out = open(a.out, "a") if a.out else sys.stdout
        try:
            return _dry_run(a, jobs, out) if a.dry_run else _measure_all(a, jobs, argv, out)
        finally:
            if a.out:
                out.close()
    except UsageError as e:
        print(f"measure.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

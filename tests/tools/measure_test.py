#!/usr/bin/env python3
"""tools/measure/measure.py without a GPU: argument parsing, the job matrix,
the record format (every field of ../shared/truth/pytorch.jsonl, the vramfit
args accepted by the built binary) and that neither importing the script nor
--dry-run imports torch, transformers or peft.

    measure_test.py --vramfit PATH/TO/vramfit [unittest args]

Measured values in these tests are placeholders fed to the record builder to
check its shape; none is written anywhere (bench/truth gets records only from
a real run on a GPU).
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "measure" / "measure.py"
TRUTH = REPO.parent / "shared" / "truth" / "pytorch.jsonl"
VRAMFIT = None  # --vramfit PATH (read before the tests are defined: skipIf needs it)
if "--vramfit" in sys.argv:
    _i = sys.argv.index("--vramfit")
    VRAMFIT = sys.argv[_i + 1]
    del sys.argv[_i:_i + 2]
HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")


def load_module():
    spec = importlib.util.spec_from_file_location("measure_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


M = load_module()


def blocked_env(tmp):
    """An environment whose torch / transformers / peft raise on import."""
    for name in HEAVY:
        d = Path(tmp, name)
        d.mkdir(exist_ok=True)
        (d / "__init__.py").write_text(f"raise ImportError('{name} imported by the test run')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = tmp + os.pathsep + env.get("PYTHONPATH", "")
    return env


class ImportTest(unittest.TestCase):
    def test_import_pulls_in_no_heavy_module(self):
        code = ("import importlib.util, sys\n"
                f"spec = importlib.util.spec_from_file_location('m', {str(SCRIPT)!r})\n"
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                f"bad = [n for n in {HEAVY!r} if n in sys.modules]\n"
                "print(','.join(bad)); sys.exit(1 if bad else 0)\n")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_dry_run_works_with_torch_unimportable(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], capture_output=True,
                               text=True, env=blocked_env(tmp))
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(lines[0], {"dry_run": True, "jobs": len(lines) - 2})
        self.assertIn("record_template", lines[-1])


class ArgsTest(unittest.TestCase):
    def test_defaults(self):
        a = M.parse_args([])
        self.assertEqual(a.model, list(M.DEFAULT_MODELS))
        self.assertEqual((a.method, a.grad_ckpt, a.attn, a.seq), (["full", "lora"], ["none", "full"],
                                                                   ["sdpa"], [512, 2048]))
        self.assertEqual((a.steps, a.lora_rank, a.lora_targets), (3, 16, "all-linear"))
        self.assertFalse(a.dry_run)

    def test_lists_and_suffixes(self):
        a = M.parse_args(["--seq", "1k,4k", "--attn", "sdpa,eager", "--batch", "1,4",
                          "--lora-targets", "q,v", "--model", "smollm2-135m"])
        self.assertEqual(a.seq, [1024, 4096])
        self.assertEqual(a.attn, ["sdpa", "eager"])
        self.assertEqual(a.batch, [1, 4])
        self.assertEqual(a.lora_targets, "q,v")
        self.assertEqual(a.model, ["smollm2-135m"])

    def test_bad_values_are_one_line_errors(self):
        cases = {
            ("--method", "qlora"): "--method: 'qlora' is not one of full, lora",
            ("--seq", "0"): "--seq: '0' is not a whole number >= 1",
            ("--steps", "1"): "--steps: at least 2",
            ("--lora-targets", "q,x"): "--lora-targets: 'x' is not",
            ("--precision", "fp8"): "--precision: 'fp8' is not one of bf16-mixed, bf16, fp32",
            ("--id-prefix", "a b"): "--id-prefix:",
            ("--frobnicate",): "unrecognized arguments: --frobnicate",
        }
        for argv, want in cases.items():
            with self.subTest(argv=argv):
                with self.assertRaises(M.UsageError) as cm:
                    M.parse_args(list(argv))
                self.assertIn(want, str(cm.exception))
                self.assertNotIn("\n", str(cm.exception))

    def test_cli_exit_code_2(self):
        p = subprocess.run([sys.executable, str(SCRIPT), "--model", "no/such-model", "--dry-run"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.strip(), "measure.py: error: --model no/such-model: not a catalog "
                                           "id (data/models/*.json) nor a config.json path")


class MatrixTest(unittest.TestCase):
    def test_default_matrix(self):
        jobs = M.expand(M.parse_args([]))
        train = [j for j in jobs if j.task == "train"]
        infer = [j for j in jobs if j.task == "infer"]
        # 2 models x 2 methods x 2 checkpointing x 1 attn x 1 precision x 1 optimizer x 1 batch x 2 seq
        self.assertEqual(len(train), 16)
        self.assertEqual(len(infer), 2)  # 2 models x 1 dtype x 1 attn x 1 batch x 1 prompt x 1 new
        self.assertEqual(len({j.name() for j in jobs}), len(jobs))
        self.assertEqual(jobs[0].name(), "smollm2-135m.full.nockpt.sdpa.bf16-mixed.adamw.b2.s512")

    def test_product_of_the_lists(self):
        a = M.parse_args(["--model", "smollm2-135m", "--tasks", "train", "--method", "lora",
                          "--grad-ckpt", "full", "--attn", "sdpa,eager", "--seq", "256,512,1024",
                          "--precision", "bf16,fp32", "--lora-rank", "8"])
        jobs = M.expand(a)
        self.assertEqual(len(jobs), 2 * 3 * 2)
        self.assertTrue(all(j.lora_rank == 8 and j.method == "lora" for j in jobs))

    def test_full_jobs_keep_no_lora_settings(self):
        a = M.parse_args(["--model", "smollm2-135m", "--tasks", "train", "--method", "full",
                          "--lora-rank", "8", "--grad-ckpt", "none", "--seq", "512"])
        (job,) = M.expand(a)
        self.assertNotIn("lora_rank", job.settings())
        self.assertNotIn("lora_rank", M.vramfit_args(job, "H100-80GB"))

    def test_repeated_value_is_refused(self):
        with self.assertRaises(M.UsageError):
            M.expand(M.parse_args(["--seq", "512,512"]))

    def test_config_json_path(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp, "tiny")
            d.mkdir()
            cfg = dict(M.load_config("smollm2-135m")[0])
            (d / "config.json").write_text(json.dumps(cfg))
            got, arg = M.load_config(str(d / "config.json"))
            self.assertEqual(got, cfg)
            self.assertEqual(arg, str((d / "config.json").resolve()))
            self.assertEqual(M.Job(task="infer", model=str(d / "config.json"), prompt=8,
                                   new=2).name(), "tiny.infer.bf16.sdpa.b1.p8n2")

    def test_catalog_config_is_the_catalogs(self):
        # data/models/core.json, SmolLM2-135M: hidden 576, 30 layers, 9 heads / 3 KV heads
        # (its config.json, as the catalog entry cites).
        cfg, arg = M.load_config("HuggingFaceTB/SmolLM2-135M")
        self.assertEqual(arg, "HuggingFaceTB/SmolLM2-135M")
        self.assertEqual((cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
                          cfg["num_key_value_heads"]), (576, 30, 9, 3))


def fake_measurement(job):
    """Placeholder numbers to exercise the record builder (never recorded)."""
    return {"env": {"torch": "2.x", "cuda": "12.x", "transformers": "4.57.1", "peft": "0.x",
                    "driver": "5xx", "gpu_name": "NVIDIA H100 80GB HBM3", "gpu_total_mib": 81559,
                    "date": "2026-01-01"},
            "max_allocated": 3 << 30, "max_reserved": (3 << 30) + (256 << 20),
            "smi_used_bytes": 4 << 30, "params": 134515008, "trainable_params": 1000,
            "attn_impl": job.attn, "detail": {"elapsed_s": 1.0}}


class RecordTest(unittest.TestCase):
    def truth_fields(self):
        with open(TRUTH) as f:
            first = json.loads(f.readline())
        return list(first.keys())

    def records(self):
        a = M.parse_args(["--model", "smollm2-135m", "--lora-targets", "q,v", "--attn", "sdpa,eager"])
        out = []
        for job in M.expand(a):
            _, model_arg = M.load_config(job.model)
            out.append((job, M.make_records(job, fake_measurement(job), model_arg,
                                            "python3 tools/measure/measure.py")))
        return out

    @unittest.skipUnless(TRUTH.is_file(), "../shared/truth/pytorch.jsonl not present")
    def test_fields_match_the_truth_file(self):
        self.assertEqual(list(M.TRUTH_FIELDS), self.truth_fields())

    def test_every_field_and_three_metrics(self):
        for job, recs in self.records():
            with self.subTest(job=job.name()):
                self.assertEqual([r["vramfit"]["compare"] for r in recs],
                                 ["allocated", "reserved", "total"])
                for r in recs:
                    self.assertEqual(list(r)[:len(M.TRUTH_FIELDS)], list(M.TRUTH_FIELDS))
                    self.assertEqual(r["kind"], "peak_memory")
                    self.assertEqual(r["measured_unit"], "bytes")
                    self.assertIsInstance(r["measured_value"], int)
                    self.assertAlmostEqual(r["value_gib_normalized"], r["measured_value"] / 2**30,
                                           places=6)
                    self.assertEqual(r["num_gpus"], 1)
                    self.assertIn("NVIDIA H100 80GB HBM3", r["gpu"])
                    self.assertEqual(r["measure"]["settings"], job.settings())
                    if job.task == "train":
                        self.assertEqual((r["seq_len"], r["micro_batch_size"]), (job.seq, job.batch))
                        self.assertEqual(r["grad_checkpointing"], job.grad_ckpt == "full")
                    else:
                        self.assertEqual((r["prompt_tokens"], r["new_tokens"]), (job.prompt, job.new))
                ids = [r["id"] for r in recs]
                self.assertEqual(len(set(ids)), 3)

    def test_no_smi_reading_no_smi_record(self):
        job = M.expand(M.parse_args(["--model", "smollm2-135m", "--tasks", "infer"]))[0]
        meas = fake_measurement(job)
        meas["smi_used_bytes"] = None
        recs = M.make_records(job, meas, "HuggingFaceTB/SmolLM2-135M", "x")
        self.assertEqual([r["vramfit"]["compare"] for r in recs], ["allocated", "reserved"])

    def test_infer_args_carry_a_4x_transformers_only(self):
        job = M.Job(task="infer", model="smollm2-135m", prompt=16, new=4)
        self.assertEqual(M.vramfit_args(job, "H100-80GB", "4.57.1")["transformers"], "4.57")
        self.assertNotIn("transformers", M.vramfit_args(job, "H100-80GB", "5.0.0"))

    @unittest.skipIf(VRAMFIT is None, "no --vramfit binary given")
    def test_vramfit_takes_every_emitted_command(self):
        # Every job of the default matrix plus eager / LoRA-target / precision variants, on the
        # GPU names torch reports for the H100 and the H200.
        argv = ["--attn", "sdpa,eager", "--precision", "bf16-mixed,bf16,fp32", "--lora-targets",
                "q,k,v,o", "--seq", "512"]
        seen = set()
        for gpu in ("NVIDIA H100 80GB HBM3", "NVIDIA H200"):
            for job in M.expand(M.parse_args(argv)):
                _, model_arg = M.load_config(job.model)
                args = M.vramfit_args(job, gpu, "4.57.1")
                mode = "train" if job.task == "train" else "infer"
                words = [VRAMFIT, mode, model_arg]
                for k, v in args.items():
                    words += ["--" + k.replace("_", "-"), str(v)]
                words.append("--json")
                with self.subTest(cmd=M.vramfit_command(model_arg, mode, args)):
                    p = subprocess.run(words, capture_output=True, text=True)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    doc = json.loads(p.stdout)
                    self.assertEqual(doc["schema"], "vramfit.estimate/1")
                    self.assertEqual(doc["model"]["id"], model_arg)
                    self.assertIsNotNone(doc["devices"][0]["allocated_peak_bytes"])
                seen.add(job.task)
        self.assertEqual(seen, {"train", "infer"})

    def test_dry_run_lists_the_commands(self):
        p = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--model", "smollm2-135m",
                            "--tasks", "infer", "--gpu-name", "RTX-4090"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(lines[1]["vramfit"]["command"],
                         "vramfit infer HuggingFaceTB/SmolLM2-135M --dtype bf16 --batch 1 --prompt "
                         "1024 --new 128 --attn sdpa --gpu RTX-4090 --json")
        template = lines[-1]["record_template"]
        self.assertIsNone(template["measured_value"])  # the shape only, no number
        self.assertEqual(list(template)[:len(M.TRUTH_FIELDS)], list(M.TRUTH_FIELDS))


if __name__ == "__main__":
    unittest.main()

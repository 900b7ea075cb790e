// The engine-log readers (include/vramfit/io/engine_log.h) on real excerpts
// (tests/data/logs/, sources in tests/data/logs/SOURCE.md), exact bytes and
// rounding intervals, and hostile input. Inputs written for an edge case
// no public log shows are named Synthetic*.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "vramfit/io/engine_log.h"

namespace vramfit::io {
namespace {

std::string Fixture(const std::string& rel) {
  std::ifstream in(std::string(VRAMFIT_SOURCE_DIR) + "/tests/data/logs/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << rel;
  return ss.str();
}

const Measured* FindFigure(const EngineLog& log, const std::string& device, const std::string& engine_device,
                           const std::string& engine_name) {
  for (const Measured& m : log.figures) {
    if (m.device == device && m.engine_device == engine_device && m.engine_name == engine_name) return &m;
  }
  return nullptr;
}

std::string Setting(const EngineLog& log, const std::string& name) {
  for (const LogSetting& s : log.settings) {
    if (s.name == name) return s.value;
  }
  return "(none)";
}

TEST(PrintedBytesTest, ExactValueAndRoundingInterval) {
  // llama.cpp prints MiB with %.2f: 448.00 MiB = 448 x 2^20 B exactly, +- 0.005 MiB.
  auto a = ParsePrintedBytes("448.00", 1 << 20);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->bytes.value(), 469762048);
  EXPECT_EQ(a->half_ulp.value(), 5243);  // 0.005 x 1048576 = 5242.88, rounded
  // 0.58 MiB = 608174.08 B -> 608174.
  auto b = ParsePrintedBytes("0.58", 1 << 20);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->bytes.value(), 608174);
  // vLLM's %.4f GiB: 14.9889 GiB = 16094208825.95 B -> 16094208826, +- 0.00005 GiB.
  auto c = ParsePrintedBytes("14.9889", int64_t{1} << 30);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->bytes.value(), 16094208826);
  EXPECT_EQ(c->half_ulp.value(), 53687);
  // Thousands commas, integers, exact bytes.
  auto d = ParsePrintedBytes("1,234", 1);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->bytes.value(), 1234);
  EXPECT_EQ(d->half_ulp.value(), 0);
  auto e = ParsePrintedBytes("-1.05", int64_t{1} << 30);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->bytes.value(), -1127428915);  // -1.05 x 2^30 = -1127428915.2
}

TEST(PrintedBytesTest, HostileNumbers) {
  EXPECT_EQ(ParsePrintedBytes("99999999999999999999", 1).error().message,
            "'99999999999999999999' has more digits than any real figure");
  EXPECT_EQ(ParsePrintedBytes("99999999999", int64_t{1} << 30).error().message,
            "'99999999999' is larger than any device (over 2^53 bytes)");
  EXPECT_FALSE(ParsePrintedBytes("1.2.3", 1).ok());
  EXPECT_FALSE(ParsePrintedBytes("", 1).ok());
  EXPECT_FALSE(ParsePrintedBytes("-", 1).ok());
  EXPECT_FALSE(ParsePrintedBytes("0x10", 1).ok());
}

TEST(StripLogPrefixTest, EveryPrefixSpelling) {
  std::string tag;
  EXPECT_EQ(StripLogPrefix("(EngineCore_DP0 pid=1133552) INFO 10-03 16:22:17 [gpu_worker.py:298] Available KV cache "
                           "memory: 6.51 GiB",
                           &tag),
            "Available KV cache memory: 6.51 GiB");
  EXPECT_EQ(tag, "");
  tag.clear();
  EXPECT_EQ(StripLogPrefix("(Worker_TP1 pid=312) INFO 03-01 11:23:38 [gpu_worker.py:423] x", &tag), "x");
  EXPECT_EQ(tag, "TP1");
  tag.clear();
  EXPECT_EQ(StripLogPrefix("(VllmWorker rank=2 pid=7645) INFO 03-28 12:57:39 [loader.py:447] y", &tag), "y");
  EXPECT_EQ(tag, "TP2");
  tag.clear();
  EXPECT_EQ(StripLogPrefix("[2026-09-12 00:22:48 TP1] Memory pool end. avail mem=7.63 GB", &tag),
            "Memory pool end. avail mem=7.63 GB");
  EXPECT_EQ(tag, "TP1");
  EXPECT_EQ(StripLogPrefix("INFO 03-05 19:36:10 kv_cache_utils.py:527] Maximum concurrency"), "Maximum concurrency");
  EXPECT_EQ(StripLogPrefix("[34m1.14.608.918[0m [32mI [0mllama_context:  CUDA_Host  output buffer size =     0.49 MiB"),
            "llama_context:  CUDA_Host  output buffer size =     0.49 MiB");
  // SyntheticAnsiCrlf: real ESC bytes and a Windows line end.
  EXPECT_EQ(StripLogPrefix("\x1b[34m1.14.608.918\x1b[0m \x1b[32mI \x1b[0mload_tensors: x\r"), "load_tensors: x");
  EXPECT_EQ(StripLogPrefix("qwen3.5-122    | (EngineCore_DP0 pid=246) INFO 03-01 11:23:38 [kv_cache_utils.py:1314] GPU KV "
                           "cache size: 75,168 tokens"),
            "GPU KV cache size: 75,168 tokens");
}

TEST(LlamaCppLogTest, RealServerLogEveryBuffer) {
  auto log = ParseEngineLog(Fixture("llamacpp/qwen3-0.6b-q4km-orin-b5489.log"), "orin.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->format, LogFormat::kLlamaCpp);
  // The log's buffer lines (SOURCE.md: llama-server b5489, Qwen3 0.6B Q4_K_M).
  ASSERT_EQ(log->figures.size(), 5u);
  const Measured* model = FindFigure(*log, "host", "CPU_Mapped", "model buffer");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->component, "weights");
  EXPECT_EQ(model->bytes.value(), 478265999);  // 456.11 MiB = 478265999.36 B
  EXPECT_EQ(model->printed, "456.11 MiB");
  const Measured* kv = FindFigure(*log, "host", "CPU", "KV buffer");
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(kv->bytes.value(), 448 * 1048576);
  const Measured* compute = FindFigure(*log, "gpu0", "CUDA0", "compute buffer");
  ASSERT_NE(compute, nullptr);
  EXPECT_EQ(compute->component, "compute_buffer");
  EXPECT_EQ(compute->bytes.value(), 443463762);  // 422.92 MiB = 443463761.92 B
  const Measured* host_compute = FindFigure(*log, "host", "CUDA_Host", "compute buffer");
  ASSERT_NE(host_compute, nullptr);
  EXPECT_EQ(host_compute->bytes.value(), 12593398);  // 12.01 MiB
  const Measured* out = FindFigure(*log, "host", "CPU", "output buffer");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->component, "output_buffer");
  EXPECT_EQ(out->line, 79);
  // The settings it prints.
  EXPECT_EQ(Setting(*log, "quant"), "Q4_K_M");
  EXPECT_EQ(Setting(*log, "ctx"), "4096");
  EXPECT_EQ(Setting(*log, "batch-size"), "2048");
  EXPECT_EQ(Setting(*log, "ubatch"), "512");
  EXPECT_EQ(Setting(*log, "flash-attn"), "off");
  EXPECT_EQ(Setting(*log, "parallel"), "1");
  EXPECT_EQ(Setting(*log, "gpu-layers"), "0");
  EXPECT_EQ(Setting(*log, "cache-type-k"), "f16");
  EXPECT_EQ(Setting(*log, "cache-type-v"), "f16");
  EXPECT_EQ(Setting(*log, "llamacpp-build"), "b5489");
  EXPECT_EQ(log->kv_capacity_tokens.value_or(0), 4096);  // "(  4096 cells,  28 layers,  1 seqs)"
  EXPECT_EQ(log->arch.value_or(""), "qwen3");
  ASSERT_EQ(log->gpu_names.size(), 1u);
  EXPECT_EQ(log->gpu_names[0], "Orin");
}

// The KV line's cells are per stream: node-llama-cpp 3.21.1 (llama.cpp
// v0.4.0) with 4 sequences prints "(  4096 cells,   6 layers,  4/4 seqs)"
// for 192.00 MiB = 4 streams x 4096 cells x 6 layers x 2048 B (LFM2-1.2B),
// so the capacity is 16384 tokens.
TEST(LlamaCppLogTest, KvCapacityCountsEveryStream) {
  auto np4 = io::ParseEngineLog(Fixture("llamacpp/lfm2-1.2b-f16-cpu-np4-node-llama-cpp-3.21.1.log"), "np4.log");
  ASSERT_TRUE(np4.ok()) << np4.error().message;
  EXPECT_EQ(np4->kv_capacity_tokens.value_or(0), 4 * 4096);
  auto np1 = io::ParseEngineLog(Fixture("llamacpp/lfm2-1.2b-f16-cpu-np1-node-llama-cpp-3.21.1.log"), "np1.log");
  ASSERT_TRUE(np1.ok());
  EXPECT_EQ(np1->kv_capacity_tokens.value_or(0), 4096);
}

TEST(LlamaCppLogTest, TruncatedLogYieldsWhatItHolds) {
  std::string text = Fixture("llamacpp/qwen3-0.6b-q4km-orin-b5489.log");
  text.resize(text.find("llama_kv_cache_unified:        CPU KV") + 30);  // cut mid-line
  auto log = ParseEngineLog(text, "cut.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->figures.size(), 2u);  // the model and output buffers before the cut
  EXPECT_EQ(Setting(*log, "ctx"), "4096");
}

TEST(LlamaCppLogTest, MemoryBreakdownBothSpellings) {
  auto a = ParseEngineLog(Fixture("llamacpp/memory-breakdown-pr15860.log"), "a.log");
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_EQ(a->breakdown.size(), 4u);
  EXPECT_EQ(a->breakdown[0].device, "CUDA0 (RTX 4090)");
  EXPECT_EQ(a->breakdown[0].vramfit_device, "gpu0");
  EXPECT_EQ(a->breakdown[0].total_mib.value_or(0), 24080);
  EXPECT_EQ(a->breakdown[0].self_mib.value_or(0), 14193);
  EXPECT_EQ(a->breakdown[0].compute_mib.value_or(0), 985);
  EXPECT_EQ(a->breakdown[0].unaccounted_mib.value_or(0), 451);
  EXPECT_EQ(a->breakdown[3].vramfit_device, "host");
  EXPECT_EQ(a->breakdown[3].self_mib.value_or(0), 72);
  EXPECT_EQ(a->breakdown[3].context_mib.value_or(0), 57);

  auto b = ParseEngineLog(Fixture("llamacpp/memory-breakdown-ollama17482.log"), "b.log");
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_EQ(b->breakdown.size(), 2u);
  EXPECT_EQ(b->breakdown[0].unaccounted_mib.value_or(0), -15681);
  EXPECT_EQ(b->breakdown[1].device, "Host");
  EXPECT_FALSE(b->breakdown[1].total_mib.has_value());
  EXPECT_EQ(b->breakdown[1].model_mib.value_or(0), 682);

  auto c = ParseEngineLog(Fixture("llamacpp/memory-breakdown-underflow-issue19437.log"), "c.log");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->breakdown.size(), 1u);
  EXPECT_EQ(c->breakdown[0].unaccounted_mib.value_or(0), 17592186036877);
}

TEST(LlamaCppLogTest, TimestampedKvCacheSpelling) {
  auto log = ParseEngineLog(Fixture("llamacpp/dsv4-timestamps-ansi-issue27680.log"), "dsv4.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->figures.size(), 2u);
  EXPECT_EQ(log->figures[0].engine_device, "CUDA_Host");
  EXPECT_EQ(log->figures[0].component, "output_buffer");
  EXPECT_EQ(log->figures[1].device, "gpu0");
  EXPECT_EQ(log->figures[1].bytes.value(), 191627264);  // 182.75 MiB exactly
  EXPECT_EQ(Setting(*log, "cache-type-k"), "bf16");
  EXPECT_EQ(log->kv_capacity_tokens.value_or(0), 64000);  // the non-SWA cache's cells
}

TEST(LlamaCppLogTest, OlderSpellings) {
  auto log = ParseEngineLog(Fixture("llamacpp/old-spelling-ik-pr237.log"), "old.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->figures.size(), 1u);
  EXPECT_EQ(log->figures[0].device, "gpu14");
  EXPECT_EQ(log->figures[0].component, "weights");
  EXPECT_EQ(log->figures[0].bytes.value(), 13315793224);  // 12698.93 MiB = 13315793223.68 B
  EXPECT_EQ(Setting(*log, "ctx"), "163840");
  EXPECT_EQ(Setting(*log, "ubatch"), "1024");
  EXPECT_EQ(Setting(*log, "flash-attn"), "off");
}

TEST(VllmLogTest, ConfigLines) {
  auto log = ParseVllmLog(Fixture("vllm/v1-config-lines-ramalama912-pr29137.log"), "cfg.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->model.value_or(""), "unsloth/Qwen3-0.6B-GGUF:IQ1_S");  // 'model', not 'model_tag'
  EXPECT_EQ(Setting(*log, "dtype"), "bf16");
  EXPECT_EQ(Setting(*log, "max-model-len"), "32768");
  EXPECT_EQ(Setting(*log, "tp"), "1");
  EXPECT_EQ(Setting(*log, "enforce-eager"), "false");
  EXPECT_EQ(Setting(*log, "quant"), "(none)");     // quantization=None
  EXPECT_EQ(Setting(*log, "kv-dtype"), "(none)");  // kv_cache_dtype=auto
  EXPECT_EQ(log->notes.front(), "vLLM V1 engine");
}

TEST(VllmLogTest, V1LinesWithPrefixes) {
  auto log = ParseEngineLog(Fixture("vllm/v1-qwen3-14b-lmcache.log"), "v1.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->format, LogFormat::kVllm);
  ASSERT_EQ(log->figures.size(), 1u);
  EXPECT_EQ(log->figures[0].component, "kv_cache");
  EXPECT_EQ(log->figures[0].device, "gpu0");
  EXPECT_EQ(log->figures[0].bytes.value(), 6990059274);  // 6.51 GiB = 6990059274.24 B
  EXPECT_EQ(log->kv_capacity_tokens.value_or(0), 42656);
  EXPECT_DOUBLE_EQ(log->max_concurrency.value_or(0), 1.30);
  EXPECT_EQ(Setting(*log, "max-model-len"), "32768");
}

TEST(VllmLogTest, V0ProfilerAndBlocks) {
  auto log = ParseEngineLog(Fixture("vllm/v0-llama3.1-8b-instruct-rtx3090.log"), "v0.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->figures.size(), 4u);
  EXPECT_EQ(log->figures[0].component, "weights");
  EXPECT_EQ(log->figures[0].bytes.value(), 16094101452);  // 14.9888 GB (2^30) = 16094101451.6 B
  EXPECT_EQ(log->figures[1].component, "non_torch");
  EXPECT_EQ(log->figures[1].bytes.value(), 375809638);  // 0.35 GiB = 375809638.4 B
  EXPECT_EQ(log->figures[2].component, "kv_cache");
  EXPECT_EQ(log->figures[3].component, "peak_torch_memory");
  EXPECT_FALSE(log->figures[3].has_counterpart);
  EXPECT_EQ(log->kv_capacity_tokens.value_or(0), 1952 * 16);  // default block_size 16
  EXPECT_EQ(Setting(*log, "gpu-mem-util"), "0.90");
  EXPECT_EQ(Setting(*log, "max-model-len"), "20000");
}

TEST(VllmLogTest, RepeatedRanksCountOnce) {
  auto log = ParseEngineLog(Fixture("vllm/v0-profiler-workers-pr14447.log"), "pr.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->figures.size(), 4u);  // weights, non_torch, activations, kv_cache once
  EXPECT_EQ(log->figures[0].component, "weights");
  EXPECT_EQ(log->figures[2].component, "activations");
  EXPECT_EQ(log->figures[3].bytes.value(), 1685774664);  // 1.57 GiB = 1685774663.68 B
  EXPECT_EQ(Setting(*log, "gpu-mem-util"), "0.99");
}

TEST(VllmLogTest, CudaGraphs) {
  auto log = ParseEngineLog(Fixture("vllm/v1-graphs-issue14286.log"), "g.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->figures.size(), 1u);
  EXPECT_EQ(log->figures[0].component, "cuda_graphs");
  EXPECT_EQ(log->figures[0].bytes.value(), 2168958484);  // 2.02 GiB = 2168958484.48 B
  EXPECT_EQ(Setting(*log, "max-model-len"), "65536");
}

TEST(SglangLogTest, KvPoolsPerRank) {
  auto log = ParseEngineLog(Fixture("sglang/nvfp4-2x5090-club3090.log"), "s.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->format, LogFormat::kSglang);
  ASSERT_EQ(log->figures.size(), 8u);  // K and V of two pools on each of two ranks
  EXPECT_EQ(log->figures[0].device, "gpu0");
  EXPECT_EQ(log->figures[4].device, "gpu1");
  EXPECT_EQ(log->figures[0].bytes.value(), 3715146711);  // 3.46 GiB = 3715146711.04 B
  EXPECT_EQ(log->kv_capacity_tokens.value_or(0), 454112);
}

TEST(SglangLogTest, SyntheticMlaPoolAndLoadWeightEnd) {
  // SyntheticSglang: the spellings of model_runner.py / memory_pool.py (MLA
  // pools print one "KV size"); no public log with both was at hand.
  auto log = ParseEngineLog(
      "[2025-11-04 05:27:13 DP0 TP0 EP0] Load weight end. type=DeepseekV3ForCausalLM, dtype=torch.bfloat16, avail "
      "mem=75.11 GB, mem usage=107.07 GB.\n"
      "[2025-11-04 05:27:13 DP0 TP0 EP0] KV Cache is allocated. #tokens: 524288, KV size: 17.16 GB\n",
      "mla.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->figures.size(), 2u);
  EXPECT_EQ(log->figures[0].component, "weights");
  EXPECT_EQ(log->figures[0].printed, "107.07 GB");
  EXPECT_EQ(log->figures[1].engine_name, "KV Cache KV size");
  EXPECT_EQ(log->figures[1].device, "gpu0");
  EXPECT_EQ(log->arch.value_or(""), "DeepseekV3ForCausalLM");
  EXPECT_EQ(log->kv_capacity_tokens.value_or(0), 524288);
}

TEST(SglangLogTest, MaxTotalNumTokens) {
  auto log = ParseEngineLog(Fixture("sglang/max-total-num-tokens-issue29575.log"), "m.log");
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->kv_capacity_tokens.value_or(0), 2086558);
  EXPECT_EQ(Setting(*log, "context-length"), "256000");
}

TEST(TorchJsonTest, MemoryStatsAndRecords) {
  // SyntheticMemoryStats: the keys torch.cuda.memory_stats() returns.
  auto s = ParseEngineLog(R"({"allocated_bytes.all.peak": 1073741824, "reserved_bytes.all.peak": 2147483648,
                              "num_alloc_retries": 0})",
                          "stats.json");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->format, LogFormat::kTorchMemoryStats);
  ASSERT_EQ(s->figures.size(), 2u);
  EXPECT_EQ(s->figures[0].component, "allocated_peak");
  EXPECT_EQ(s->figures[0].bytes.value(), 1073741824);
  EXPECT_EQ(s->figures[0].half_ulp.value(), 0);
  // SyntheticMeasureRecords: two records of one job in tools/measure's format.
  const std::string rec =
      R"({"id": "m-x-alloc", "measured_value": 5000000000, "measured_unit": "bytes", "metric": "max_memory_allocated", )"
      R"("vramfit": {"model": "HuggingFaceTB/SmolLM2-135M", "mode": "infer", "compare": "allocated", )"
      R"("args": {"dtype": "bf16", "batch": 1, "prompt": 1024, "new": 128, "attn": "sdpa", "gpu": "H100-80GB"}, "command": "c"}})"
      "\n"
      R"({"id": "m-x-resv", "measured_value": 6000000000, "measured_unit": "bytes", "metric": "max_memory_reserved", )"
      R"("vramfit": {"model": "HuggingFaceTB/SmolLM2-135M", "mode": "infer", "compare": "reserved", )"
      R"("args": {"dtype": "bf16"}, "command": "c"}})"
      "\n";
  auto r = ParseEngineLog(rec, "runs.jsonl");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format, LogFormat::kMeasureRecord);
  ASSERT_EQ(r->figures.size(), 2u);
  EXPECT_EQ(r->figures[1].component, "reserved_peak");
  EXPECT_EQ(r->model.value_or(""), "HuggingFaceTB/SmolLM2-135M");
  EXPECT_EQ(r->record_mode.value_or(""), "infer");
  ASSERT_EQ(r->record_args.size(), 6u);
  bool prompt = false;
  for (const auto& [k, v] : r->record_args) prompt = prompt || (k == "prompt" && v == "1024");
  EXPECT_TRUE(prompt);
  // A record of another job in the same file.
  std::string mixed = rec;
  mixed.replace(mixed.rfind("\"command\": \"c\""), 14, "\"command\": \"d\"");
  EXPECT_EQ(ParseEngineLog(mixed, "runs.jsonl").error().message,
            "runs.jsonl:2: the records are of more than one job (check compares one job: keep one job's records)");
}

TEST(TorchJsonTest, DryRunTemplateRefused) {
  const std::string t =
      R"({"id": "m", "measured_value": null, "measured_unit": "bytes", "vramfit": {"compare": "allocated", "command": "c"}})";
  EXPECT_EQ(ParseEngineLog(t, "t.json").error().message,
            "t.json:1: measured_value is null (a --dry-run template, not a measurement)");
}

TEST(NvidiaSmiTest, CsvWithAndWithoutUnits) {
  // SyntheticSmi: nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv
  auto a = ParseEngineLog("index, name, memory.used [MiB], memory.total [MiB]\n0, NVIDIA H100 80GB HBM3, 20481 MiB, 81559 MiB\n",
                          "smi.csv");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->format, LogFormat::kNvidiaSmi);
  ASSERT_EQ(a->figures.size(), 1u);
  EXPECT_EQ(a->figures[0].component, "total");
  EXPECT_EQ(a->figures[0].bytes.value(), int64_t{20481} << 20);
  EXPECT_EQ(a->figures[0].half_ulp.value(), 1 << 19);
  // --format=csv,nounits, two samples of two GPUs: the peak per GPU.
  auto b = ParseEngineLog("memory.used [MiB], index\n100, 0\n300, 1\n200, 0\n", "smi.csv");
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_EQ(b->figures.size(), 2u);
  EXPECT_EQ(b->figures[0].bytes.value(), int64_t{200} << 20);
  EXPECT_EQ(b->figures[1].device, "gpu1");
}

TEST(EngineLogTest, HostileInputOneLineErrors) {
  EXPECT_EQ(ParseEngineLog("hello\nworld\n", "x.log").error().message.substr(0, 45),
            "x.log: no line of a known engine log (expecte");
  EXPECT_EQ(ParseEngineLog(std::string("load_tensors: \0\0\0", 17), "bin.log").error().message,
            "bin.log: not a text log (a NUL byte at offset 14)");
  // SyntheticHugeNumber
  EXPECT_EQ(ParseEngineLog("load_tensors:        CUDA0 model buffer size = 99999999999.99 MiB\n", "big.log")
                .error()
                .message,
            "big.log:1: '99999999999.99' is larger than any device (over 2^53 bytes)");
  // SyntheticLongLine: a line over 64 KiB is skipped, the rest still read.
  std::string long_line = "load_tensors: CUDA0 model buffer size = 1.00 MiB" + std::string(70000, 'x') + "\n" +
                          "load_tensors:        CUDA0 model buffer size =   100.00 MiB\n";
  auto l = ParseEngineLog(long_line, "long.log");
  ASSERT_TRUE(l.ok()) << l.error().message;
  ASSERT_EQ(l->figures.size(), 1u);
  EXPECT_EQ(l->figures[0].bytes.value(), 100 << 20);
  EXPECT_EQ(l->notes.back(), "1 line(s) over 65536 characters skipped");
  EXPECT_FALSE(ParseEngineLog("{\"a\": ", "bad.json").ok());
  EXPECT_FALSE(ParseEngineLog("[1, 2]", "arr.json").ok());
  EXPECT_FALSE(ParseEngineLog(std::string(200, '{'), "deep.json").ok());
  EXPECT_EQ(ParseEngineLog("memory.total [MiB]\n", "h.csv").error().message.substr(0, 50),
            "h.csv:1: expected nvidia-smi's CSV header with mem");
}

}  // namespace
}  // namespace vramfit::io

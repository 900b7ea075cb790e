// vLLM (V0 and V1) and SGLang start-up logs. The lines, as printed by:
//   vLLM V1  vllm/v1/worker/gpu_model_runner.py  "Model loading took %.4f GiB" (older: "... GB"; both
//                                                 model_memory_usage / 2^30), "Graph capturing finished in
//                                                 %.0f secs, took %.2f GiB"
//            vllm/v1/worker/gpu_worker.py        "Available KV cache memory: %.2f GiB", the profiler's
//                                                 "Free memory on device ... Actual usage is %.2f GiB for
//                                                 consumed memory (weights + non-torch), %.2f GiB for peak
//                                                 activation, and %.2f GiB for CUDAGraph memory"
//            vllm/v1/core/kv_cache_utils.py      "GPU KV cache size: %s tokens" (PR #13596, before it
//                                                 "# GPU blocks: %d"), "Maximum concurrency for %s tokens
//                                                 per request: %.2fx"
//   vLLM V0  vllm/worker/worker.py               "Memory profiling results: total_gpu_memory=%.2fGiB ...
//                                                 non_torch_memory=%.2fGiB kv_cache_size=%.2fGiB
//                                                 gpu_memory_utilization=%.2f" and later "model weights
//                                                 take %.2fGiB; non_torch_memory takes %.2fGiB; PyTorch
//                                                 activation peak memory takes %.2fGiB; the rest of the
//                                                 memory reserved for KV Cache is %.2fGiB."
//            vllm/executor/*                     "# GPU blocks: %d, # CPU blocks: %d"
//            vllm/worker/model_runner.py         "Loading model weights took %.4f GB" (2^30 B)
//   SGLang   python/sglang/srt/model_executor/model_runner.py "Load weight end. type=%s, dtype=%s, avail
//                                                 mem=%.2f GB, mem usage=%.2f GB.", "Capture cuda graph end.
//                                                 ... mem usage=%.2f GB", "Memory pool end. avail mem=%.2f GB"
//            python/sglang/srt/mem_cache/memory_pool.py "KV Cache is allocated. #tokens: %d, K size: %.2f
//                                                 GB, V size: %.2f GB" (GB = 2^30 B there; get_available_
//                                                 gpu_memory divides by 1 << 30)
// Every figure is per GPU; a rank prefix ("(Worker_TP1 pid=..)", "[... TP1]")
// names the GPU, else gpu0.
#include <fmt/format.h>

#include "engine_log_util.h"

namespace vramfit::io {

namespace {

using log::Line;

constexpr int64_t kGiB2 = int64_t{1} << 30;

std::string DeviceOf(const Line& l) { return l.tag.rfind("TP", 0) == 0 ? "gpu" + l.tag.substr(2) : "gpu0"; }

bool IdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The value of `key` in a config dump, either spelling: "key=value" (an
// engine config or Namespace / ServerArgs repr) or "'key': value" (a dict).
// Quotes are removed; nullopt when absent.
std::optional<std::string> ConfigValue(std::string_view line, std::string_view key) {
  for (size_t p = line.find(key); p != std::string_view::npos; p = line.find(key, p + 1)) {
    const bool quoted = p > 0 && line[p - 1] == '\'';
    if (p > 0 && !quoted && IdentChar(line[p - 1])) continue;
    size_t v = p + key.size();
    if (quoted) {
      if (line.substr(v, 3) != "': ") continue;
      v += 3;
    } else {
      if (v >= line.size() || line[v] != '=') continue;
      v += 1;
    }
    // Up to the next ',', ')' or '}' outside quotes and brackets.
    int depth = 0;
    char quote = 0;
    size_t e = v;
    for (; e < line.size(); ++e) {
      const char c = line[e];
      if (quote) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '\'' || c == '"') quote = c;
      else if (c == '(' || c == '[' || c == '{') ++depth;
      else if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
      else if (depth == 0 && (c == ',' || c == ')' || c == '}')) break;
    }
    std::string_view val = log::Trim(line.substr(v, e - v));
    if (val.size() >= 2 && (val.front() == '\'' || val.front() == '"') && val.back() == val.front()) {
      val = val.substr(1, val.size() - 2);
    }
    return std::string(val);
  }
  return std::nullopt;
}

std::string DtypeName(std::string_view v) {
  if (v == "torch.bfloat16" || v == "bfloat16" || v == "bf16") return "bf16";
  if (v == "torch.float16" || v == "float16" || v == "half" || v == "fp16") return "fp16";
  if (v == "torch.float32" || v == "float32" || v == "float" || v == "fp32") return "fp32";
  return {};
}

// The config settings both engines print. `model_key`: "model" (vLLM) or
// "model_path" (SGLang).
void ConfigLine(EngineLog& out, const Line& l, bool sglang) {
  const std::string_view t = l.text;
  const auto take = [&](std::string_view key, std::string setting, auto map) {
    if (auto v = ConfigValue(t, key)) {
      if (*v == "None" || *v == "auto" || v->empty()) return;
      const std::string mapped = map(*v);
      if (mapped.empty()) {
        out.notes.push_back(fmt::format("line {}: {}={} has no vramfit counterpart; give it as a flag", l.no, key, *v));
        return;
      }
      log::AddSetting(out, std::move(setting), mapped, l, fmt::format("{}={}", key, *v));
    }
  };
  const auto same = [](const std::string& v) { return v; };
  const auto number = [](const std::string& v) { return std::string(log::NumberAt(v)) == v ? v : std::string(); };
  if (!out.model) {
    if (auto m = ConfigValue(t, sglang ? "model_path" : "model"); m && *m != "None") out.model = *m;
  }
  if (sglang) {
    take("tp_size", "tp", number);
    // The sglang profile's own settings (python/sglang/srt/server_args.py names).
    take("context_length", "context-length", number);
    take("page_size", "page-size", number);
    take("cuda_graph_max_bs", "cuda-graph-max-bs", number);
    take("disable_cuda_graph", "disable-cuda-graph", [](const std::string& v) {
      return v == "True" ? std::string("true") : v == "False" ? std::string("false") : std::string();
    });
    take("mem_fraction_static", "mem-fraction-static", number);
    take("max_running_requests", "max-running-requests", number);
    take("chunked_prefill_size", "chunked-prefill-size", number);
  } else {
    take("max_model_len", "max-model-len", number);
    take("max_seq_len", "max-model-len", number);
    take("gpu_memory_utilization", "gpu-mem-util", number);
    take("tensor_parallel_size", "tp", number);
    take("pipeline_parallel_size", "pp", number);
    take("block_size", "block-size", number);
    take("max_num_seqs", "max-num-seqs", number);
    take("max_num_batched_tokens", "max-num-batched-tokens", number);
    take("enforce_eager", "enforce-eager", [](const std::string& v) {
      return v == "True" ? std::string("true") : v == "False" ? std::string("false") : std::string();
    });
  }
  take("dtype", "dtype", [](const std::string& v) { return DtypeName(v); });
  take("kv_cache_dtype", "kv-dtype", [](const std::string& v) {
    return v == "fp8" || v == "fp8_e4m3" || v == "fp8_e5m2" ? std::string("fp8") : DtypeName(v);
  });
  take("quantization", "quant", [](const std::string& v) {
    if (v == "fp8") return std::string("fp8");
    if (v == "awq" || v == "awq_marlin") return std::string("awq-int4");
    if (v == "gptq" || v == "gptq_marlin") return std::string("gptq-int4");
    if (v == "bitsandbytes") return std::string("nf4");
    if (v == "mxfp4") return std::string("mxfp4");
    return std::string();
  });
  (void)same;
}

// "X GiB" / "XGiB" / "X GB" right after `key`: the number and the unit as
// printed (both mean 2^30 B here), or an empty number.
std::pair<std::string_view, std::string_view> GiBAfter(std::string_view t, std::string_view key) {
  auto a = log::After(t, key);
  if (!a) return {};
  const std::string_view n = log::NumberAt(*a);
  if (n.empty()) return {};
  std::string_view rest = a->substr(a->find(n) + n.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.substr(0, 3) == "GiB") return {n, "GiB"};
  if (rest.substr(0, 2) == "GB") return {n, "GB"};
  return {};
}

Status Figure(EngineLog& out, std::string_view name, const Line& l, std::string_view key, std::string component,
              bool counterpart = true, std::string engine_name = {}) {
  const auto [n, unit] = GiBAfter(l.text, key);
  if (n.empty()) return {};
  if (engine_name.empty()) {
    std::string_view k = log::Trim(key);
    while (!k.empty() && (k.back() == '=' || k.back() == ':')) k.remove_suffix(1);
    engine_name = std::string(k);
  }
  return log::AddFigure(out, name, l, DeviceOf(l), l.tag, std::move(engine_name), std::move(component), counterpart, n,
                        kGiB2, unit);
}

// One figure per device and component: tensor-parallel ranks without a
// rank tag and repeated profiler lines print the same figure again (the
// first stays); of two spellings of one component (the loader's "Model
// loading took" and the profiler's "model weights take") the more precise
// stays. SGLang's K and V lines (one pair per KV pool) all count.
void Dedupe(EngineLog& out, bool sglang) {
  std::vector<Measured> kept;
  for (Measured& m : out.figures) {
    Measured* same = nullptr;
    for (Measured& k : kept) {
      if (k.device == m.device && k.component == m.component) same = &k;
    }
    if (same == nullptr || (sglang && m.component == "kv_cache")) {
      kept.push_back(std::move(m));
    } else if (same->engine_name != m.engine_name && m.half_ulp < same->half_ulp) {
      *same = std::move(m);
    }
  }
  out.figures = std::move(kept);
}

Status VllmLine(EngineLog& out, std::string_view name, const Line& l, bool* any) {
  const std::string_view t = l.text;
  const size_t before = out.figures.size();
  VRAMFIT_TRY(Figure(out, name, l, "Model loading took ", "weights"));
  VRAMFIT_TRY(Figure(out, name, l, "Loading model weights took ", "weights"));
  VRAMFIT_TRY(Figure(out, name, l, "Available KV cache memory: ", "kv_cache"));
  VRAMFIT_TRY(Figure(out, name, l, "model weights take ", "weights"));
  VRAMFIT_TRY(Figure(out, name, l, "non_torch_memory takes ", "non_torch"));
  VRAMFIT_TRY(Figure(out, name, l, "PyTorch activation peak memory takes ", "activations"));
  VRAMFIT_TRY(Figure(out, name, l, "the rest of the memory reserved for KV Cache is ", "kv_cache"));
  VRAMFIT_TRY(Figure(out, name, l, "non_torch_memory=", "non_torch"));
  VRAMFIT_TRY(Figure(out, name, l, "kv_cache_size=", "kv_cache"));
  VRAMFIT_TRY(Figure(out, name, l, "peak_torch_memory=", "peak_torch_memory", false));
  if (auto g = log::After(t, "Graph capturing finished in ")) {
    if (auto took = log::After(*g, "took ")) {
      const Line sub{std::string(*took), l.tag, l.no};
      VRAMFIT_TRY(Figure(out, name, sub, "", "cuda_graphs", true, "Graph capturing took"));
    }
  }
  if (auto a = log::After(t, "Actual usage is ")) {
    VRAMFIT_TRY(Figure(out, name, l, "Actual usage is ", "weights_and_non_torch", false,
                       "consumed memory (weights + non-torch)"));
    if (auto p = log::After(*a, "for consumed memory (weights + non-torch), ")) {
      const Line sub{std::string(*p), l.tag, l.no};
      VRAMFIT_TRY(Figure(out, name, sub, "", "activations", true, "peak activation"));
      if (auto c = log::After(*p, "for peak activation, and ")) {
        const Line sub2{std::string(*c), l.tag, l.no};
        VRAMFIT_TRY(Figure(out, name, sub2, "", "cuda_graphs", true, "CUDAGraph memory"));
      }
    }
  }
  if (out.figures.size() != before) *any = true;
  if (auto u = log::After(t, "gpu_memory_utilization (")) {  // "x gpu_memory_utilization (0.99) = 23.35GiB"
    const std::string_view n = log::NumberAt(*u);
    if (!n.empty()) log::AddSetting(out, "gpu-mem-util", std::string(n), l, "gpu_memory_utilization (" + std::string(n) + ")");
  }
  if (auto u = log::After(t, " gpu_memory_utilization=")) {  // V0 "Memory profiling results: ..."
    const std::string_view n = log::NumberAt(*u);
    if (!n.empty()) log::AddSetting(out, "gpu-mem-util", std::string(n), l, "gpu_memory_utilization=" + std::string(n));
  }
  if (auto u = log::After(t, "Desired GPU memory utilization is (")) {
    const std::string_view n = log::NumberAt(*u);
    if (!n.empty()) log::AddSetting(out, "gpu-mem-util", std::string(n), l, "GPU memory utilization " + std::string(n));
  }
  if (auto k = log::After(t, "GPU KV cache size: ")) {
    auto n = log::ParseCount(log::NumberAt(*k), log::Where(name, l.no));
    if (!n.ok()) return n.error();
    if (!out.kv_capacity_tokens) out.kv_capacity_tokens = *n;
    *any = true;
  }
  if (auto b = log::After(t, "# GPU blocks: ")) {
    auto n = log::ParseCount(log::NumberAt(*b), log::Where(name, l.no));
    if (!n.ok()) return n.error();
    int64_t block = 16;  // vLLM's default block_size (CacheConfig)
    bool given = false;
    for (const LogSetting& s : out.settings) {
      if (s.name == "block-size") {
        auto bs = log::ParseCount(s.value, "");
        if (bs.ok()) block = *bs, given = true;
      }
    }
    if (!out.kv_capacity_tokens) {
      out.kv_capacity_tokens = *n * block;
      out.notes.push_back(fmt::format("line {}: {} GPU blocks x {} tokens per block{} = {} tokens", l.no, *n, block,
                                      given ? "" : " (vLLM's default block_size; the log does not print it)",
                                      *out.kv_capacity_tokens));
    }
    *any = true;
  }
  if (auto c = log::After(t, "Maximum concurrency for ")) {
    const std::string_view len = log::NumberAt(*c);
    if (auto x = log::After(*c, "per request: ")) {
      auto v = log::ParseDecimal(log::NumberAt(*x), log::Where(name, l.no));
      if (!v.ok()) return v.error();
      if (!out.max_concurrency) out.max_concurrency = *v;
    }
    auto n = log::ParseCount(len, log::Where(name, l.no));
    if (!n.ok()) return n.error();
    log::AddSetting(out, "max-model-len", std::to_string(*n), l, "Maximum concurrency for " + std::string(len) + " tokens");
    *any = true;
  }
  if (auto m = log::After(t, "Using max model len ")) {
    const std::string_view n = log::NumberAt(*m);
    if (!n.empty()) log::AddSetting(out, "max-model-len", std::string(n), l, "max model len " + std::string(n));
  }
  if (auto m = log::After(t, "Chunked prefill is enabled with max_num_batched_tokens=")) {
    const std::string_view n = log::NumberAt(*m);
    if (!n.empty()) log::AddSetting(out, "max-num-batched-tokens", std::string(n), l, "max_num_batched_tokens=" + std::string(n));
  }
  if (auto a = log::After(t, "Resolved architecture: ")) out.arch = std::string(log::Trim(*a));
  if (t.find("non-default args: ") != std::string_view::npos || t.find("with config: ") != std::string_view::npos ||
      t.find("args: Namespace(") != std::string_view::npos) {
    const size_t n = out.settings.size();
    const bool had_model = out.model.has_value();
    ConfigLine(out, l, false);
    if (out.settings.size() != n || out.model.has_value() != had_model) *any = true;
  }
  return {};
}

Status SglangLine(EngineLog& out, std::string_view name, const Line& l, bool* any) {
  const std::string_view t = l.text;
  if (t.find("Load weight end.") != std::string_view::npos) {
    VRAMFIT_TRY(Figure(out, name, l, "mem usage=", "weights", true, "Load weight end: mem usage"));
    if (auto ty = ConfigValue(t, "type")) out.arch = *ty;
    *any = true;
  }
  if (auto kv = log::After(t, "KV Cache is allocated.")) {
    if (auto n = log::After(*kv, "#tokens: ")) {
      auto c = log::ParseCount(log::NumberAt(*n), log::Where(name, l.no));
      if (!c.ok()) return c.error();
      if (!out.kv_capacity_tokens) out.kv_capacity_tokens = *c;
    }
    if (kv->find("KV size: ") != std::string_view::npos) {  // MLA pools: one latent buffer
      VRAMFIT_TRY(Figure(out, name, l, "KV size: ", "kv_cache", true, "KV Cache KV size"));
    } else {
      VRAMFIT_TRY(Figure(out, name, l, "K size: ", "kv_cache", true, "KV Cache K size"));
      VRAMFIT_TRY(Figure(out, name, l, "V size: ", "kv_cache", true, "KV Cache V size"));
    }
    *any = true;
  }
  if (t.find("Capture cuda graph end.") != std::string_view::npos) {
    VRAMFIT_TRY(Figure(out, name, l, "mem usage=", "cuda_graphs", true, "Capture cuda graph end: mem usage"));
    *any = true;
  }
  if (auto m = log::After(t, "max_total_num_tokens=")) {
    auto c = log::ParseCount(log::NumberAt(*m), log::Where(name, l.no));
    if (!c.ok()) return c.error();
    if (!out.kv_capacity_tokens) out.kv_capacity_tokens = *c;
    if (auto len = ConfigValue(t, "context_len")) {
      if (!log::NumberAt(*len).empty()) {
        log::AddSetting(out, "context-length", std::string(log::NumberAt(*len)), l, "context_len=" + *len);
      }
    }
    *any = true;
  }
  if (t.find("server_args=ServerArgs(") != std::string_view::npos || t.find("ServerArgs(") == 0) {
    const size_t n = out.settings.size();
    const bool had_model = out.model.has_value();
    ConfigLine(out, l, true);
    if (out.settings.size() != n || out.model.has_value() != had_model) *any = true;
  }
  return {};
}

Result<EngineLog> Parse(std::string_view text, std::string_view name, bool sglang) {
  EngineLog out;
  out.format = sglang ? LogFormat::kSglang : LogFormat::kVllm;
  auto lines = log::SplitLines(text, name, &out.notes);
  if (!lines.ok()) return lines.error();
  bool any = false;
  bool v1 = false;
  for (const Line& l : *lines) {
    if (sglang) {
      VRAMFIT_TRY(SglangLine(out, name, l, &any));
    } else {
      VRAMFIT_TRY(VllmLine(out, name, l, &any));
      v1 = v1 || l.text.find("V1 LLM engine") != std::string::npos || l.text.find("EngineCore") != std::string::npos;
    }
  }
  if (!any) {
    return InvalidArgument(sglang ? fmt::format("{}: no SGLang line found (expected \"Load weight end. ... mem usage=X "
                                                "GB\" or \"KV Cache is allocated. #tokens: N, K size: X GB, V size: X GB\")",
                                                name)
                                  : fmt::format("{}: no vLLM line found (expected \"Model loading took X GiB\", "
                                                "\"Available KV cache memory: X GiB\" or \"GPU KV cache size: N tokens\")",
                                                name));
  }
  Dedupe(out, sglang);
  bool gb = false;
  for (const Measured& m : out.figures) gb = gb || (m.printed.size() > 3 && m.printed.substr(m.printed.size() - 3) == " GB");
  if (gb) out.notes.push_back(fmt::format("{}'s \"GB\" is 2^30 bytes (it divides by 1 << 30)", sglang ? "SGLang" : "vLLM"));
  if (!sglang) {
    out.notes.insert(out.notes.begin(), v1 ? "vLLM V1 engine"
                                           : "no vLLM V1 engine line in the log (a V0 engine's, or an excerpt): vramfit "
                                             "models the V1 engine");
  }
  return out;
}

}  // namespace

Result<EngineLog> ParseVllmLog(std::string_view text, std::string_view name) { return Parse(text, name, false); }
Result<EngineLog> ParseSglangLog(std::string_view text, std::string_view name) { return Parse(text, name, true); }

}  // namespace vramfit::io

// llama.cpp load logs (llama-server, llama-cli, llama-bench; mainline builds
// since ~b3000 and the ik_llama.cpp fork), as printed by:
//   src/llama-model.cpp       "load_tensors: <buft> model buffer size = %8.2f MiB"
//                             (llm_load_tensors: "<buft> buffer size" before ~b4300)
//   src/llama-kv-cache*.cpp   "<buft> KV buffer size = %8.2f MiB",
//                             "size = %7.2f MiB (%6u cells, %3d layers, %2u/%u seqs), K (%s): %7.2f MiB, V (%s): ..."
//                             (llama_kv_cache_init / llama_kv_cache_unified / llama_kv_cache)
//   src/llama-memory-recurrent.cpp "<buft> RS buffer size", "size = ... R (f32): ..., S (f32): ..."
//   src/llama-context.cpp     "<buft> output buffer size", "<buft> compute buffer size",
//                             "n_ctx = %u", "n_batch", "n_ubatch", "flash_attn", "n_seq_max";
//                             llama_memory_breakdown_print (PR #15860, b6480+) "memory breakdown [MiB]"
//   src/llama-model.cpp       "offloaded %d/%d layers to GPU", print_info "file type = %s"
// MiB = 2^20 B, printed with two decimals.
#include <cctype>

#include <fmt/format.h>

#include "engine_log_util.h"

namespace vramfit::io {

namespace {

using log::Line;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// vramfit's device for a llama.cpp buffer type: CUDA0 -> gpu0, ROCm1 -> gpu1;
// host buffer types -> host; "" for one it does not know.
std::string DeviceOf(std::string_view buft) {
  static constexpr std::string_view kHost[] = {"CPU", "CPU_Mapped", "CUDA_Host", "ROCm_Host", "CPU_REPACK",
                                               "AMX", "Vulkan_Host", "SYCL_Host", "CANN_Host", "MUSA_Host"};
  for (std::string_view h : kHost) {
    if (buft == h) return "host";
  }
  static constexpr std::string_view kGpu[] = {"CUDA", "ROCm", "Vulkan", "SYCL", "MUSA", "CANN"};
  for (std::string_view g : kGpu) {
    if (StartsWith(buft, g) && buft.size() > g.size()) {
      const std::string_view n = buft.substr(g.size());
      bool digits = n.size() <= 3;
      for (char c : n) digits = digits && std::isdigit(static_cast<unsigned char>(c));
      if (digits) return "gpu" + std::string(n);
    }
  }
  if (buft == "Metal" || buft == "MTL0") return "gpu0";
  return {};
}

// "Q4_K - Medium" -> "Q4_K_M"; "IQ4_XS - 4.25 bpw" -> "IQ4_XS"; "Q2_K - Medium"
// -> "Q2_K" (llama_model_ftype_name in src/llama-model-loader.cpp).
std::string FileType(std::string_view printed) {
  std::string_view t = log::Trim(printed);
  const size_t dash = t.find(" - ");
  if (dash == std::string_view::npos) return std::string(t);
  const std::string_view base = t.substr(0, dash);
  const std::string_view size = t.substr(dash + 3);
  if (base == "Q2_K" && size == "Medium") return "Q2_K";
  if (size == "Small") return std::string(base) + "_S";
  if (size == "Medium") return std::string(base) + "_M";
  if (size == "Large") return std::string(base) + "_L";
  return std::string(base);  // "... - 4.25 bpw"
}

// "key = value" after "func: ": key and value, or false.
bool KeyValue(std::string_view text, std::string_view* key, std::string_view* value) {
  const size_t colon = text.find(": ");
  if (colon == std::string_view::npos) return false;
  std::string_view rest = text.substr(colon + 2);
  const size_t eq = rest.find(" = ");
  if (eq == std::string_view::npos) return false;
  *key = log::Trim(rest.substr(0, eq));
  *value = log::Trim(rest.substr(eq + 3));
  return true;
}

// A "<buft> <kind> buffer size = X MiB" line.
Status BufferLine(EngineLog& out, std::string_view name, const Line& l, std::string_view func_and_what,
                  std::string_view after) {
  const std::string_view number = log::NumberAt(after);
  if (number.empty()) return {};
  const size_t colon = func_and_what.find(": ");
  const std::string_view func = colon == std::string_view::npos ? std::string_view() : func_and_what.substr(0, colon);
  std::string_view what = colon == std::string_view::npos ? func_and_what : func_and_what.substr(colon + 2);
  what = log::Trim(what);
  std::string_view buft = what;
  std::string_view kind;
  if (const size_t sp = what.rfind(' '); sp != std::string_view::npos) {
    buft = log::Trim(what.substr(0, sp));
    kind = what.substr(sp + 1);
  }
  if (buft.find(' ') != std::string_view::npos) return {};  // not "<buft> <kind>"
  if (kind.empty() && func.find("load_tensors") != std::string_view::npos) kind = "model";
  std::string component;
  if (kind == "model") component = "weights";
  else if (kind == "KV") component = "kv_cache";
  else if (kind == "RS") component = "recurrent_state";  // llama_memory_recurrent's R/S buffer
  else if (kind == "compute") component = "compute_buffer";
  else if (kind == "output") component = "output_buffer";
  else return {};
  std::string device = DeviceOf(buft);
  const bool known = !device.empty();
  if (!known) device = std::string(buft);
  if (!known) component = std::string(buft) + " " + std::string(kind) + " buffer";
  return log::AddFigure(out, name, l, device, std::string(buft), std::string(kind.empty() ? "model" : kind) + " buffer",
                        component, known, number, int64_t{1} << 20, "MiB");
}

// "size = 448.00 MiB (4096 cells, 28 layers, 1/1 seqs), K (f16): 224.00 MiB, V (f16): 224.00 MiB"
void KvSizeLine(EngineLog& out, const Line& l, std::string_view rest) {
  const auto type_of = [&](std::string_view key) -> std::string {
    auto t = log::After(rest, key);
    if (!t) return {};
    const size_t close = t->find(')');
    return close == std::string_view::npos || close > 16 ? std::string() : std::string(t->substr(0, close));
  };
  const std::string k = type_of(", K (");
  const std::string v = type_of(", V (");
  // The cells of the (first, i.e. the non-SWA) cache: its capacity in
  // tokens. The cells are per stream; "%2u/%u seqs" is n_seq_max / n_stream
  // (llama-kv-cache.cpp), one stream per sequence unless the KV cache is
  // unified (-kvu), so the capacity is cells x n_stream. Builds that print
  // no stream count have one.
  if (!out.kv_capacity_tokens) {
    if (auto open = log::After(rest, "(")) {
      const std::string_view n = log::NumberAt(*open);
      auto cells = ParsePrintedBytes(n, 1);
      if (!n.empty() && cells.ok() && open->substr(open->find(n) + n.size()).substr(0, 6) == " cells") {
        int64_t streams = 1;
        const std::string_view inside = open->substr(0, open->find(')'));
        const size_t seqs = inside.find(" seqs");
        const size_t slash = seqs == std::string_view::npos ? std::string_view::npos : inside.rfind('/', seqs);
        if (slash != std::string_view::npos) {
          const std::string_view s_text = log::NumberAt(inside.substr(slash + 1));
          auto parsed = ParsePrintedBytes(s_text, 1);
          if (!s_text.empty() && parsed.ok() && parsed->bytes.value() >= 1 && parsed->bytes.value() <= 4096) {
            streams = parsed->bytes.value();
          }
        }
        out.kv_capacity_tokens = cells->bytes.value() * streams;
      }
    }
  }
  if (!k.empty()) log::AddSetting(out, "cache-type-k", k, l, "K (" + k + ")");
  if (!v.empty()) log::AddSetting(out, "cache-type-v", v, l, "V (" + v + ")");
}

// One row of the memory breakdown table, either spelling:
//   "  - CUDA0 (RTX 4090):  24080 = 9436 + (14193 = 13169 +  38 +  985) +  451"       (PR #15860)
//   "|   - CUDA0 (RTX 3090)   | 24124 = 23860 + (15946 = 15364 + 411 + 170) + -15681 |"
//   "|   - Host               |                    804 =   682 +       0 +     122    |"
Status BreakdownLine(EngineLog& out, std::string_view name, const Line& l, std::string_view row) {
  const size_t dash = row.find("- ");
  if (dash == std::string_view::npos) return {};
  std::string_view rest = row.substr(dash + 2);
  size_t split = rest.find('|');
  if (split == std::string_view::npos) split = rest.find(':');
  if (split == std::string_view::npos) return {};
  BreakdownRow b;
  b.device = std::string(log::Trim(rest.substr(0, split)));
  const std::string_view first = std::string_view(b.device).substr(0, b.device.find(' '));
  b.vramfit_device = first == "Host" ? "host" : DeviceOf(first);
  b.line = l.no;
  std::string_view nums = rest.substr(split + 1);
  std::vector<int64_t> v;
  while (!nums.empty()) {
    const char c = nums.front();
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == '-' && nums.size() > 1 && std::isdigit(static_cast<unsigned char>(nums[1])))) {
      const std::string_view n = log::NumberAt(nums);
      auto count = ParsePrintedBytes(n, 1);
      if (!count.ok()) return InvalidArgument(log::Where(name, l.no) + "memory breakdown: " + count.error().message);
      v.push_back(count->bytes.value());
      nums.remove_prefix(nums.find(n) + n.size());
      continue;
    }
    nums.remove_prefix(1);
  }
  // Every figure but "unaccounted" (which llama.cpp may print underflowed
  // and is compared only when it lies within the device) is a real amount.
  for (size_t i = 0; i < v.size(); ++i) {
    const bool unaccounted = v.size() == 7 && i == 6;
    if (!unaccounted && (v[i] < 0 || v[i] > (int64_t{1} << 33))) {
      return InvalidArgument(log::Where(name, l.no) + fmt::format("memory breakdown: {} MiB is not a device's memory", v[i]));
    }
  }
  if (v.size() == 7) {
    b.total_mib = v[0];
    b.free_mib = v[1];
    b.self_mib = v[2];
    b.model_mib = v[3];
    b.context_mib = v[4];
    b.compute_mib = v[5];
    b.unaccounted_mib = v[6];
  } else if (v.size() == 5) {  // PR #15860's host row: total, then self = model + context + compute
    b.total_mib = v[0];
    b.self_mib = v[1];
    b.model_mib = v[2];
    b.context_mib = v[3];
    b.compute_mib = v[4];
  } else if (v.size() == 4) {  // a host row: self = model + context + compute
    b.self_mib = v[0];
    b.model_mib = v[1];
    b.context_mib = v[2];
    b.compute_mib = v[3];
  } else {
    return {};  // a truncated row
  }
  // A fresh table (the header precedes it) replaces the previous one.
  out.breakdown.push_back(std::move(b));
  return {};
}

// Metadata and context settings; true when the line was one.
bool SettingLine(EngineLog& out, const Line& l) {
  const std::string_view t = l.text;
  if (auto arch = log::After(t, "general.architecture str")) {
    if (auto eq = log::After(*arch, "= ")) out.arch = std::string(log::Trim(*eq));
    return true;
  }
  if (auto d = log::After(t, "offloaded "); d && t.find(" layers to GPU") != std::string_view::npos) {
    const std::string_view n = log::NumberAt(*d);
    if (!n.empty()) log::AddSetting(out, "gpu-layers", std::string(n), l, std::string(t.substr(t.find("offloaded"))));
    return true;
  }
  if (StartsWith(t, "build: ")) {
    const std::string_view n = log::NumberAt(t.substr(7));
    if (n.size() >= 4 && n.find_first_of(",.") == std::string_view::npos) {
      log::AddSetting(out, "llamacpp-build", "b" + std::string(n), l, std::string(t.substr(0, t.find(" with"))));
    }
    return true;
  }
  if (auto dev = log::After(t, "Device "); dev && StartsWith(t, "Device ")) {
    const size_t colon = dev->find(": ");
    if (colon != std::string_view::npos) {
      std::string_view gpu = dev->substr(colon + 2);
      gpu = gpu.substr(0, gpu.find(','));
      out.gpu_names.emplace_back(log::Trim(gpu));
    }
    return true;
  }
  if (auto kv = log::After(t, "kv_size = "); kv && t.find("type_k = '") != std::string_view::npos) {
    // llama_kv_cache_init (before the unified cache): "type_k = 'f16', type_v = 'f16'"
    const auto quoted = [&](std::string_view key) {
      auto q = log::After(t, key);
      return q ? std::string(q->substr(0, q->find('\''))) : std::string();
    };
    log::AddSetting(out, "cache-type-k", quoted("type_k = '"), l, "type_k");
    log::AddSetting(out, "cache-type-v", quoted("type_v = '"), l, "type_v");
    return true;
  }
  std::string_view key, value;
  if (!KeyValue(t, &key, &value)) return false;
  const std::string said = fmt::format("{} = {}", key, value);
  if (key == "file type" || key == "model ftype") {
    log::AddSetting(out, "quant", FileType(value), l, said);
  } else if (key == "arch") {
    if (!out.arch) out.arch = std::string(value);
  } else if (key == "n_ctx" && !log::NumberAt(value).empty()) {
    log::AddSetting(out, "ctx", std::string(log::NumberAt(value)), l, said);
  } else if (key == "n_batch" && !log::NumberAt(value).empty()) {
    log::AddSetting(out, "batch-size", std::string(log::NumberAt(value)), l, said);
  } else if (key == "n_ubatch" && !log::NumberAt(value).empty()) {
    log::AddSetting(out, "ubatch", std::string(log::NumberAt(value)), l, said);
  } else if (key == "n_seq_max" && !log::NumberAt(value).empty()) {
    log::AddSetting(out, "parallel", std::string(log::NumberAt(value)), l, said);
  } else if (key == "flash_attn") {
    // "0"/"1" before b6200, then "enabled"/"disabled"/"auto".
    const std::string v = value == "1" || value == "enabled" || value == "true" ? "on"
                          : value == "0" || value == "disabled" || value == "false" ? "off"
                                                                                     : std::string();
    if (!v.empty()) log::AddSetting(out, "flash-attn", v, l, said);
  } else {
    return false;
  }
  return true;
}

// "load_tensors: layer %3d assigned to device %s, is_swa = %d" (debug
// level): a build without a GPU (or -ngl 0) prints CPU for every layer and
// no "offloaded N/M layers to GPU" line, so the layers say -ngl 0.
struct LayerDevices {
  int cpu = 0, other = 0;
  const Line* last = nullptr;
  void Read(const Line& l) {
    auto d = log::After(l.text, " assigned to device ");
    if (!d || l.text.find("load_tensors: layer ") == std::string_view::npos) return;
    (StartsWith(*d, "CPU,") ? cpu : other) += 1;
    last = &l;
  }
  void Finish(EngineLog& out) const {
    if (cpu == 0 || other > 0 || last == nullptr) return;
    log::AddSetting(out, "gpu-layers", "0", *last, fmt::format("all {} layers assigned to device CPU", cpu));
  }
};

}  // namespace

Result<EngineLog> ParseLlamaCppLog(std::string_view text, std::string_view name) {
  EngineLog out;
  out.format = LogFormat::kLlamaCpp;
  auto lines = log::SplitLines(text, name, &out.notes);
  if (!lines.ok()) return lines.error();
  bool any = false;
  int load_line = 0;
  LayerDevices layers;
  for (const Line& l : *lines) {
    const std::string_view t = l.text;
    layers.Read(l);
    // A second load in one log (llama-server reloading, --fit's trial loads
    // print no buffers): its figures replace the first load's.
    if (t.find("loading model tensors") != std::string_view::npos || t.find("loaded meta data with") != std::string_view::npos) {
      if (!out.figures.empty() && load_line > 0 && l.no > load_line) {
        out.notes.push_back(fmt::format("the model was loaded again at line {}: the figures are that load's", l.no));
        out.figures.clear();
        out.breakdown.clear();
      }
      load_line = l.no;
    }
    if (const size_t p = t.find(" buffer size = "); p != std::string_view::npos) {
      VRAMFIT_TRY(BufferLine(out, name, l, t.substr(0, p), t.substr(p + 15)));
      any = true;
      continue;
    }
    if (t.find("memory breakdown") != std::string_view::npos) {
      out.breakdown.clear();  // the header of a fresh table
      any = true;
      continue;
    }
    if (t.find("memory_breakdown_print:") != std::string_view::npos || t.find("print_memory_breakdown:") != std::string_view::npos) {
      VRAMFIT_TRY(BreakdownLine(out, name, l, t.substr(t.find(':') + 1)));
      continue;
    }
    // The recurrent state's "size = ... (4 cells, ...)" counts sequences, not tokens.
    if (auto size = log::After(t, ": size = ");
        size && t.find(" cells") != std::string_view::npos && t.find("llama_memory_recurrent") == std::string_view::npos) {
      KvSizeLine(out, l, *size);
      any = true;
      continue;
    }
    if (auto self = log::After(t, "KV self size"); self) {  // before b3000: "KV self size = X MiB, K (f16): ..."
      KvSizeLine(out, l, *self);
      continue;
    }
    if (SettingLine(out, l)) any = true;
  }
  layers.Finish(out);
  if (!any) {
    return InvalidArgument(fmt::format(
        "{}: no llama.cpp line found (expected \"<device> model buffer size = X MiB\", \"KV buffer size\", "
        "\"compute buffer size\" or the memory breakdown table)",
        name));
  }
  if (out.figures.empty()) out.notes.push_back("no buffer line in the log (truncated before the model loaded?)");
  return out;
}

}  // namespace vramfit::io

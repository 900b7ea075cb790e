// Human-readable tables.
#include "vramfit/render.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace vramfit {

std::string FormatBytes(Bytes b, Units u) {
  const double v = static_cast<double>(b.value());
  const double a = std::fabs(v);
  if (u == Units::kGB) {
    if (a >= 1e9) return fmt::format("{:.2f} GB", v / 1e9);
    if (a >= 1e6) return fmt::format("{:.1f} MB", v / 1e6);
    if (a >= 1e3) return fmt::format("{:.1f} kB", v / 1e3);
    return fmt::format("{} B", b.value());
  }
  if (a >= static_cast<double>(kGiB)) return fmt::format("{:.2f} GiB", v / kGiB);
  if (a >= static_cast<double>(kMiB)) return fmt::format("{:.1f} MiB", v / kMiB);
  if (a >= static_cast<double>(kKiB)) return fmt::format("{:.1f} KiB", v / kKiB);
  return fmt::format("{} B", b.value());
}

std::string FormatCount(int64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.2f} B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.1f} M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f} K", v / 1e3);
  return fmt::format("{}", n);
}

namespace {

constexpr int kBarWidth = 28;

std::string Bar(Bytes part, Bytes scale) {
  if (scale.value() <= 0) return std::string();
  const double f = std::clamp(static_cast<double>(part.value()) / static_cast<double>(scale.value()), 0.0, 1.0);
  const int eighths = static_cast<int>(std::lround(f * kBarWidth * 8));
  static const char* kParts[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  std::string s;
  for (int i = 0; i < eighths / 8; ++i) s += "█";
  s += kParts[eighths % 8];
  return s;
}

void Rows(std::string& out, const Component& c, int depth, Bytes scale, Units u, int max_depth) {
  const std::string indent(static_cast<size_t>(2 + 2 * depth), ' ');
  const std::string label = indent + c.name;
  std::string line = fmt::format("{:<34}{:>11}", label, FormatBytes(c.bytes, u));
  if (depth == 0) line += "  " + fmt::format("{:<{}}", Bar(c.bytes, scale), 0);
  if (!c.formula.empty()) line += (depth == 0 ? "  " : "    ") + c.formula;
  out += line;
  out += '\n';
  if (depth + 1 > max_depth) return;
  for (const Component& ch : c.children) Rows(out, ch, depth + 1, scale, u, max_depth);
}

}  // namespace

std::string RenderEstimateText(const Estimate& e, Units u) { return RenderEstimateText(e, u, {}); }

std::string RenderEstimateText(const Estimate& e, Units u, const EstimateExtras& x) {
  std::string out;
  std::string settings;
  for (const auto& [k, v] : e.workload) {
    if (!settings.empty()) settings += ", ";
    settings += k + " ";
    std::visit([&](const auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, bool>) settings += x ? "on" : "off";
      else settings += fmt::format("{}", x);
    }, v);
  }
  out += fmt::format("{}\n  {}\n", e.model_id, settings);
  out += fmt::format("  params {}{}, weights {}{}\n\n", FormatCount(e.params),
                     e.active_params != e.params ? fmt::format(" ({} active)", FormatCount(e.active_params)) : "",
                     FormatBytes(e.weight_bytes, u),
                     e.kv_bytes_per_token.value() > 0 ? ", KV " + FormatBytes(e.kv_bytes_per_token, u) + " per token" : "");
  // Devices identical to the one before (data-parallel replicas) are
  // listed once.
  const auto same = [](const DeviceEstimate& a, const DeviceEstimate& b) {
    if (a.total != b.total || a.components.size() != b.components.size()) return false;
    if ((a.gpu ? a.gpu->name : "") != (b.gpu ? b.gpu->name : "")) return false;
    for (size_t i = 0; i < a.components.size(); ++i) {
      if (a.components[i].bytes != b.components[i].bytes) return false;
    }
    return true;
  };
  for (size_t i = 0; i < e.devices.size(); ++i) {
    const DeviceEstimate& d = e.devices[i];
    if (i > 0 && same(d, e.devices[i - 1])) {
      size_t j = i;
      while (j + 1 < e.devices.size() && same(e.devices[j + 1], d)) ++j;
      out += j == i ? fmt::format("{}: same as {}\n\n", d.name, e.devices[i - 1].name)
                    : fmt::format("{} .. {}: same as {}\n\n", d.name, e.devices[j].name, e.devices[i - 1].name);
      i = j;
      continue;
    }
    const Bytes scale = d.gpu ? std::max(d.gpu->capacity, d.total) : d.total;
    out += fmt::format("{}{}\n", d.name,
                       d.gpu ? fmt::format("  {} ({})", d.gpu->name, FormatBytes(d.gpu->capacity, u)) : "");
    for (const Component& c : d.components) Rows(out, c, 0, scale, u, 1);
    out += fmt::format("  {:<32}{:>11}\n",
                       d.gpu && IsApple(*d.gpu) ? "total (in Metal's working set)" : "total (as nvidia-smi shows)",
                       FormatBytes(d.total, u));
    if (d.allocated_peak) {
      out += fmt::format("  {:<32}{:>11}   reserved peak {}   peak at {}\n", "allocated peak",
                         FormatBytes(*d.allocated_peak, u),
                         d.reserved_peak ? FormatBytes(*d.reserved_peak, u) : "-", d.peak_phase);
    }
    if (d.gpu) {
      const Bytes cap = d.gpu->capacity;
      const double used = 100.0 * static_cast<double>(d.total.value()) / static_cast<double>(cap.value());
      if (e.failure && e.failure->device == d.name) {
        out += fmt::format("  DOES NOT START: {} ({:.0f}% of {}); see the failure below\n", e.failure->kind, used,
                           d.gpu->name);
      } else if (d.total <= cap) {
        out += fmt::format("  fits: {} headroom ({:.0f}% of {} used)\n", FormatBytes(cap - d.total, u), used,
                           d.gpu->name);
      } else {
        out += fmt::format("  DOES NOT FIT: {} over the {} {} ({:.0f}%)\n", FormatBytes(d.total - cap, u),
                           FormatBytes(cap, u), d.gpu->name, used);
      }
    }
    if (i < x.uncertainty.size()) {
      const Uncertainty& band = x.uncertainty[i];
      if (band.low && band.high) {
        out += fmt::format("  error band: {} \u2013 {} (p10\u2013p90 of the measured error over {} cases)\n",
                           FormatBytes(*band.low, u), FormatBytes(*band.high, u), band.n);
        if (DeviceVerdict(e, d, &band) == "tight") {
          out += fmt::format("  tight: fits, but within the error of this estimate \u2014 keep {} free\n",
                             FormatBytes(*band.high - d.total, u));
        }
      } else {
        // The basis up to its details (the JSON basis has them all).
        out += fmt::format("  error band: none ({})\n", band.basis.substr(0, std::min(band.basis.find(" ("),
                                                                                    band.basis.find(": no band"))));
      }
    }
    out += '\n';
  }
  // Host (CPU) memory the job keeps: layers left on the CPU, llama.cpp's
  // host buffers, offloaded optimizer states.
  if (!e.host.empty()) {
    const Bytes host_total = Total(e.host);
    out += "host memory (CPU RAM)\n";
    for (const Component& c : e.host) Rows(out, c, 0, host_total, u, 1);
    out += fmt::format("  {:<32}{:>11}\n\n", "total", FormatBytes(host_total, u));
  }
  if (e.kv_capacity_tokens) {
    out += fmt::format("KV pool: {} tokens{}\n", *e.kv_capacity_tokens,
                       e.kv_max_concurrency ? fmt::format(", max concurrency {} sequences", *e.kv_max_concurrency) : "");
  }
  if (e.fits) {
    const std::string verdict = EstimateVerdict(e, x.uncertainty);
    if (verdict == "tight") {
      // The largest margin a tight device needs: the band's high edge over its total.
      Bytes keep;
      for (size_t i = 0; i < e.devices.size() && i < x.uncertainty.size(); ++i) {
        const Uncertainty& band = x.uncertainty[i];
        if (DeviceVerdict(e, e.devices[i], &band) == "tight") keep = std::max(keep, *band.high - e.devices[i].total);
      }
      out += fmt::format("verdict: tight (fits, but within the error of this estimate \u2014 keep {} free)\n",
                         FormatBytes(keep, u));
    } else {
      out += "verdict: " + verdict + "\n";
    }
  }
  if (e.failure) {
    out += fmt::format("start-up failure: {} on {} (the engine's message is in the notes)\n", e.failure->kind,
                       e.failure->device);
  }
  if (!e.launch_flags.empty()) {
    std::string line;
    for (const std::string& w : e.launch_command) line += " " + w;
    for (const std::string& f : e.launch_flags) line += " " + f;
    out += (e.launch_command.empty() ? "launch flags:" : "launch command:") + line + "\n";
  }
  if (x.throughput) {
    const double prefill = x.throughput->prefill_tokens_per_s;
    out += fmt::format("throughput: decode ~{:.0f} tok/s per sequence ({:.0f} tok/s for the batch), prefill {}\n",
                       x.throughput->decode_tokens_per_s, x.throughput->decode_batch_tokens_per_s,
                       prefill > 0 ? fmt::format("~{:.0f} tok/s", prefill)
                                   : std::string("unknown (no TFLOPS figure for the GPU)"));
  }
  if (!x.fixes.empty()) {
    out += e.fits && !*e.fits ? "to make it fit (what fits first, cheapest first; then the rest by what they save):\n"
                              : "to gain headroom (each change alone):\n";
    for (const Fix& f : x.fixes) {
      out += fmt::format("  {:<44} total {:>11}  saves {:>11}  {}\n", f.change, FormatBytes(f.total, u),
                         FormatBytes(f.saves, u), f.fits ? "fits" : "still over");
      if (f.fits && !f.costs.empty()) out += fmt::format("      costs: {}\n", fmt::join(f.costs, "; "));
    }
  }
  if (!e.notes.empty()) {
    out += "notes:\n";
    for (const std::string& n : e.notes) out += "  - " + n + "\n";
  }
  if (x.throughput) out += "  - throughput: " + x.throughput->note + "\n";
  return out;
}

std::string RenderInspectText(const Inspection& in, Units u) {
  const Model& m = *in.model;
  const ModelSpec& s = m.spec;
  const Inventory& inv = m.inventory;
  std::string out;
  out += fmt::format("{}\n  {} (model_type {}), {}\n", s.id, s.architecture.empty() ? "?" : s.architecture,
                     s.model_type, Name(s.torch_dtype));
  const int64_t sliding = in.sliding_layers, moe = in.moe_layers;
  out += fmt::format("  layers {}, hidden {}, heads {} (kv {}), head_dim {}, vocab {}, max context {}\n",
                     s.num_hidden_layers, s.hidden_size, s.num_attention_heads, s.num_key_value_heads,
                     s.head_dim, s.vocab_size, s.max_position_embeddings);
  if (s.attn_kind == AttnKind::kMla) {
    out += fmt::format("  MLA: q_lora_rank {}, kv_lora_rank {}, rope {}, nope {}, v {}\n", s.q_lora_rank,
                       s.kv_lora_rank, s.qk_rope_head_dim, s.qk_nope_head_dim, s.v_head_dim);
  }
  if (s.topology != Topology::kDecoder) {
    out += fmt::format("  {}{}, head {}{}\n", TopologyName(s.topology),
                       s.topology == Topology::kEncoderDecoder
                           ? fmt::format(" ({} encoder + {} decoder layers)", s.num_hidden_layers, s.enc.decoder_layers)
                           : "",
                       HeadName(s.head),
                       s.head == HeadKind::kSeqCls || s.head == HeadKind::kTokenCls
                           ? fmt::format(" ({} labels)", s.num_labels)
                           : "");
  }
  if (s.num_experts > 0) {
    out += fmt::format("  MoE: {} experts, top {}, expert width {}, shared width {}, {} MoE layers\n",
                       s.num_experts, s.num_experts_per_tok, s.moe_intermediate_size,
                       s.shared_expert_intermediate_size, moe);
  }
  if (sliding > 0) out += fmt::format("  sliding window {} tokens on {} of {} layers\n", s.sliding_window, sliding, s.num_hidden_layers);
  if (IsHybridStack(s)) out += "  " + in.layer_pattern + "\n";
  out += fmt::format("\nparameters {} ({}){}\n", FormatCount(inv.params), inv.params,
                     inv.active_params != inv.params ? fmt::format(", active per token {} ({})", FormatCount(inv.active_params), inv.active_params) : "");
  if (s.topology != Topology::kDecoder && inv.base_params != inv.params) {
    out += fmt::format("  base model (AutoModel: the backbone without the task head) {}\n", inv.base_params);
  }
  if (s.published_params > 0) {
    // Encoders publish the base model's count (AutoModel.from_pretrained).
    const bool base = s.topology != Topology::kDecoder && s.published_params == inv.base_params &&
                      inv.base_params != inv.params;
    // A checkpoint that stores MTP layers (Qwen3-Next) publishes the
    // decoder plus those layers.
    const bool with_extra = inv.extra_params > 0 && s.published_params == inv.params + inv.extra_params;
    out += fmt::format("  published count {} ({})\n", s.published_params,
                       s.published_params == inv.params ? "matches"
                       : base                           ? "matches the base model"
                       : with_extra                     ? "matches the decoder plus the layers outside it"
                                                        : "differs: " + s.published_params_note);
  }
  if (inv.extra_params > 0) {
    out += fmt::format("  outside the text decoder: {} ({})\n", FormatCount(inv.extra_params), inv.extra_params);
  }
  out += fmt::format("\n{:<16}{:>16}{:>12}   ({})\n", "role", "params", "bytes", Name(s.torch_dtype));
  for (size_t r = 0; r < kRoleCount; ++r) {
    const int64_t p = inv.params_by_role[r];
    if (p == 0) continue;
    out += fmt::format("{:<16}{:>16}{:>12}\n", RoleName(static_cast<Role>(r)), p,
                       FormatBytes(StorageBytes(s.torch_dtype, p), u));
  }
  if (in.from_file) {
    // The checkpoint's exact tensors: weights are their sum, to the byte.
    const TensorRollup& all = in.file_all;
    out += fmt::format("\nfile tensors ({}): {} tensors, {} elements, weights {} bytes ({})\n", m.file_format,
                       all.tensors, all.elements, all.bytes, FormatBytes(Bytes(all.bytes), u));
    out += fmt::format("{:<16}{:>10}{:>16}{:>18}{:>12}\n", "dtype", "tensors", "elements", "bytes", "");
    for (const auto& [d, r] : in.file_by_dtype) {
      out += fmt::format("{:<16}{:>10}{:>16}{:>18}{:>12}\n", Name(d), r.tensors, r.elements, r.bytes,
                         FormatBytes(Bytes(r.bytes), u));
    }
    out += fmt::format("{:<16}{:>10}{:>16}{:>18}{:>12}   {}\n", "role", "tensors", "elements", "bytes", "", "dtypes");
    for (const auto& [role, r] : in.file_by_role) {
      out += fmt::format("{:<16}{:>10}{:>16}{:>18}{:>12}   {}\n", RoleName(role), r.tensors, r.elements, r.bytes,
                         FormatBytes(Bytes(r.bytes), u), r.types);
    }
  }
  if (s.topology == Topology::kEncoder) {
    out += "\nno KV cache: an encoder runs one bidirectional forward per batch\n";
  } else {
    out += s.topology == Topology::kEncoderDecoder
               ? "\nKV cache per generated token (decoder self-attention; cross-attention adds the same per "
                 "encoder token):\n"
               : IsHybridStack(s) ? fmt::format("\nKV cache per token ({} attention layers):\n", AttentionLayerCount(s))
                                  : "\nKV cache per token (all layers):\n";
  }
  for (size_t i = 0; s.topology != Topology::kEncoder && i < in.kv_by_dtype.size(); ++i) {
    const auto& [d, bytes] = in.kv_by_dtype[i];
    if (d == DType::kF32) continue;  // the JSON has it; the table starts at 16 bits
    std::string line = fmt::format("  {:<10}{:>12}", Name(d), FormatBytes(bytes, u));
    if (!in.kv_expanded_by_dtype.empty()) {
      line += fmt::format("   (latent; per-head K/V {})", FormatBytes(in.kv_expanded_by_dtype[i].second, u));
    }
    out += line + "\n";
  }
  if (IsHybridStack(s)) {
    const StateElements st = StateElementsPerSequence(s, ConvWindow::kKernelMinus1);
    out += fmt::format("recurrent state per sequence ({} layers, {}): {} (conv {} + state {} elements; "
                       "transformers keeps d_conv columns: {} conv elements)\n",
                       RecurrentLayerCount(s), Name(s.torch_dtype), FormatBytes(in.state_bytes_per_sequence, u),
                       st.conv, st.ssm, StateElementsPerSequence(s, ConvWindow::kKernel).conv);
  }
  if (!in.notes.empty()) {
    out += "notes:\n";
    for (const std::string& n : in.notes) out += "  - " + n + "\n";
  }
  return out;
}

std::string RenderModelsText(const std::vector<const CatalogModel*>& models) {
  std::string out = fmt::format("{:<52}{:<26}{}\n", "id", "alias", "display");
  for (const CatalogModel* m : models) {
    out += fmt::format("{:<52}{:<26}{}\n", m->id, m->aliases.empty() ? "" : m->aliases[0], m->display);
  }
  out += fmt::format("{} models\n", models.size());
  return out;
}

namespace {

// A catalog figure, or "?" where the catalog has none (unknown, never 0).
std::string Figure(double v, int decimals) { return v > 0 ? fmt::format("{:.{}f}", v, decimals) : "?"; }

}  // namespace

std::string RenderGpusText(const std::vector<const GpuSpec*>& gpus, Units u) {
  std::string out = fmt::format("{:<24}{:>12}{:>8}{:>8}{:>8}  {}\n", "name", "memory", "GB/s", "bf16", "fp16",
                                "also matched as (TFLOPS: dense; ?: unknown)");
  bool apple = false;
  for (const GpuSpec* g : gpus) {
    apple = apple || IsApple(*g);
    out += fmt::format("{:<24}{:>12}{:>8}{:>8}{:>8}  {}\n", g->name + (IsApple(*g) ? "*" : ""),
                       FormatBytes(g->capacity, u), Figure(g->bandwidth_gb_s, 0), Figure(g->bf16_tflops, 1),
                       Figure(g->fp16_tflops, 1), g->aliases.empty() ? "" : g->aliases[0]);
  }
  if (apple) out += "* Apple: memory is Metal's working-set limit (recommendedMaxWorkingSetSize), not the RAM\n";
  out += fmt::format("{} GPUs\n", gpus.size());
  return out;
}

}  // namespace vramfit

#include "vramfit/estimate.h"

#include <cstring>

#include <algorithm>
#include <map>
#include <string_view>

#include <fmt/format.h>

#include "formula.h"
#include "runtimes/profile.h"
#include "runtimes/runtimes.h"

namespace vramfit {
namespace runtimes {

LayerRange StageLayers(int64_t num_layers, int64_t stages, int64_t stage) {
  // Even split, the remainder spread over the first stages.
  const int64_t base = num_layers / stages;
  const int64_t extra = num_layers % stages;
  LayerRange r;
  r.first = stage * base + std::min(stage, extra);
  r.last = r.first + base + (stage < extra ? 1 : 0);
  return r;
}

Component WeightsComponent(const Model& model, const WeightFormat& fmt, DType dense,
                           LayerRange range, bool first_stage, bool last_stage, int64_t tp) {
  const ModelSpec& s = model.spec;

  // Parts summed by name, in a fixed array (no allocation per estimate): a
  // role holds at most the parts of one quantized layout (3) and the dense
  // dtype; an overflow would show as a broken tree (CheckTree).
  struct RoleAcc {
    Bytes bytes;
    StoragePart parts[8];
    size_t n = 0;
  };
  RoleAcc acc[kRoleCount];
  constexpr size_t kRoles = sizeof(acc) / sizeof(acc[0]);
  for (size_t gi = 0; gi < model.inventory.groups.size(); ++gi) {
    const TensorGroup& g = model.inventory.groups[gi];
    int64_t copies = g.count;
    // A device that holds every layer holds every copy (an encoder-decoder's
    // decoder groups span its decoder layers, not num_hidden_layers).
    const bool all_layers = range.first == 0 && range.last == s.num_hidden_layers;
    if (g.layers > 0 && !all_layers) {
      // The range's layers of the group's kind (dense / MoE / hybrid class).
      copies = g.count / g.layers * GroupLayersIn(s, g, range.first, range.last);
    } else if (g.role == Role::kLmHead || (g.role == Role::kNorm && g.name == "norm.weight") ||
               (g.role == Role::kNorm && g.name == "norm.bias")) {
      // The final norm and the head sit with the last layers.
      if (!last_stage) copies = 0;
    } else if (!first_stage) {
      copies = 0;
    }
    if (copies == 0) continue;
    const bool split = tp > 1 && (g.linear || g.role == Role::kEmbed);
    RoleAcc& a = acc[static_cast<size_t>(g.role)];
    // The checkpoint's per-module exceptions (modules_to_not_convert...)
    // store some of these tensors another way.
    int64_t by_kind[ModuleExceptions::kMaxKinds + 1];
    const size_t kinds = SplitByExceptions(fmt, gi, range.first, range.last, copies, by_kind);
    for (size_t kind = 0; kind < kinds; ++kind) {
      if (by_kind[kind] == 0) continue;
      const StorageParts parts =
          kind == 0 ? TensorStorage(g, fmt, dense)
                    : TensorStorage(g, ExceptionFormat(fmt, fmt.exceptions->kinds[kind - 1]), dense);
      for (const StoragePart& p : parts) {
        Bytes b = p.bytes * by_kind[kind];
        if (split) b = Bytes(CeilDiv(b.value(), tp));
        a.bytes += b;
        bool merged = false;
        for (size_t k = 0; k < a.n; ++k) {
          if (std::strcmp(a.parts[k].what, p.what) == 0) { a.parts[k].bytes += b; merged = true; break; }
        }
        if (!merged && a.n < 8) a.parts[a.n++] = {p.what, b};
      }
    }
  }
  std::vector<Component> children;
  children.reserve(kRoles);
  for (size_t r = 0; r < kRoles; ++r) {
    if (acc[r].bytes.value() == 0) continue;
    std::vector<Component> parts;
    std::string formula;
    if (acc[r].n > 1) {
      parts.reserve(acc[r].n);
      for (size_t k = 0; k < acc[r].n; ++k) parts.push_back(Leaf(acc[r].parts[k].what, acc[r].parts[k].bytes));
    } else if (FormulasOn()) {
      formula = acc[r].parts[0].what;
    }
    Component c = parts.empty() ? Leaf(RoleName(static_cast<Role>(r)), acc[r].bytes, formula)
                                : Parent(RoleName(static_cast<Role>(r)), std::move(parts));
    children.push_back(std::move(c));
  }
  return Parent("weights", std::move(children),
                Formula("{} layers{}", range.size(), tp > 1 ? Formula(" / tp {}", tp) : ""));
}

Component FileWeightsComponent(const Model& model, DType dense, bool cast_floats, LayerRange range,
                               bool first_stage, bool last_stage, int64_t tp) {
  std::vector<Bytes> by_role(11);
  std::vector<std::string> types(11);
  for (const FileTensor& t : model.file_tensors) {
    bool here;
    if (t.layer >= 0) here = t.layer >= range.first && t.layer < range.last;
    else if (t.role == Role::kLmHead || t.name.find("output_norm") != std::string::npos ||
             t.name == "model.norm.weight" || t.name == "output.weight")
      here = last_stage;
    else here = first_stage;
    if (!here) continue;
    Bytes b(t.bytes);
    DType shown = t.dtype;
    // Quantization side tensors (FP8 weight_scale_inv / input_scale, bnb
    // absmax / quant_map, GPTQ scales) keep their stored dtype: transformers
    // loads them as they are, not in torch_dtype.
    // NVFP4 adds weight_scale_2 (modelopt) and weight_global_scale /
    // input_global_scale (compressed-tensors), fbgemm input_scale_ub.
    static constexpr std::string_view kAux[] = {"_scale_inv", "_scale", ".scales", "absmax", "quant_map",
                                                "_scale_2", "_scale_ub", "_zero_point"};
    const bool aux = std::any_of(std::begin(kAux), std::end(kAux), [&](std::string_view x) {
      return t.name.size() >= x.size() && t.name.compare(t.name.size() - x.size(), x.size(), x) == 0;
    });
    if (cast_floats && !aux && (t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16)) {
      int64_t n = 1;
      for (int64_t d : t.shape) n = CheckedMul(n, d);
      b = StorageBytes(dense, n);
      shown = dense;
    }
    if (tp > 1 && t.shape.size() >= 2) b = Bytes(CeilDiv(b.value(), tp));
    const size_t r = static_cast<size_t>(t.role);
    by_role[r] += b;
    if (FormulasOn()) {
      const std::string name = Name(shown);
      if (types[r].find(name) == std::string::npos) types[r] += (types[r].empty() ? "" : "+") + name;
    }
  }
  std::vector<Component> children;
  for (size_t r = 0; r < by_role.size(); ++r) {
    if (by_role[r].value() == 0) continue;
    children.push_back(Leaf(RoleName(static_cast<Role>(r)), by_role[r], types[r]));
  }
  return Parent("weights", std::move(children),
                Formula("{} layers from {} tensors{}", range.size(), model.file_format,
                        tp > 1 ? Formula(" / tp {}", tp) : ""));
}

void NoteContextOverMax(const Model& model, const InferenceWorkload& w,
                        std::vector<std::string>* notes) {
  const int64_t max_pos = model.spec.max_position_embeddings;
  if (notes && max_pos > 0 && w.ctx > max_pos) {
    notes->push_back(fmt::format(
        "context {} exceeds the model's max_position_embeddings ({}); memory is still estimated",
        w.ctx, max_pos));
  }
}

int64_t CachedTokens(const ModelSpec& spec, int64_t layer, int64_t ctx, bool window_aware) {
  if (window_aware && spec.sliding_window > 0 &&
      spec.layers[layer].attention == LayerAttention::kSliding) {
    return std::min(ctx, spec.sliding_window);
  }
  return ctx;
}

}  // namespace runtimes

void FinishVerdict(Estimate& e) {
  e.total = Bytes(0);
  bool any_gpu = false;
  bool all_fit = true;
  for (const DeviceEstimate& d : e.devices) {
    if (d.total > e.total) e.total = d.total;
    if (d.gpu) {
      any_gpu = true;
      if (d.total > d.gpu->capacity) all_fit = false;
    }
  }
  if (any_gpu) e.fits = all_fit;
  if (e.failure) e.fits = false;  // the engine refuses to start
}

namespace runtimes {

// A device's totals against its components: total = the sum of the
// top-level components (what nvidia-smi shows is every buffer, the context
// and the allocator's slack), and for PyTorch runtimes allocated <= reserved
// <= total. An estimator that breaks this is a bug, caught here in
// production, not only in tests.
Status CheckDeviceTotals(const DeviceEstimate& d) {
  Bytes sum;
  for (const Component& c : d.components) sum += c.bytes;
  if (sum != d.total) {
    return Error{ErrorKind::kInternal, fmt::format("breakdown {}: total {} bytes but its components sum to {}",
                                                   d.name, d.total.value(), sum.value())};
  }
  if (d.reserved_peak && *d.reserved_peak > d.total) {
    return Error{ErrorKind::kInternal, fmt::format("breakdown {}: reserved peak {} bytes above the total {}",
                                                   d.name, d.reserved_peak->value(), d.total.value())};
  }
  if (d.allocated_peak && d.reserved_peak && *d.allocated_peak > *d.reserved_peak) {
    return Error{ErrorKind::kInternal, fmt::format("breakdown {}: allocated peak {} bytes above the reserved {}",
                                                   d.name, d.allocated_peak->value(), d.reserved_peak->value())};
  }
  return {};
}

namespace {

// A device read off this machine (--gpu local) carries the memory other
// processes already hold: nvidia-smi's total then shows it next to the
// job's own, and the verdict counts it.
void AddOtherProcesses(Estimate& e) {
  for (DeviceEstimate& d : e.devices) {
    if (!d.gpu || d.gpu->detected.empty()) continue;
    const double gib = static_cast<double>(kGiB);
    if (!d.gpu->in_use_known) {
      e.notes.push_back(fmt::format("{}: {} ({}) reports no memory figures (unified memory): the catalog's "
                                    "capacity is used and memory other processes hold is not counted",
                                    d.name, d.gpu->detected_name, d.gpu->detected));
      continue;
    }
    e.notes.push_back(fmt::format(
        "{}: {} as {} reports it: {:.2f} GiB, of which {:.2f} GiB is already in use by other processes "
        "(counted as other_processes)",
        d.name, d.gpu->detected_name, d.gpu->detected, static_cast<double>(d.gpu->capacity.value()) / gib,
        static_cast<double>(d.gpu->in_use.value()) / gib));
    if (d.gpu->in_use.value() <= 0) continue;
    d.components.push_back(Leaf("other_processes", d.gpu->in_use,
                                fmt::format("memory.used on this GPU when vramfit ran ({})", d.gpu->detected)));
    d.total += d.gpu->in_use;
  }
}

// The runtime family a calibrated term belongs to: every PyTorch process
// (hf inference, each training stack) shares one CUDA context term.
std::string CalibrationFamily(const Estimate& e) {
  std::string mode, runtime;
  for (const auto& [k, v] : e.workload) {
    if (k == "mode" && std::holds_alternative<std::string>(v)) mode = std::get<std::string>(v);
    if (k == "runtime" && std::holds_alternative<std::string>(v)) runtime = std::get<std::string>(v);
  }
  if (mode == "train" || runtime == "hf") return "pytorch";
  return runtime;
}

// This machine's measured terms (vramfit check --save) in place of the
// estimate's assumed ones. Only additive terms outside the physics are
// calibrated, so the rest of the breakdown is unchanged.
void ApplyCalibration(Estimate& e) {
  if (std::none_of(e.devices.begin(), e.devices.end(),
                   [](const DeviceEstimate& d) { return d.gpu && !d.gpu->calibration.empty(); })) {
    return;  // the common case, and the planner's hot path: no workload scan
  }
  const std::string family = CalibrationFamily(e);
  std::map<std::string, size_t> replaced_on;  // component -> devices that replaced it
  for (DeviceEstimate& d : e.devices) {
    if (!d.gpu) continue;
    for (const CalibratedTerm& t : d.gpu->calibration) {
      if (t.runtime != family) continue;
      for (Component& c : d.components) {
        if (c.name != t.component) continue;
        const Bytes assumed = c.bytes;
        ++replaced_on[t.component];
        c = Leaf(t.component, t.bytes,
                 t.given ? fmt::format("as given: {}", t.source) : fmt::format("calibrated on this machine: {}", t.source));
        d.total = d.total - assumed + t.bytes;
        if (t.given) {
          e.notes.push_back(fmt::format("{}: {} is {} MiB as given by {} (the assumption was {} MiB)", d.name,
                                        t.component, t.bytes.value() / kMiB, t.source, assumed.value() / kMiB));
        } else {
          e.notes.push_back(fmt::format(
              "{}: {} is this machine's calibration ({} MiB in place of the assumed {} MiB; {}); "
              "--no-calibration ignores it",
              d.name, t.component, t.bytes.value() / kMiB, assumed.value() / kMiB, t.source));
        }
      }
    }
  }
  // The runtime's note on the assumed figure ("cuda_context is 512 MiB per
  // process ...") no longer holds where every device replaced it.
  for (const auto& [comp, devices] : replaced_on) {
    if (devices != e.devices.size()) continue;
    std::erase_if(e.notes, [&comp = comp](const std::string& n) {
      return n.size() > comp.size() && n.compare(0, comp.size(), comp) == 0 &&
             (n[comp.size()] == ' ' || n[comp.size()] == ':');
    });
  }
}

// Apple silicon runs Metal (llama.cpp's ggml-metal, PyTorch MPS): no CUDA
// context, so a runtime's "cuda_context" component is dropped there; and the
// capacity is Metal's working-set limit, which a note names
// (docs/estimation.md "Device capacity").
void AppleDevices(Estimate& e) {
  const GpuSpec* apple = nullptr;
  for (DeviceEstimate& d : e.devices) {
    if (!d.gpu || !IsApple(*d.gpu)) continue;
    apple = &*d.gpu;
    auto& c = d.components;
    auto it = std::find_if(c.begin(), c.end(), [](const Component& x) { return x.name == "cuda_context"; });
    if (it == c.end()) continue;
    d.total = d.total - it->bytes;
    c.erase(it);
  }
  if (!apple) return;
  std::erase_if(e.notes, [](const std::string& n) { return n.rfind("cuda_context", 0) == 0; });
  e.notes.push_back(fmt::format(
      "{}: judged against {} ({}), not its {} GiB of RAM; no CUDA context on Metal{}", apple->name,
      apple->wired_limit ? fmt::format("--wired-limit {} MiB", apple->capacity.value() / kMiB)
                         : fmt::format("Metal's working-set limit {} MiB", apple->capacity.value() / kMiB),
      apple->wired_limit ? "iogpu.wired_limit_mb" : "recommendedMaxWorkingSetSize", apple->ram.value() / kGiB,
      apple->wired_limit ? "" : "; raise the limit with sudo sysctl iogpu.wired_limit_mb=N and give --wired-limit N"));
}

}  // namespace

Status FinishEstimate(Estimate& e, const EstimateOptions& options) {
  AppleDevices(e);
  ApplyCalibration(e);
  AddOtherProcesses(e);
  for (const DeviceEstimate& d : e.devices) {
    Status st = CheckTree(d.components);
    if (!st.ok()) return st;
    st = CheckDeviceTotals(d);
    if (!st.ok()) return st;
  }
  FinishVerdict(e);
  if (!options.formulas) e.notes.clear();  // numbers-only: no notes either
  return {};
}

Error OverflowToError(const OverflowError& ex) {
  return Error{ErrorKind::kInvalidArgument,
               fmt::format("estimate: the settings overflow 64-bit byte counts ({})", ex.what())};
}

}  // namespace runtimes

Result<Estimate> EstimateInference(const Model& model, const InferenceWorkload& w,
                                   const DeviceSet& devices, const EstimateOptions& options) {
  const FormulaScope formulas(options.formulas);
  Estimate e;
  try {
    e.model_id = model.spec.id;
    e.params = model.inventory.params;
    e.active_params = model.inventory.active_params;
    {
      const runtimes::RuntimeProfile& profile = runtimes::ProfileFor(w.runtime);
      Status st = profile.Estimate(model, w, devices, e);
      if (!st.ok()) return st.error();
      if (!e.launch_flags.empty()) e.launch_command = profile.LaunchCommand(model);
    }
    Status st = runtimes::FinishEstimate(e, options);
    if (!st.ok()) return st.error();
  } catch (const OverflowError& ex) {
    return runtimes::OverflowToError(ex);
  }
  return e;
}

}  // namespace vramfit

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "cli/cli.h"

namespace vramfit::cli {

Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& value) {
  const char* s = value.c_str();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (value.empty() || end == s || *end != '\0' || errno == ERANGE) {
    return InvalidArgument(fmt::format("{}: expected an integer, got '{}'", flag, value));
  }
  return static_cast<int64_t>(v);
}

Result<Units> ToUnits(const std::string& s) {
  if (s == "gib" || s == "GiB") return Units::kGiB;
  if (s == "gb" || s == "GB") return Units::kGB;
  return InvalidArgument(fmt::format("--units: expected gib or gb, got '{}'", s));
}

namespace {

Result<DType> ComputeDType(const std::string& flag, const std::string& v) {
  auto d = ParseDType(v);
  if (!d || (*d != DType::kF32 && *d != DType::kF16 && *d != DType::kBF16)) {
    return InvalidArgument(fmt::format("{}: expected fp32, fp16 or bf16, got '{}'", flag, v));
  }
  return *d;
}

}  // namespace

Result<InferenceSettings> ToInferenceSettings(const RawFlags& f) {
  InferenceSettings s;
  auto rt = ParseRuntime(f.runtime);
  if (!rt.ok()) return rt.error();
  s.runtime = *rt;
  if (f.dtype) {
    auto d = ComputeDType("--dtype", *f.dtype);
    if (!d.ok()) return d.error();
    s.dtype = *d;
  }
  if (f.quant) {
    auto q = ParseWeightFormat(*f.quant);
    if (!q.ok()) return q.error();
    s.quant = *q;
  }
  const auto int_flag = [](const char* name, const std::optional<std::string>& v,
                           std::optional<int64_t>* out) -> Status {
    if (!v) return {};
    auto r = ParseIntFlag(name, *v);
    if (!r.ok()) return r.error();
    *out = *r;
    return {};
  };
  std::optional<int64_t> batch, tp, pp;
  VRAMFIT_TRY(int_flag("--batch", f.batch, &batch));
  VRAMFIT_TRY(int_flag("--ctx", f.ctx, &s.ctx));
  VRAMFIT_TRY(int_flag("--prompt", f.prompt, &s.prompt));
  VRAMFIT_TRY(int_flag("--new", f.new_tokens, &s.new_tokens));
  VRAMFIT_TRY(int_flag("--tp", f.tp, &tp));
  VRAMFIT_TRY(int_flag("--pp", f.pp, &pp));
  if (batch) s.batch = *batch;
  if (tp) s.tp = *tp;
  if (pp) s.pp = *pp;
  if (f.kv_dtype && *f.kv_dtype != "auto") {
    auto d = ParseDType(*f.kv_dtype);
    if (!d) {
      return InvalidArgument(fmt::format(
          "--kv-dtype: expected auto, fp16, bf16, fp8, q8_0 or q4_0, got '{}'", *f.kv_dtype));
    }
    s.kv_dtype = *d;
  }
  if (f.transformers) {
    auto v = ParseHfVersion(*f.transformers);
    if (!v.ok()) return v.error();
    s.hf_version = *v;
  }
  if (f.attn) {
    auto a = ParseAttn(*f.attn);
    if (!a.ok()) return a.error();
    s.attn = *a;
  }
  return s;
}

Result<DeviceSet> ToDevices(const RawFlags& f, const GpuCatalog& catalog) {
  DeviceSet set;
  for (const std::string& g : f.gpus) {
    Status st = AddGpus(g, catalog, &set);
    if (!st.ok()) return st.error();
  }
  return set;
}

}  // namespace vramfit::cli

// A checkpoint's quantization_config as a WeightFormat: the method's layout
// and its per-module rules (modules_to_not_convert, compressed-tensors
// ignore, GPTQ/AutoRound dynamic) resolved over the inventory. Semantics
// of each rule kind and their sources: docs/formats.md, "Checkpoint formats".
#include <algorithm>
#include <regex>

#include <fmt/format.h>

#include "vramfit/check.h"
#include "vramfit/quant.h"

namespace vramfit {
namespace {

using Rule = CheckpointQuant::ModuleRule;

// fnmatch without character classes: * any run, ? one character.
bool GlobMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

// Module-name regexes vramfit runs: at most 256 characters and no
// quantified group ("(a*)*"), so std::regex's backtracking stays linear in
// practice on names of a few dozen characters.
bool SafeRegex(const std::string& p) {
  if (p.size() > 256) return false;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    if (p[i] == ')' && (p[i + 1] == '*' || p[i + 1] == '+' || p[i + 1] == '{')) return false;
  }
  return true;
}

// One rule, its regex compiled once.
struct Compiled {
  const Rule* rule = nullptr;
  std::optional<std::regex> re;
  bool matched = false;
};

bool Matches(const Compiled& c, const std::string& name) {
  switch (c.rule->match) {
    case Rule::Match::kExact: return name == c.rule->pattern;
    case Rule::Match::kGlob: return GlobMatch(c.rule->pattern, name);
    case Rule::Match::kHfKey:
      if (name.size() >= c.rule->pattern.size() &&
          name.compare(name.size() - c.rule->pattern.size(), c.rule->pattern.size(), c.rule->pattern) == 0) {
        return true;
      }
      [[fallthrough]];
    case Rule::Match::kRegex:
      // Python re.match: anchored at the start, not at the end.
      try {
        return std::regex_search(name, *c.re, std::regex_constants::match_continuous);
      } catch (const std::regex_error&) {
        return false;  // unreachable for patterns SafeRegex accepted
      }
  }
  return false;
}

// The transformers module name of group g's tensor in `layer`, `expert`:
// "layers.*.mlp.experts.*.down_proj.weight" -> "model.layers.3.mlp.experts.7.down_proj".
std::string ModuleName(const ModelSpec& s, const TensorGroup& g, int64_t layer, int64_t expert) {
  std::string n = g.name;
  constexpr std::string_view kWeight = ".weight";
  if (n.size() > kWeight.size() && n.compare(n.size() - kWeight.size(), kWeight.size(), kWeight) == 0) {
    n.resize(n.size() - kWeight.size());
  }
  size_t star = n.find('*');
  if (star != std::string::npos) {
    n.replace(star, 1, std::to_string(layer));
    star = n.find('*');
    if (star != std::string::npos) n.replace(star, 1, std::to_string(expert));
  }
  // Routers: "mlp.gate" in Qwen-MoE/DeepSeek/Mixtral-style decoders; gpt-oss
  // (the one with a router bias) names it "mlp.router".
  if (!s.router_bias) {
    const size_t r = n.find(".mlp.router");
    if (r != std::string::npos) n.replace(r, 11, ".mlp.gate");
  }
  if (n == "lm_head") return n;
  return "model." + n;
}

struct Resolver {
  const ModelSpec& spec;
  const WeightFormat& base;
  std::vector<Compiled> rules;
  ModuleExceptions ex;

  // The kind the first matching rule gives `name`, or nullopt (the format).
  Result<std::optional<size_t>> KindOf(const std::string& name) {
    for (size_t ci = 0; ci < rules.size(); ++ci) {
      Compiled& c = rules[ci];
      if (!Matches(c, name)) continue;
      c.matched = true;
      if (c.rule->unordered) {
        // First match wins in the file's key order, which a JSON object
        // read here does not keep: two matching rules must agree.
        for (size_t cj = ci + 1; cj < rules.size(); ++cj) {
          const Rule& o = *rules[cj].rule;
          if (!o.unordered || !Matches(rules[cj], name)) continue;
          if (o.dense != c.rule->dense || o.bits != c.rule->bits || o.group_size != c.rule->group_size) {
            return Unsupported(fmt::format(
                "config.json quantization_config: {} '{}' and '{}' both match {} with different "
                "settings; the first in the file wins and vramfit does not keep key order",
                c.rule->source, c.rule->pattern.substr(0, 60), o.pattern.substr(0, 60), name));
          }
        }
      }
      ModuleExceptions::Kind k;
      k.dense = c.rule->dense;
      if (!k.dense) {
        k.bits = c.rule->bits != 0 && c.rule->bits != base.bits ? c.rule->bits : 0;
        k.group_size =
            c.rule->group_size != 0 && c.rule->group_size != base.group_size ? c.rule->group_size : 0;
        if (k.bits == 0 && k.group_size == 0) return std::optional<size_t>();
      }
      for (size_t i = 0; i < ex.kinds.size(); ++i) {
        const ModuleExceptions::Kind& o = ex.kinds[i];
        if (o.dense == k.dense && o.bits == k.bits && o.group_size == k.group_size) return std::optional<size_t>(i);
      }
      if (ex.kinds.size() == ModuleExceptions::kMaxKinds) {
        return Unsupported(fmt::format(
            "quantization_config: more than {} distinct per-module overrides ({} '{}') are not modelled",
            ModuleExceptions::kMaxKinds, c.rule->source, c.rule->pattern));
      }
      ex.kinds.push_back(k);
      return std::optional<size_t>(ex.kinds.size() - 1);
    }
    return std::optional<size_t>();
  }

  void Add(size_t gi, int64_t layer, size_t kind, int64_t count) {
    if (!ex.at.empty()) {
      ModuleExceptions::At& b = ex.at.back();
      if (b.group == gi && b.layer == layer && b.kind == kind) {
        b.count += count;
        return;
      }
    }
    ex.at.push_back({gi, layer, count, kind});
  }

  Status Group(size_t gi, const TensorGroup& g) {
    if (g.layers <= 0) {
      auto k = KindOf(ModuleName(spec, g, 0, 0));
      if (!k.ok()) return k.error();
      if (*k) Add(gi, -1, **k, g.count);
      return {};
    }
    const int64_t per_layer = g.count / g.layers;
    const bool experts = std::count(g.name.begin(), g.name.end(), '*') > 1;
    for (int64_t i = 0; i < spec.num_hidden_layers; ++i) {
      if (!GroupInLayer(g, spec.layers[static_cast<size_t>(i)])) continue;
      if (!experts) {
        auto k = KindOf(ModuleName(spec, g, i, 0));
        if (!k.ok()) return k.error();
        if (*k) Add(gi, i, **k, per_layer);
        continue;
      }
      for (int64_t e = 0; e < per_layer; ++e) {
        auto k = KindOf(ModuleName(spec, g, i, e));
        if (!k.ok()) return k.error();
        if (*k) Add(gi, i, **k, 1);
      }
    }
    return {};
  }
};

// The method's layout, without rules.
Result<WeightFormat> BaseFormat(const CheckpointQuant& q) {
  WeightFormat f;
  f.scale_per_row = q.scale_per_row;
  f.scale_dtype = q.scale_dtype;
  f.zero_point = q.zero_point;
  f.act_scale_bytes = q.act_scale_bytes;
  f.all_linear = q.all_linear;
  if (q.method == "fp8") {
    f.method = QuantMethod::kFp8;
    f.block_rows = q.block_rows;
    f.block_cols = q.block_cols;
  } else if (q.method == "int8") {
    f.method = QuantMethod::kInt8Scaled;
  } else if (q.method == "nvfp4") {
    f.method = QuantMethod::kNvfp4;
  } else if (q.method == "mxfp8") {
    f.method = QuantMethod::kMxfp8;
  } else if (q.method == "mxfp4") {
    f.method = QuantMethod::kMxfp4;
  } else if (q.method == "gptq" || q.method == "awq") {
    f.method = q.method == "gptq" ? QuantMethod::kGptq : QuantMethod::kAwq;
    f.bits = q.bits;
    f.group_size = q.group_size;
  } else if (q.method == "bitsandbytes") {
    if (q.bits == 8) f.method = QuantMethod::kInt8;
    else f.method = q.nf4 ? QuantMethod::kNf4 : QuantMethod::kFp4;
    f.double_quant = q.double_quant;
  } else {
    return Unsupported(fmt::format(
        "config.json quantization_config: quant_method '{}' is not modelled; --quant none sizes "
        "the weights dequantized, or give another --quant",
        q.method));
  }
  return f;
}

}  // namespace

bool RuleMatches(const CheckpointQuant::ModuleRule& r, std::string_view module) {
  Compiled c{&r, std::nullopt, false};
  if (r.match == Rule::Match::kRegex || r.match == Rule::Match::kHfKey) {
    if (!SafeRegex(r.pattern)) return false;
    try {
      c.re.emplace(r.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error&) {
      return false;
    }
  }
  return Matches(c, std::string(module));
}

Result<WeightFormat> FormatFromCheckpoint(const CheckpointQuant& q, const ModelSpec& spec,
                                          const Inventory& inv, std::vector<std::string>* notes) {
  Result<WeightFormat> based = BaseFormat(q);
  if (!based.ok()) return based.error();
  WeightFormat f = std::move(based).value();
  if (q.rules.empty()) return f;
  Resolver r{spec, f, {}, {}};
  r.rules.reserve(q.rules.size());
  for (const Rule& rule : q.rules) {
    Compiled c{&rule, std::nullopt, false};
    if (rule.match == Rule::Match::kRegex || rule.match == Rule::Match::kHfKey) {
      if (!SafeRegex(rule.pattern)) {
        return Unsupported(fmt::format(
            "config.json quantization_config: {} '{}': a quantified group or a pattern over 256 "
            "characters is not evaluated",
            rule.source, rule.pattern.substr(0, 80)));
      }
      try {
        c.re.emplace(rule.pattern, std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        return Unsupported(fmt::format("config.json quantization_config: {} '{}': a regex vramfit cannot read",
                                       rule.source, rule.pattern.substr(0, 80)));
      }
    }
    r.rules.push_back(std::move(c));
  }
  for (size_t gi = 0; gi < inv.groups.size(); ++gi) {
    if (!IsQuantized(inv.groups[gi], f)) continue;
    VRAMFIT_TRY(r.Group(gi, inv.groups[gi]));
  }
  if (notes) {
    for (const Compiled& c : r.rules) {
      if (c.matched) continue;
      notes->push_back(fmt::format(
          "quantization_config {} '{}' matches no quantized module vramfit names (fine where the "
          "module does not exist, as a tied lm_head)",
          c.rule->source, c.rule->pattern.substr(0, 80)));
    }
  }
  if (!r.ex.at.empty()) f.exceptions = std::make_shared<const ModuleExceptions>(std::move(r.ex));
  return f;
}

WeightFormat ExceptionFormat(const WeightFormat& f, const ModuleExceptions::Kind& k) {
  WeightFormat o = f;
  o.exceptions.reset();
  if (k.dense) {
    o = WeightFormat{};
    return o;
  }
  if (k.bits != 0) o.bits = k.bits;
  if (k.group_size != 0) o.group_size = k.group_size;
  return o;
}

size_t SplitByExceptions(const WeightFormat& f, size_t gi, int64_t first, int64_t last,
                         int64_t copies, int64_t out[ModuleExceptions::kMaxKinds + 1]) {
  out[0] = copies;
  if (!f.exceptions) return 1;
  const ModuleExceptions& ex = *f.exceptions;
  const size_t n = ex.kinds.size() + 1;
  for (size_t k = 1; k < n; ++k) out[k] = 0;
  auto it = std::lower_bound(ex.at.begin(), ex.at.end(), gi,
                             [](const ModuleExceptions::At& a, size_t g) { return a.group < g; });
  for (; it != ex.at.end() && it->group == gi; ++it) {
    if (it->layer >= 0 && (it->layer < first || it->layer >= last)) continue;
    if (it->layer < 0 && copies == 0) continue;  // a stage that does not hold the group
    out[it->kind + 1] += it->count;
    out[0] -= it->count;
  }
  if (out[0] < 0) out[0] = 0;  // REQUIRES-level guard: copies counted for the same range
  return n;
}

Bytes GroupBytes(const TensorGroup& g, size_t gi, const WeightFormat& f, DType dense) {
  int64_t split[ModuleExceptions::kMaxKinds + 1];
  const size_t n = SplitByExceptions(f, gi, 0, INT64_MAX, g.count, split);
  Bytes b = TensorBytes(g, f, dense) * split[0];
  for (size_t k = 1; k < n; ++k) {
    if (split[k] > 0) b += TensorBytes(g, ExceptionFormat(f, f.exceptions->kinds[k - 1]), dense) * split[k];
  }
  return b;
}

}  // namespace vramfit

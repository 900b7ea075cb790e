// The settings table (include/vramfit/app/settings.h): upstream aliases give
// exactly the canonical estimate, token and GPU spellings, and every setting
// given where it does not apply is refused with one line (CLI exit 2, web 400).
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "vramfit/app/app.h"
#include "vramfit/app/settings.h"
#include "vramfit/catalog.h"
#include "vramfit/runtime.h"
#include "web/api.h"

namespace vramfit {
namespace {

using testing::Cli;
using testing::CliRun;

std::vector<std::string> With(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

// An alias is the canonical flag under another name: the same document.
TEST(SettingsTest, AliasesGiveTheCanonicalEstimate) {
  const std::vector<std::string> llama = {"infer", "meta-llama/Llama-3.1-8B", "--json"};
  const struct {
    std::vector<std::string> alias, canonical;
  } cases[] = {
      // vLLM (vllm/engine/arg_utils.py).
      {{"--runtime", "vllm", "--gpu", "H100-80GB", "--gpu-memory-utilization", "0.8"},
       {"--runtime", "vllm", "--gpu", "H100-80GB", "--gpu-mem-util", "0.8"}},
      {{"--runtime", "vllm", "--gpu", "H100-80GBx2", "--tensor-parallel-size", "2", "--kv-cache-dtype", "fp8"},
       {"--runtime", "vllm", "--gpu", "H100-80GBx2", "--tp", "2", "--kv-dtype", "fp8"}},
      {{"--runtime", "vllm", "--gpu", "H100-80GBx2", "-tp", "2", "--max_model_len", "32768"},
       {"--runtime", "vllm", "--gpu", "H100-80GBx2", "--tp", "2", "--max-model-len", "32768"}},
      {{"--runtime", "vllm", "--gpu", "H100-80GB", "--quantization", "fp8"},
       {"--runtime", "vllm", "--gpu", "H100-80GB", "--quant", "fp8"}},
      // llama.cpp (common/arg.cpp); -c 8k = 8192 tokens.
      {{"--runtime", "llamacpp", "--quant", "Q4_K_M", "-ngl", "20", "-c", "8k", "--gpu", "RTX-4090"},
       {"--runtime", "llamacpp", "--quant", "Q4_K_M", "--gpu-layers", "20", "--ctx", "8192", "--gpu", "RTX-4090"}},
      {{"--runtime", "llamacpp", "--quant", "Q8_0", "-ub", "256", "-b", "1024", "-fa", "on", "-ctk", "q8_0", "-ctv",
        "q8_0", "-np", "2"},
       {"--runtime", "llamacpp", "--quant", "Q8_0", "--ubatch", "256", "--batch-size", "1024", "--flash-attn", "on",
        "--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--parallel", "2"}},
      // GPU spellings (data/gpus.json names RTX-4090).
      {{"--gpu", "4090"}, {"--gpu", "RTX-4090"}},
      {{"--gpu", "rtx4090"}, {"--gpu", "RTX-4090"}},
      {{"--gpu", "2x3090"}, {"--gpu", "RTX-3090x2"}},
      {{"--gpu", "3090x2"}, {"--gpu", "RTX-3090x2"}},
      // 128k = 131072 = Llama-3.1's max_position_embeddings = -c 0.
      {{"--ctx", "128k"}, {"--ctx", "131072"}},
      {{"--runtime", "llamacpp", "--quant", "Q4_K_M", "-c", "0"},
       {"--runtime", "llamacpp", "--quant", "Q4_K_M", "--ctx", "131072"}},
      {{"--runtime", "llamacpp", "--quant", "Q4_K_M", "--ctx", "max"},
       {"--runtime", "llamacpp", "--quant", "Q4_K_M", "--ctx", "131072"}},
  };
  for (const auto& c : cases) {
    const CliRun a = Cli(With(llama, c.alias));
    const CliRun b = Cli(With(llama, c.canonical));
    EXPECT_EQ(a.code, b.code) << c.alias[1] << " " << a.err;
    EXPECT_FALSE(a.out.empty()) << a.err;
    EXPECT_EQ(a.out, b.out) << c.alias.back();
  }
  // HF Trainer / TRL spellings for training (training_args.py, trl SFTConfig).
  const std::vector<std::string> train = {"train", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GB", "--json"};
  const CliRun hf = Cli(With(train, {"--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "8",
                                     "--gradient_checkpointing", "--max_seq_length", "4096", "--optim",
                                     "adamw_torch_fused", "--method", "lora", "--lora_r", "32"}));
  const CliRun ours = Cli(With(train, {"--batch", "4", "--grad-accum", "8", "--grad-ckpt", "full", "--seq", "4096",
                                       "--optimizer", "adamw", "--optimizer-impl", "fused", "--method", "lora",
                                       "--lora-rank", "32"}));
  EXPECT_EQ(hf.code, 0) << hf.err;
  EXPECT_EQ(hf.out, ours.out);
  // An explicit "off" is --grad-ckpt none (a default left unset would let the
  // QLoRA fix turn checkpointing on, as prepare_model_for_kbit_training does).
  const CliRun off = Cli(With(train, {"--gradient-checkpointing", "false"}));
  EXPECT_EQ(off.out, Cli(With(train, {"--grad-ckpt", "none"})).out) << off.err;
}

// A setting that does not apply is an error, never silently ignored.
TEST(SettingsTest, SettingsThatDoNotApplyAreRefused) {
  const struct {
    std::vector<std::string> args;
    const char* err;
  } cases[] = {
      {{"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--cache-type-k", "q8_0"},
       "vramfit: error: --cache-type-k: applies to --runtime llamacpp, not vllm\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "-ngl", "20"},
       "vramfit: error: --gpu-layers: applies to --runtime llamacpp, not hf\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--max-model-len", "8192"},
       "vramfit: error: --max-model-len: applies to --runtime vllm, not hf\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--attn", "eager"},
       "vramfit: error: --attn: applies to --runtime hf, not vllm\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--runtime", "llamacpp", "--transformers", "4.40"},
       "vramfit: error: --transformers: applies to --runtime hf, not llamacpp\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--method", "full", "--lora-rank", "8"},
       "vramfit: error: --lora-rank: applies to --method lora or qlora, not full\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--method", "lora", "--trainable-layers", "4"},
       "vramfit: error: --trainable-layers: applies to --method freeze, not lora\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--ctx", "4096"},
       "vramfit: error: --ctx: applies to inference, not training (--seq sets the tokens per sample)\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--dtype", "fp16"},
       "vramfit: error: --dtype: applies to inference, not training (--precision sets the weight and compute "
       "dtypes)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--method", "lora"},
       "vramfit: error: --method: applies to training (vramfit train), not inference\n"},
      {{"fit", "meta-llama/Llama-3.1-8B", "--gpu", "T4", "--seq", "1024", "--ctx", "4096", "--solve", "max-batch"},
       "vramfit: error: --ctx: applies to inference, not training (--seq sets the tokens per sample)\n"},
      {{"fit", "meta-llama/Llama-3.1-8B", "--gpu", "T4", "--solve", "max-batch", "--csv"},
       "vramfit: error: --csv: applies to fit --sweep (the grid is the only table printed as CSV)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--solve", "max-batch"}, "vramfit: error: --solve: applies to fit, not infer\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--print-flags"},
       "vramfit: error: --print-flags: applies to infer, not train\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--gpu", "A100"},
       "vramfit: error: --gpu: 'A100' is ambiguous: A100-40GB, A100-80GB (give one of them)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--ctx", "8q"}, "vramfit: error: --ctx: expected an integer, got '8q'\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--ctx", "-2k"},
       "vramfit: error: --ctx: expected a token count such as 8192, 8k or 1m, got '-2k'\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--quantization", "squeezellm"},
       "vramfit: error: --quantization: vLLM method 'squeezellm' has no vramfit format (expected fp8, awq, "
       "awq_marlin, gptq, gptq_marlin, bitsandbytes or mxfp4; or give --quant)\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--optim", "rmsprop"},
       "vramfit: error: --optim: 'rmsprop' is not modelled (expected adamw_torch, adamw_torch_fused, adamw_8bit, "
       "paged_adamw_8bit, adafactor or sgd)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--per_device_train_batch_size", "4"},
       "vramfit: error: --per_device_train_batch_size: applies to train and fit, not infer\n"},
  };
  for (const auto& c : cases) {
    const CliRun r = Cli(c.args);
    EXPECT_EQ(r.code, 2) << c.args.back();
    EXPECT_EQ(r.err, c.err);
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

// The web API answers the same text with 400.
TEST(SettingsTest, WebRefusesWithTheCliText) {
  web::Api api;
  const struct {
    const char* body;
    const char* message;
  } cases[] = {
      {R"({"model": "meta-llama/Llama-3.1-8B", "runtime": "vllm", "cache-type-k": "q8_0"})",
       "--cache-type-k: applies to --runtime llamacpp, not vllm"},
      {R"({"model": "meta-llama/Llama-3.1-8B", "mode": "train", "method": "full", "lora-rank": 8})",
       "--lora-rank: applies to --method lora or qlora, not full"},
      {R"({"model": "meta-llama/Llama-3.1-8B", "runtime": "vllm", "gpu_memory_utilization": 2})",
       "--gpu-mem-util: expected a fraction in (0, 1], got '2'"},
  };
  for (const auto& c : cases) {
    const web::Response r = api.Estimate(c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["message"], c.message) << r.body;
  }
  // An alias in a body is the canonical key (JSON keys: the flag without dashes).
  const web::Response a = api.Estimate(
      R"({"model": "meta-llama/Llama-3.1-8B", "runtime": "vllm", "gpu": "H100-80GB", "gpu-memory-utilization": 0.8})");
  const web::Response b = api.Estimate(
      R"({"model": "meta-llama/Llama-3.1-8B", "runtime": "vllm", "gpu": "H100-80GB", "gpu-mem-util": 0.8})");
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body, b.body);
}

TEST(SettingsTest, TokenCounts) {
  const struct {
    const char* text;
    int64_t tokens;
  } cases[] = {{"8192", 8192}, {"8k", 8192}, {"32K", 32768}, {"128k", 131072}, {"1m", 1048576}, {"0", 0}};
  for (const auto& c : cases) {
    auto n = app::ParseTokens("--ctx", c.text);
    ASSERT_TRUE(n.ok()) << c.text;
    EXPECT_EQ(*n, c.tokens) << c.text;
  }
  EXPECT_EQ(app::ParseTokens("--seq", "1.5k").error().message,
            "--seq: expected a token count such as 8192, 8k or 1m, got '1.5k'");
}

// Every setting has a help line and a metavar that says what it takes, and
// one name: no alias shadows a setting, no two settings share a name.
TEST(SettingsTest, TableIsWellFormed) {
  std::set<std::string> names;
  for (const app::Setting& s : app::Settings()) {
    EXPECT_TRUE(names.insert(std::string(s.name)).second) << s.name;
    EXPECT_FALSE(s.help.empty()) << s.name;
    EXPECT_NE(s.metavar, "TEXT") << s.name;
    EXPECT_NE(s.apply, nullptr) << s.name;
    EXPECT_NE(s.commands, 0u) << s.name;
  }
  for (const app::Alias& a : app::Aliases()) {
    EXPECT_NE(app::FindSetting(a.setting), nullptr) << a.spelling;
    // A long alias must not be a setting's name ("-tp" and "--tp" may mean the same).
    if (a.spelling.rfind("--", 0) != 0) continue;
    EXPECT_EQ(names.count(std::string(a.spelling.substr(a.spelling.find_first_not_of('-')))), 0u)
        << a.spelling << " shadows a setting";
  }
  // Each runtime's own settings are in the table as runtime knobs.
  for (Runtime r : AllRuntimes()) {
    for (const app::Setting& s : app::Settings()) {
      if (RuntimeTakes(r, s.name)) {
        EXPECT_TRUE(s.scope & app::kRuntime) << s.name;
      }
    }
  }
}

// --print-flags --json: the launch command as argv tokens (vramfit.launch/1);
// the estimate document carries the same tokens as launch_argv.
TEST(SettingsTest, PrintFlagsAsJson) {
  const std::vector<std::string> base = {"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--gpu",
                                         "H100-80GB", "--max-model-len", "32768"};
  const CliRun text = Cli(With(base, {"--print-flags"}));
  ASSERT_EQ(text.code, 0) << text.err;
  const CliRun json = Cli(With(base, {"--print-flags", "--json"}));
  ASSERT_EQ(json.code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["schema"], "vramfit.launch/1");
  // The whole command: `vllm serve MODEL` then the flags' tokens.
  EXPECT_EQ(j["command"], nlohmann::json::array({"vllm", "serve", "meta-llama/Llama-3.1-8B"}));
  EXPECT_EQ(j["argv"][0], "vllm");
  EXPECT_EQ(j["argv"][2], "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(j["argv"][3], "--max-model-len");
  EXPECT_EQ(j["argv"][4], "32768");
  EXPECT_EQ(j["flags"][0], "--max-model-len 32768");
  std::string joined;
  for (const auto& t : j["argv"]) joined += (joined.empty() ? "" : " ") + t.get<std::string>();
  EXPECT_EQ(joined + "\n", text.out);
  const auto e = nlohmann::json::parse(Cli(With(base, {"--json"})).out);
  EXPECT_EQ(e["launch_argv"], j["argv"]);
}

// Sweep JSON gives counts as numbers, other values as text.
TEST(SettingsTest, SweepJsonNumbers) {
  const CliRun r = Cli({"fit", "Qwen/Qwen3-8B", "--gpu", "L4", "--sweep", "ctx=4096,8k", "--sweep",
                        "quant=none,fp8", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["cells"].size(), 4u);
  EXPECT_EQ(j["cells"][0]["settings"]["ctx"], 4096);
  EXPECT_EQ(j["cells"][2]["settings"]["ctx"], 8192);
  EXPECT_EQ(j["cells"][0]["settings"]["quant"], "none");
}

}  // namespace
}  // namespace vramfit

namespace vramfit {
namespace {

// A config.json whose layer count would size a 99,999,999,999-entry table:
// one line from the CLI (exit 1), a 4xx from the web API (it aborted with
// std::bad_alloc before the readers checked ranges).
TEST(SettingsTest, HugeLayerCountIsOneLineEverywhere) {
  const std::string config = R"({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
      "num_hidden_layers": 99999999999, "num_attention_heads": 32, "num_key_value_heads": 8,
      "vocab_size": 128256, "max_position_embeddings": 131072})";
  web::Api api;
  const web::Response r = api.Estimate(R"({"config": )" + config + "}");
  EXPECT_GE(r.status, 400);
  EXPECT_LT(r.status, 500);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["message"],
            "config.json: num_hidden_layers = 99999999999: must be between 1 and 4096");
}

}  // namespace
}  // namespace vramfit

// Reads a Hugging Face config.json into a ModelSpec.
//
// Every model_type vramfit knows is resolved into the generic ModelSpec
// fields here (which projections are fused, which carry biases, how many
// norms a block has, which layers use a sliding window or experts). Keys that
// a real config omits take transformers' defaults for that model_type.
#ifndef VRAMFIT_IO_HF_CONFIG_H_
#define VRAMFIT_IO_HF_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/model.h"

namespace vramfit {

// Parses config.json text. `where` names the source in error messages
// ("config.json", "catalog entry meta-llama/Llama-3.1-8B"). Every integer key
// is read as 64 bits and range-checked before anything is sized from it
// ("config.json: num_hidden_layers = 99999999999: must be between 1 and
// 4096"); docs/formats.md §1 lists the keys, ranges and messages. Notes about
// assumptions (an unknown model_type read as Llama-style, a default taken)
// are appended to *notes when notes != nullptr.
Result<ModelSpec> ParseHfConfig(std::string_view json_text, std::string_view where,
                                std::vector<std::string>* notes = nullptr);

// The model_type values with a dedicated mapping, for messages and docs.
const std::vector<std::string>& SupportedModelTypes();

// Checks the invariants BuildInventory relies on (positive sizes, heads
// dividing, layer list length) and the caps of docs/formats.md §1.4, which
// keep its products inside int64. Returns the first violation:
//   "<where>: <field> = <v>: must be between <lo> and <hi>", ...
Status ValidateSpec(const ModelSpec& spec, std::string_view where);

}  // namespace vramfit

#endif  // VRAMFIT_IO_HF_CONFIG_H_

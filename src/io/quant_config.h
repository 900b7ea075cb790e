// config.json quantization_config for the scaled checkpoint formats
// (compressed-tensors, modelopt, fbgemm_fp8) and the per-module rules of
// every method (modules_to_not_convert, ignore, GPTQ/AutoRound dynamic).
// Layouts, rule semantics and sources: docs/formats.md, "Checkpoint formats".
#ifndef VRAMFIT_IO_QUANT_CONFIG_H_
#define VRAMFIT_IO_QUANT_CONFIG_H_

#include <string>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/io/json_util.h"
#include "vramfit/model.h"

namespace vramfit::io {

// Reads quantization_config object `q` (at `where`) into c. c->method holds
// quant_method as the file spells it; on return it is vramfit's method name
// ("fp8", "int8", "nvfp4", "gptq", "awq", ...). `dtype` is the model's
// torch_dtype (compressed-tensors stores scales in it). Errors: a method,
// format or key combination vramfit does not size, in one line naming the
// key. Notes: parts of the checkpoint that are not weights (KV scales).
Status ReadScaledQuantConfig(const Json& q, const std::string& where, DType dtype,
                             CheckpointQuant* c, std::vector<std::string>* notes);

}  // namespace vramfit::io

#endif  // VRAMFIT_IO_QUANT_CONFIG_H_

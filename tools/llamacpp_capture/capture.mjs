// Loads a GGUF with node-llama-cpp's prebuilt llama.cpp on the CPU (mmap,
// gpuLayers 0), creates one context and prints llama.cpp's own log lines
// (every level, as llama.cpp wrote them) to stdout. Nothing is evaluated.
//
// Usage: node capture.mjs FILE.gguf CONTEXT_SIZE SEQUENCES
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [file, ctxArg, seqArg] = process.argv.slice(2);
if (!file || !ctxArg || !seqArg) {
    console.error("usage: node capture.mjs FILE.gguf CONTEXT_SIZE SEQUENCES");
    process.exit(2);
}
const lines = [];
const llama = await getLlama({
    gpu: false,
    build: "never",           // prebuilt binaries only: nothing is compiled
    logLevel: LlamaLogLevel.debug,
    logger: (level, message) => lines.push(message.replace(/\n$/, "")),
});
const model = await llama.loadModel({
    modelPath: file, gpuLayers: 0, useMmap: true, ignoreMemorySafetyChecks: true,
});
const context = await model.createContext({
    contextSize: Number(ctxArg), sequences: Number(seqArg), ignoreMemorySafetyChecks: true,
});
console.log(`# node-llama-cpp 3.21.1, llama.cpp ${llama.llamaCppRelease.repo} ${llama.llamaCppRelease.release}` +
            `, gpu ${llama.gpu}; loadModel {gpuLayers: 0, useMmap: true}; ` +
            `createContext {contextSize: ${ctxArg}, sequences: ${seqArg}}`);
for (const l of lines) console.log(l);
await context.dispose();
await model.dispose();

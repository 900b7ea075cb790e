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
// llama.cpp's log callback may deliver one line in several pieces: they are
// joined as they come, and only whole lines are printed.
let text = "";
const llama = await getLlama({
    gpu: false,
    build: "never",           // prebuilt binaries only: nothing is compiled
    logLevel: LlamaLogLevel.debug,
    logger: (level, message) => { text += message.endsWith("\n") ? message : message + "\n"; },
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
process.stdout.write(text);
await context.dispose();
await model.dispose();

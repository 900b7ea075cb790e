// vramfit web calculator: plain JS, no build step. Every number shown comes
// from the JSON API (docs/web.md); this file only lays it out.
'use strict';

(() => {
  const API = '/api/v1';
  const $ = (sel, root = document) => root.querySelector(sel);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  };
  const SVG = 'http://www.w3.org/2000/svg';
  const sv = (tag, attrs = {}) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };

  // ---- Formatting: the same rules as the CLI (src/render/render.cc) ------

  // x.toFixed(d), but exact ties round half to even as {fmt} does.
  function fixed(x, d) {
    const m = 10 ** d;
    const y = x * m;
    if (Number.isFinite(y) && Number.isInteger(y * 2) && !Number.isInteger(y)) {
      const lo = Math.floor(y);
      return ((lo % 2 === 0 ? lo : lo + 1) / m).toFixed(d);
    }
    return x.toFixed(d);
  }
  const KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;
  function formatBytes(b, units) {
    const a = Math.abs(b);
    if (units === 'gb') {
      if (a >= 1e9) return `${fixed(b / 1e9, 2)} GB`;
      if (a >= 1e6) return `${fixed(b / 1e6, 1)} MB`;
      if (a >= 1e3) return `${fixed(b / 1e3, 1)} kB`;
      return `${b} B`;
    }
    if (a >= GiB) return `${fixed(b / GiB, 2)} GiB`;
    if (a >= MiB) return `${fixed(b / MiB, 1)} MiB`;
    if (a >= KiB) return `${fixed(b / KiB, 1)} KiB`;
    return `${b} B`;
  }
  function formatCount(n) {
    if (n >= 1e9) return `${fixed(n / 1e9, 2)} B`;
    if (n >= 1e6) return `${fixed(n / 1e6, 1)} M`;
    if (n >= 1e3) return `${fixed(n / 1e3, 1)} K`;
    return String(n);
  }
  const formatTokens = (n) => (n >= 1024 && n % 1024 === 0 ? `${n / 1024}K` : String(n));

  // ---- The settings: one table drives the form, the URL and the request ----
  // key: the CLI flag without dashes (the API's key); modes: where it applies.
  const QUANTS = ['none', 'int8', 'nf4', 'nf4-dq', 'fp4', 'fp4-dq', 'gptq-int4', 'awq-int4', 'fp8',
    'fp8-block', 'mxfp4', 'Q8_0', 'Q6_K', 'Q4_0', 'IQ4_XS', 'Q2_K'];
  const FIELDS = [
    { key: 'runtime', label: 'Runtime', modes: ['infer'], group: 'main', kind: 'select',
      options: [['hf', 'transformers (hf)'], ['vllm', 'vLLM'], ['llamacpp', 'llama.cpp'], ['sglang', 'SGLang']], always: true, def: 'hf' },
    { key: 'stack', label: 'Training stack', modes: ['train'], group: 'main', kind: 'select',
      options: [['', 'HF Trainer / TRL + PEFT'], ['axolotl', 'Axolotl'], ['unsloth', 'Unsloth'], ['torchtune', 'torchtune'],
        ['torchtitan', 'torchtitan'], ['litgpt', 'LitGPT']] },
    { key: 'method', label: 'Method', modes: ['train'], group: 'main', kind: 'select',
      options: [['', 'full fine-tune'], ['lora', 'LoRA'], ['qlora', 'QLoRA'], ['freeze', 'freeze (last layers)']] },
    { key: 'ctx', label: 'Context', unit: 'tokens / sequence', modes: ['infer'], group: 'main', kind: 'int',
      placeholder: '4096', slider: [8, 20] },
    { key: 'seq', label: 'Sequence length', unit: 'tokens / sample', modes: ['train'], group: 'main', kind: 'int',
      placeholder: '2048', slider: [7, 17] },
    { key: 'batch', label: 'Batch', unit: 'sequences', modes: ['infer', 'train'], group: 'main', kind: 'int',
      placeholder: '1', slider: [0, 10] },
    { key: 'quant', label: 'Weights', modes: ['infer', 'train'], group: 'main', kind: 'text', list: QUANTS,
      placeholder: 'as stored' },
    { key: 'dtype', label: 'Compute dtype', modes: ['infer'], group: 'main', kind: 'select',
      options: [['', "model's own"], ['bf16', 'bf16'], ['fp16', 'fp16'], ['fp32', 'fp32']] },
    { key: 'kv-dtype', label: 'KV cache dtype', modes: ['infer'], group: 'main', kind: 'select',
      options: [['', 'auto'], ['bf16', 'bf16'], ['fp16', 'fp16'], ['fp8', 'fp8'], ['q8_0', 'q8_0'], ['q4_0', 'q4_0']] },
    { key: 'precision', label: 'Precision', modes: ['train'], group: 'main', kind: 'select',
      options: [['', "stack's default"], ['bf16-mixed', 'bf16-mixed'], ['fp16-mixed', 'fp16-mixed'], ['bf16', 'bf16'], ['fp16', 'fp16'], ['fp32', 'fp32']] },
    { key: 'optimizer', label: 'Optimizer', modes: ['train'], group: 'main', kind: 'select',
      options: [['', "stack's default"], ['adamw', 'AdamW'], ['adamw-8bit', 'AdamW 8-bit'], ['paged-adamw', 'paged AdamW'],
        ['paged-adamw-8bit', 'paged AdamW 8-bit'],
        ['adafactor', 'Adafactor'], ['sgd', 'SGD'], ['sgd-momentum', 'SGD + momentum'], ['lion', 'Lion']] },
    { key: 'grad-ckpt', label: 'Gradient checkpointing', modes: ['train'], group: 'main', kind: 'select',
      options: [['', "stack's default"], ['none', 'none'], ['full', 'full'], ['selective', 'selective']] },
    { key: 'offload-activations', label: 'Offload activations', modes: ['train'], group: 'adv', kind: 'bool' },
    { key: 'attn', label: 'Attention', modes: ['infer', 'train'], group: 'main', kind: 'select', runtime: 'hf',
      options: [['', 'sdpa (default)'], ['eager', 'eager'], ['flash', 'flash']] },
    { key: 'lora-rank', label: 'LoRA rank', modes: ['train'], group: 'adv', kind: 'int', placeholder: "stack's default" },
    { key: 'lora-targets', label: 'LoRA targets', modes: ['train'], group: 'adv', kind: 'text',
      list: ['all-linear', 'attn', 'mlp', 'q,v', 'q,k,v,o'], placeholder: 'all-linear' },
    { key: 'zero', label: 'ZeRO stage', modes: ['train'], group: 'adv', kind: 'select',
      options: [['', '0'], ['1', '1'], ['2', '2'], ['3', '3']] },
    { key: 'fsdp', label: 'FSDP full shard', modes: ['train'], group: 'adv', kind: 'bool' },
    { key: 'gpus', label: 'Data-parallel GPUs', modes: ['train'], group: 'adv', kind: 'int', placeholder: 'from GPUs' },
    { key: 'offload', label: 'Offload', modes: ['train'], group: 'adv', kind: 'select',
      options: [['', 'none'], ['optimizer', 'optimizer'], ['params', 'params']] },
    { key: 'grad-accum', label: 'Gradient accumulation', modes: ['train'], group: 'adv', kind: 'int', placeholder: '1' },
    { key: 'loss', label: 'Loss', modes: ['train'], group: 'adv', kind: 'select',
      options: [['', "stack's default"], ['hf', 'hf'], ['chunked', 'chunked'], ['fused', 'fused']] },
    { key: 'optimizer-impl', label: 'Optimizer impl', modes: ['train'], group: 'adv', kind: 'select',
      options: [['', "stack's default"], ['foreach', 'foreach'], ['fused', 'fused'], ['in-backward', 'in backward (torchtune)']] },
    { key: 'trainable-layers', label: 'Trainable layers', modes: ['train'], group: 'adv', kind: 'int', placeholder: 'a quarter' },
    { key: 'prompt', label: 'Prompt', unit: 'tokens (instead of context)', modes: ['infer'], group: 'adv', kind: 'int' },
    { key: 'new', label: 'New tokens', unit: 'generated', modes: ['infer'], group: 'adv', kind: 'int' },
    { key: 'tp', label: 'Tensor parallel', modes: ['infer', 'train'], group: 'adv', kind: 'int', placeholder: '1' },
    { key: 'pp', label: 'Pipeline parallel', modes: ['infer', 'train'], group: 'adv', kind: 'int', placeholder: '1' },
    { key: 'transformers', label: 'transformers version', modes: ['infer'], group: 'adv', kind: 'text',
      placeholder: '4.56', runtime: 'hf' },
    { key: 'gpu-mem-util', label: 'gpu_memory_utilization', modes: ['infer'], group: 'adv', kind: 'text',
      placeholder: '0.9', runtime: 'vllm' },
    { key: 'max-model-len', label: 'max_model_len', modes: ['infer'], group: 'adv', kind: 'int', runtime: 'vllm' },
    { key: 'max-num-seqs', label: 'max_num_seqs', modes: ['infer'], group: 'adv', kind: 'int', runtime: 'vllm' },
    { key: 'max-num-batched-tokens', label: 'max_num_batched_tokens', modes: ['infer'], group: 'adv', kind: 'int',
      runtime: 'vllm' },
    { key: 'block-size', label: 'block_size', modes: ['infer'], group: 'adv', kind: 'int', placeholder: '16',
      runtime: 'vllm' },
    { key: 'enforce-eager', label: 'enforce_eager', modes: ['infer'], group: 'adv', kind: 'bool', runtime: 'vllm' },
    { key: 'mamba-cache-dtype', label: 'mamba_cache_dtype', modes: ['infer'], group: 'adv', kind: 'select',
      options: [['', 'auto'], ['float32', 'float32']], runtime: 'vllm' },
    { key: 'mamba-ssm-cache-dtype', label: 'mamba_ssm_cache_dtype', modes: ['infer'], group: 'adv', kind: 'select',
      options: [['', 'auto'], ['float32', 'float32']], runtime: 'vllm' },
    { key: 'mem-fraction-static', label: 'mem_fraction_static', modes: ['infer'], group: 'adv', kind: 'text',
      placeholder: 'by GPU size', runtime: 'sglang' },
    { key: 'context-length', label: 'context_length', modes: ['infer'], group: 'adv', kind: 'int', runtime: 'sglang' },
    { key: 'chunked-prefill-size', label: 'chunked_prefill_size', modes: ['infer'], group: 'adv', kind: 'int',
      placeholder: 'by GPU size', runtime: 'sglang' },
    { key: 'max-running-requests', label: 'max_running_requests', modes: ['infer'], group: 'adv', kind: 'int',
      runtime: 'sglang' },
    { key: 'cuda-graph-max-bs', label: 'cuda_graph_max_bs', modes: ['infer'], group: 'adv', kind: 'int',
      placeholder: 'by GPU size', runtime: 'sglang' },
    { key: 'disable-cuda-graph', label: 'disable_cuda_graph', modes: ['infer'], group: 'adv', kind: 'bool',
      runtime: 'sglang' },
    { key: 'page-size', label: 'page_size', modes: ['infer'], group: 'adv', kind: 'int', placeholder: '1',
      runtime: 'sglang' },
    { key: 'ubatch', label: '-ub (physical batch)', modes: ['infer'], group: 'adv', kind: 'int', placeholder: '512',
      runtime: 'llamacpp' },
    { key: 'batch-size', label: '-b (logical batch)', modes: ['infer'], group: 'adv', kind: 'int',
      placeholder: '2048', runtime: 'llamacpp' },
    { key: 'flash-attn', label: '-fa', modes: ['infer'], group: 'adv', kind: 'select',
      options: [['', 'auto'], ['on', 'on'], ['off', 'off']], runtime: 'llamacpp' },
    { key: 'cache-type-k', label: '-ctk', modes: ['infer'], group: 'adv', kind: 'text', placeholder: 'f16',
      list: ['f16', 'bf16', 'q8_0', 'q4_0'], runtime: 'llamacpp' },
    { key: 'cache-type-v', label: '-ctv', modes: ['infer'], group: 'adv', kind: 'text', placeholder: 'f16',
      list: ['f16', 'bf16', 'q8_0', 'q4_0'], runtime: 'llamacpp' },
    { key: 'gpu-layers', label: '-ngl', modes: ['infer'], group: 'adv', kind: 'int', placeholder: 'all',
      runtime: 'llamacpp' },
    { key: 'parallel', label: '-np', modes: ['infer'], group: 'adv', kind: 'int', placeholder: '1', runtime: 'llamacpp' },
    { key: 'llamacpp-build', label: 'llama.cpp release', modes: ['infer'], group: 'adv', kind: 'text',
      placeholder: 'b8000', runtime: 'llamacpp' },
    { key: 'host-mem-bw', label: 'host memory GB/s', modes: ['infer'], group: 'adv', kind: 'text',
      placeholder: 'unknown', runtime: 'llamacpp' },
    { key: 'n-cpu-moe', label: '--n-cpu-moe (experts of the first N layers on the CPU)', modes: ['infer'],
      group: 'adv', kind: 'int', placeholder: '0', runtime: 'llamacpp' },
    { key: 'cpu-moe', label: '--cpu-moe (every expert on the CPU)', modes: ['infer'], group: 'adv', kind: 'bool',
      runtime: 'llamacpp' },
    { key: 'override-tensor', label: '-ot REGEX=CPU|CUDA0,...', modes: ['infer'], group: 'adv', kind: 'text',
      placeholder: 'none', runtime: 'llamacpp' },
    { key: 'tensor-split', label: '-ts', modes: ['infer'], group: 'adv', kind: 'text', placeholder: 'by memory',
      runtime: 'llamacpp' },
    { key: 'split-mode', label: '-sm', modes: ['infer'], group: 'adv', kind: 'select',
      options: [['', 'layer'], ['none', 'none']], runtime: 'llamacpp' },
    { key: 'main-gpu', label: '-mg (with -sm none)', modes: ['infer'], group: 'adv', kind: 'text', placeholder: '0',
      runtime: 'llamacpp' },
  ];
  const FIELD = Object.fromEntries(FIELDS.map((f) => [f.key, f]));

  const DEFAULT_MODEL = 'meta-llama/Llama-3.1-8B';
  const state = {
    mode: 'infer',
    source: 'catalog',        // catalog | config | upload
    model: DEFAULT_MODEL,     // catalog id or alias
    upload: '',               // "upload:KEY" of dropped file headers
    uploadLabel: '',
    config: null,             // pasted config.json (object)
    configText: '',
    gpus: [{ name: 'RTX-4090', count: 1 }],
    values: {},               // key -> string (booleans: 'true')
    units: 'gib',
    chart: 'ctx',
    device: 0,                // device shown in the breakdown table
  };
  let features = { train: true, fit: false, upload_gguf: false, upload_safetensors: false };
  let gpuCatalog = [];
  let lastEstimate = null;
  let lastSeries = null;

  // ---- URL <-> state -------------------------------------------------------

  function toBase64Url(text) {
    const bytes = new TextEncoder().encode(text);
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function fromBase64Url(s) {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }

  function readUrl() {
    const q = new URLSearchParams(location.search);
    if (q.get('mode') === 'train') state.mode = 'train';
    if (q.has('config')) {
      try {
        state.configText = fromBase64Url(q.get('config'));
        state.config = JSON.parse(state.configText);
        state.source = 'config';
      } catch (e) { /* a broken link: fall back to the model */ }
    }
    if (q.has('model') && state.source !== 'config') {
      const m = q.get('model');
      if (m.startsWith('upload:')) { state.upload = m; state.source = 'upload'; } else state.model = m;
    }
    if (q.has('gpu')) {
      state.gpus = q.getAll('gpu').filter(Boolean).map((g) => {
        const m = /^(.*?)x(\d+)$/i.exec(g);
        return m ? { name: m[1], count: Number(m[2]) } : { name: g, count: 1 };
      });
    }
    for (const f of FIELDS) if (q.has(f.key)) state.values[f.key] = q.get(f.key);
    if (q.get('units') === 'gb') state.units = 'gb';
    if (q.has('chart')) state.chart = q.get('chart');
  }

  function writeUrl() {
    const q = new URLSearchParams();
    if (state.mode !== 'infer') q.set('mode', state.mode);
    if (state.source === 'config' && state.configText) {
      const packed = toBase64Url(JSON.stringify(state.config));
      if (packed.length < 6000) q.set('config', packed);
    } else if (state.source === 'upload' && state.upload) {
      q.set('model', state.upload);
    } else if (state.model) {
      q.set('model', state.model);
    }
    for (const g of state.gpus) if (g.name) q.append('gpu', g.count > 1 ? `${g.name}x${g.count}` : g.name);
    for (const f of FIELDS) {
      const v = state.values[f.key];
      if (v !== undefined && v !== '' && applies(f)) q.set(f.key, v);
    }
    if (state.units !== 'gib') q.set('units', state.units);
    if (state.chart !== defaultChart()) q.set('chart', state.chart);
    const url = `${location.pathname}${q.toString() ? '?' + q.toString() : ''}`;
    history.replaceState(null, '', url);
  }

  const defaultChart = () => (state.mode === 'train' ? 'seq' : 'ctx');
  function applies(f) {
    if (!f.modes.includes(state.mode)) return false;
    // A runtime's own knob (the server refuses it with another runtime);
    // training has no runtime.
    if (f.runtime && state.mode === 'infer' && (state.values.runtime || 'hf') !== f.runtime) return false;
    return true;
  }

  // ---- The request ---------------------------------------------------------

  function requestBody() {
    const body = { mode: state.mode };
    if (state.source === 'config') body.config = state.config;
    else body.model = state.source === 'upload' ? state.upload : state.model;
    const gpus = state.gpus.filter((g) => g.name).map((g) => (g.count > 1 ? `${g.name}x${g.count}` : g.name));
    if (gpus.length) body.gpu = gpus;
    for (const f of FIELDS) {
      const v = state.values[f.key];
      if (v === undefined || v === '' || !applies(f)) continue;
      if (f.kind === 'bool') { if (v === 'true') body[f.key] = true; continue; }
      body[f.key] = f.kind === 'int' && /^\d+$/.test(v) ? Number(v) : v;
    }
    return body;
  }

  function cliCommand(body) {
    const quote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replace(/'/g, "'\\''")}'`);
    const parts = ['vramfit', body.mode === 'train' ? 'train' : 'infer'];
    parts.push(body.config ? 'config.json' : quote(body.model));
    for (const [k, v] of Object.entries(body)) {
      if (k === 'mode' || k === 'model' || k === 'config') continue;
      if (k === 'gpu') { for (const g of v) parts.push('--gpu', quote(g)); continue; }
      if (v === true) { parts.push(`--${k}`); continue; }
      parts.push(`--${k}`, quote(String(v)));
    }
    return parts.join(' ');
  }

  async function postJson(path, body, signal) {
    const res = await fetch(API + path, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal,
    });
    const doc = await res.json().catch(() => null);
    return { status: res.status, doc };
  }

  // ---- Estimating (debounced; a newer request cancels an older one) -------

  let timer = 0;
  let inflight = null;
  let seq = 0;
  function schedule(delay = 120) {
    writeUrl();
    clearTimeout(timer);
    timer = setTimeout(run, delay);
  }

  async function run() {
    const body = requestBody();
    const mine = ++seq;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const signal = inflight.signal;
    document.body.dataset.state = 'loading';
    $('#cli').textContent = cliCommand(body);
    planAnswers = null;
    ++planSeq;
    try {
      const { status, doc } = await postJson('/estimate', body, signal);
      if (mine !== seq) return;
      if (status !== 200 || !doc || doc.schema !== 'vramfit.estimate/1') {
        showError(doc && doc.error ? doc.error.message : `HTTP ${status}`, status);
        return;
      }
      lastEstimate = { body, doc };
      hideError();
      renderEstimate();
      $('#results').dataset.request = JSON.stringify(body);
      document.body.dataset.state = 'ready';
      loadSeries(body, mine, signal).then(() => loadPlan(body, mine));
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (mine === seq) showError(`cannot reach the vramfit server (${e.message})`, 0);
    }
  }

  function seriesValues(vary, current) {
    const range = vary === 'batch' ? [0, 9] : vary === 'seq' ? [8, 16] : [9, 17];
    const vals = new Set();
    for (let k = range[0]; k <= range[1]; ++k) vals.add(2 ** k);
    if (current > 0) { vals.add(current); if (current > 2 ** range[1]) vals.add(current * 2); }
    return [...vals].sort((a, b) => a - b).slice(0, 64);
  }

  async function loadSeries(body, mine, signal) {
    const vary = state.chart;
    const current = Number(body[vary] || (lastEstimate && lastEstimate.doc.workload[vary]) || 0);
    const req = { ...body, vary, values: seriesValues(vary, current) };
    if (vary === 'ctx') { delete req.prompt; delete req.new; }
    try {
      const { status, doc } = await postJson('/series', req, signal);
      if (mine !== seq || status !== 200) return;
      lastSeries = { vary, current, doc };
      renderChart();
    } catch (e) { /* the estimate already reported the error */ }
  }

  // ---- Rendering -----------------------------------------------------------

  const COLORS = {
    weights: '#4e79a7', kv_cache: '#f28e2b', activations: '#59a14f', logits: '#e15759',
    allocator_reserve: '#b07aa1', cuda_context: '#9c755f', gradients: '#edc948',
    optimizer_states: '#76b7b2', master_weights: '#ff9da7', adapters: '#86bcb6',
    compute_buffer: '#d4a6c8', output_buffer: '#a0cbe8', cuda_graphs: '#8cd17d', non_torch: '#bab0ac',
  };
  const EXTRA = ['#499894', '#d37295', '#fabfd2', '#b6992d', '#79706e', '#d7b5a6'];
  function color(name) {
    if (COLORS[name]) return COLORS[name];
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return EXTRA[h % EXTRA.length];
  }
  const fmt = (b) => formatBytes(b, state.units);

  function showError(message, status) {
    const box = $('#error');
    box.hidden = false;
    box.textContent = '';
    box.append(el('strong', { text: status === 501 ? 'Not in this build yet' : 'Cannot estimate' }),
      el('span', { class: 'msg', text: message }));
    document.body.dataset.state = 'error';
    $('#results').classList.add('stale');
  }
  function hideError() {
    $('#error').hidden = true;
    $('#results').classList.remove('stale');
  }

  // Devices identical to the one before are shown once, as the CLI does.
  function groupDevices(devices) {
    const same = (a, b) => a.gpu === b.gpu && a.total_bytes === b.total_bytes &&
      a.components.length === b.components.length &&
      a.components.every((c, i) => c.bytes === b.components[i].bytes);
    const groups = [];
    for (const d of devices) {
      const last = groups[groups.length - 1];
      if (last && same(last.first, d)) last.count += 1;
      else groups.push({ first: d, count: 1, index: devices.indexOf(d) });
    }
    return groups;
  }

  function renderEstimate() {
    if (!lastEstimate) return;
    const e = lastEstimate.doc;
    renderVerdict(e);
    renderSummary(e);
    renderBars(e);
    renderBreakdown(e);
    renderNotes(e);
    renderFixes(e);
    renderChart();
    renderPlan();
  }

  // The changes that would make the job fit (the CLI's "fixes").
  function renderFixes(e) {
    const panel = $('#fixes-panel');
    panel.hidden = !(e.fixes && e.fixes.length);
    if (panel.hidden) return;
    const tbody = $('#fixes tbody');
    tbody.textContent = '';
    for (const f of e.fixes) {
      tbody.append(el('tr', {},
        el('td', {}, el('code', { text: f.change })),
        el('td', { class: 'num', 'data-bytes': String(f.total_bytes), text: fmt(f.total_bytes) }),
        el('td', { class: 'num', text: fmt(f.saves_bytes) }),
        el('td', { class: f.fits ? 'ok' : 'bad', text: f.fits ? 'fits' : 'still over' })));
    }
  }

  // ---- The planner: /api/v1/fit for each question, after the estimate ----

  const QUESTIONS = {
    infer: [['max-context', 'Longest context', 'ctx'], ['max-batch', 'Largest batch', 'batch'],
      ['min-gpus', 'Fewest GPUs', 'gpus'], ['best-quant', 'Best weight format', 'quant']],
    train: [['max-batch', 'Largest micro-batch', 'batch'], ['min-gpus', 'Fewest GPUs', 'gpus'],
      ['best-method', 'Best method', 'method']],
  };
  let planSeq = 0;
  let planAnswers = null;
  async function loadPlan(body, mine) {
    const panel = $('#plan-panel');
    const plannable = features.fit && state.source === 'catalog' && body.gpu && body.gpu.length;
    panel.hidden = !plannable;
    if (!plannable) return;
    const run = ++planSeq;
    $('#plan-status').textContent = 'thinking…';
    const answers = [];
    for (const [solve, label, key] of QUESTIONS[state.mode]) {
      let doc = null;
      try {
        const res = await postJson('/fit', { ...body, solve });
        doc = res.doc;
      } catch (e) { /* shown as unavailable */ }
      if (run !== planSeq || mine !== seq) return;
      answers.push({ solve, label, key, doc });
      planAnswers = answers.slice();
      renderPlan();
    }
    $('#plan-status').textContent = '';
  }

  function applyAnswer(a) {
    const v = a.doc.answer.value;
    if (a.key === 'gpus') {
      // "4 x H100-80GB (tp 4)": the count, and the layout when it names one.
      const name = state.gpus[0].name;
      state.gpus = [{ name, count: Number(v) }];
      for (const k of ['tp', 'pp']) {
        const m = new RegExp(`\\b${k} (\\d+)`).exec(a.doc.answer.label);
        state.values[k] = m ? m[1] : '';
        const input = document.getElementById(`f-${k}`);
        if (input) syncInput(FIELD[k], input);
      }
      renderGpuRows();
      schedule(0);
    } else if (a.doc.answer.settings) {
      // best-quant / best-method: every setting the answer names.
      for (const [k, sv] of Object.entries(a.doc.answer.settings)) setValue(k, String(sv));
    } else {
      setValue(a.key, String(v));
    }
  }

  // True when applying the answer would change nothing.
  function isCurrent(a) {
    if (!lastEstimate) return false;
    const { body, doc } = lastEstimate;
    const v = a.doc.answer.value;
    if (a.key === 'gpus') {
      const kinds = new Set(state.gpus.map((g) => g.name));
      return kinds.size === 1 && state.gpus.reduce((n, g) => n + g.count, 0) === Number(v);
    }
    const settings = a.doc.answer.settings;
    if (settings) {
      // A setting left out of the request is at its default.
      const defaults = { quant: 'none', method: 'full', optimizer: 'adamw', 'grad-ckpt': 'none', 'kv-dtype': 'auto',
        batch: '1', 'grad-accum': '1' };
      return Object.entries(settings).every(([k, sv]) => String(body[k] ?? defaults[k] ?? '') === String(sv));
    }
    return Number(body[a.key] ?? (doc.workload || {})[a.key]) === Number(v);
  }

  function renderPlan() {
    const box = $('#plan');
    box.textContent = '';
    if (!planAnswers) return;
    for (const a of planAnswers) {
      const doc = a.doc;
      const ok = doc && doc.schema === 'vramfit.fit/1';
      const found = ok && doc.answer.value !== null;
      const card = el('div', { class: `answer${found ? '' : ' none'}`, 'data-solve': a.solve },
        el('span', { class: 'q', text: a.label }),
        el('span', { class: 'a', text: !ok ? 'n/a' : found ? doc.answer.label : 'none' }),
        el('span', { class: 'why', text: ok ? doc.answer.reason : (doc && doc.error ? doc.error.message : 'no answer') }));
      if (found && isCurrent(a)) {
        card.append(el('span', { class: 'current', text: 'as set now' }));
      } else if (found) {
        card.append(el('button', { type: 'button', class: 'ghost small', text: 'Use this',
          onclick: () => applyAnswer(a) }));
      }
      box.append(card);
    }
  }

  function renderVerdict(e) {
    const v = $('#verdict');
    v.textContent = '';
    v.className = 'verdict';
    if (e.fits === null) {
      v.classList.add('none');
      v.append(el('span', { class: 'big', text: fmt(e.total_bytes) }),
        el('span', { text: 'per device, largest — choose a GPU for a verdict' }));
      v.dataset.verdict = 'none';
      return;
    }
    // The tightest device decides.
    let worst = null;
    for (const d of e.devices) {
      if (d.capacity_bytes === null) continue;
      const left = d.capacity_bytes - d.total_bytes;
      if (!worst || left < worst.left) worst = { d, left };
    }
    const used = Math.round((100 * worst.d.total_bytes) / worst.d.capacity_bytes);
    // verdict: "fits" | "tight" (the capacity lies inside the measured error band) | "does not fit".
    const tight = e.verdict === 'tight';
    v.classList.add(tight ? 'tight' : e.fits ? 'fits' : 'nofit');
    v.dataset.verdict = tight ? 'tight' : e.fits ? 'fits' : 'does-not-fit';
    v.append(el('span', { class: 'big', text: tight ? 'Tight' : e.fits ? 'Fits' : 'Does not fit' }),
      el('span', { class: 'detail', id: 'headroom', 'data-bytes': String(Math.abs(worst.left)),
        text: e.fits ? `${fmt(worst.left)} headroom (${used}% of ${worst.d.gpu} used)`
          : `${fmt(-worst.left)} over the ${fmt(worst.d.capacity_bytes)} ${worst.d.gpu} (${used}%)` }));
    // The tightest device's band (p10-p90 of the measured errors), when one applies.
    const u = worst.d.uncertainty;
    if (u && u.low_bytes !== undefined) {
      const keep = u.high_bytes - worst.d.total_bytes;
      v.append(el('span', { class: 'detail band', id: 'band', title: u.basis,
        text: `error band ${fmt(u.low_bytes)} \u2013 ${fmt(u.high_bytes)}`
          + (tight ? ` \u2014 fits, but within the error of this estimate: keep ${fmt(keep)} free` : '') }));
    } else if (u) {
      v.append(el('span', { class: 'detail band', id: 'band', text: 'no error band', title: u.basis }));
    }
  }

  function card(label, bytesOrText, id, sub) {
    const isBytes = typeof bytesOrText === 'number';
    return el('div', { class: 'card' },
      el('div', { class: 'label', text: label }),
      el('div', { class: 'value', id, 'data-bytes': isBytes ? String(bytesOrText) : null,
        text: isBytes ? fmt(bytesOrText) : bytesOrText }),
      sub ? el('div', { class: 'sub', text: sub }) : null);
  }

  function renderSummary(e) {
    const s = $('#summary');
    s.textContent = '';
    const d0 = e.devices.reduce((a, b) => (b.total_bytes > a.total_bytes ? b : a), e.devices[0]);
    s.append(card('Total per GPU', e.total_bytes, 'total', 'as nvidia-smi shows, largest device'));
    if (d0 && d0.allocated_peak_bytes !== null) {
      s.append(card('Allocated peak', d0.allocated_peak_bytes, 'allocated',
        `reserved ${fmt(d0.reserved_peak_bytes)} · at ${d0.peak_phase}`));
    }
    s.append(card('Weights', e.model.weight_bytes, 'weights',
      `${formatCount(e.model.params)} params${e.model.active_params !== e.model.params
        ? ` (${formatCount(e.model.active_params)} active)` : ''}`));
    if (e.model.kv_bytes_per_token > 0) s.append(card('KV cache per token', e.model.kv_bytes_per_token, 'kvtok'));
    if (e.throughput) {
      s.append(card('Decode speed', `${Math.round(e.throughput.decode_tokens_per_s)} tok/s`, 'decode',
        `per sequence · prefill ${Math.round(e.throughput.prefill_tokens_per_s).toLocaleString('en-US')} tok/s`));
      $('#decode').title = e.throughput.assumptions;
    }
    if (e.kv_cache && e.kv_cache.capacity_tokens !== null) {
      s.append(card('KV capacity', `${e.kv_cache.capacity_tokens.toLocaleString('en-US')} tokens`, 'kvcap',
        e.kv_cache.max_concurrency !== null ? `max concurrency ${e.kv_cache.max_concurrency}` : null));
    }
    $('#model-id').textContent = e.model.id;
  }

  function renderBars(e) {
    const box = $('#devices');
    box.textContent = '';
    const scale = Math.max(...e.devices.map((d) => Math.max(d.total_bytes, d.capacity_bytes || 0))) || 1;
    const legend = new Map();
    for (const g of groupDevices(e.devices)) {
      const d = g.first;
      const name = g.count > 1 ? `${d.name} … ${e.devices[g.index + g.count - 1].name}` : d.name;
      const head = el('div', { class: 'dev-head' },
        el('span', { class: 'dev-name', text: name }),
        el('span', { class: 'dev-gpu', text: d.gpu ? `${g.count > 1 ? g.count + ' × ' : ''}${d.gpu} (${fmt(d.capacity_bytes)})` : 'no GPU' }),
        el('span', { class: 'dev-total', 'data-bytes': String(d.total_bytes), text: fmt(d.total_bytes) }));
      const bar = el('div', { class: 'bar', role: 'img',
        'aria-label': `${name}: ${d.components.map((c) => `${c.name} ${fmt(c.bytes)}`).join(', ')}` });
      for (const c of d.components) {
        if (c.bytes <= 0) continue;
        const seg = el('div', { class: 'seg', title: `${c.name}: ${fmt(c.bytes)}` });
        seg.style.width = `${(100 * c.bytes) / scale}%`;
        seg.style.background = color(c.name);
        bar.append(seg);
        legend.set(c.name, true);
      }
      if (d.capacity_bytes !== null) {
        const cap = el('div', { class: 'cap', title: `${d.gpu}: ${fmt(d.capacity_bytes)}` });
        cap.style.left = `${(100 * d.capacity_bytes) / scale}%`;
        bar.append(cap);
        if (d.total_bytes > d.capacity_bytes) bar.classList.add('over');
      }
      const row = el('div', { class: 'device', 'data-device': d.name }, head, bar);
      if (d.capacity_bytes !== null) {
        const left = d.capacity_bytes - d.total_bytes;
        row.append(el('div', { class: `dev-foot ${left >= 0 ? 'ok' : 'bad'}`,
          text: left >= 0 ? `${fmt(left)} free of ${fmt(d.capacity_bytes)}`
            : `${fmt(-left)} over ${fmt(d.capacity_bytes)}` }));
      }
      box.append(row);
    }
    const lg = $('#legend');
    lg.textContent = '';
    for (const name of legend.keys()) {
      const sw = el('span', { class: 'swatch' });
      sw.style.background = color(name);
      lg.append(el('span', { class: 'item' }, sw, name));
    }
  }

  function renderBreakdown(e) {
    const pick = $('#device-pick');
    const groups = groupDevices(e.devices);
    pick.textContent = '';
    for (const g of groups) {
      pick.append(el('option', { value: String(g.index), text: `${g.first.name}${g.first.gpu ? ' · ' + g.first.gpu : ''}` }));
    }
    if (!groups.some((g) => g.index === state.device)) state.device = groups[0].index;
    pick.value = String(state.device);
    pick.parentElement.hidden = groups.length < 2;
    const d = e.devices[state.device];
    const tbody = $('#breakdown tbody');
    tbody.textContent = '';
    for (const c of d.components) {
      const sw = el('span', { class: 'swatch' });
      sw.style.background = color(c.name);
      tbody.append(el('tr', { class: 'top', 'data-component': c.name },
        el('th', { scope: 'row' }, sw, c.name),
        el('td', { class: 'num', 'data-bytes': String(c.bytes), text: fmt(c.bytes) }),
        el('td', { class: 'formula', text: c.formula || '' })));
      for (const ch of c.children) {
        tbody.append(el('tr', { class: 'child' },
          el('th', { scope: 'row', text: ch.name }),
          el('td', { class: 'num', 'data-bytes': String(ch.bytes), text: fmt(ch.bytes) }),
          el('td', { class: 'formula', text: ch.formula || '' })));
      }
    }
    $('#breakdown tfoot').textContent = '';
    $('#breakdown tfoot').append(el('tr', {},
      el('th', { scope: 'row', text: 'total (as nvidia-smi shows)' }),
      el('td', { class: 'num', 'data-bytes': String(d.total_bytes), text: fmt(d.total_bytes) }),
      el('td', { class: 'formula', text: d.peak_phase ? `peak at ${d.peak_phase}` : '' })));
  }

  function renderNotes(e) {
    const ul = $('#notes');
    ul.textContent = '';
    for (const n of e.notes) ul.append(el('li', { text: n }));
    const lf = $('#launch');
    lf.hidden = !(e.launch_flags && e.launch_flags.length);
    if (!lf.hidden) $('#launch code').textContent = e.launch_flags.join(' ');
  }

  // ---- The chart: memory against context / batch / sequence length -------

  let chartCursor = -1;
  function renderChart() {
    const svg = $('#chart');
    svg.textContent = '';
    const axisName = { ctx: 'context (tokens per sequence)', batch: 'batch', seq: 'sequence length (tokens)' };
    for (const b of document.querySelectorAll('#chart-axis button')) {
      b.hidden = !(state.mode === 'train' ? ['seq', 'batch'] : ['ctx', 'batch']).includes(b.dataset.vary);
      b.setAttribute('aria-pressed', String(b.dataset.vary === state.chart));
    }
    if (!lastSeries || lastSeries.vary !== state.chart) return;
    const pts = lastSeries.doc.points.filter((p) => p.total_bytes !== undefined);
    if (pts.length < 2) return;
    const W = 720, H = 260, L = 64, R = 16, T = 14, B = 40;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const caps = [...new Set(pts[0].devices.map((d) => d.capacity_bytes).filter((c) => c !== null))];
    const ymax = Math.max(...pts.map((p) => p.total_bytes), ...caps) * 1.08;
    const lx = (v) => Math.log2(v);
    const x0 = lx(pts[0].value), x1 = lx(pts[pts.length - 1].value);
    const X = (v) => L + ((lx(v) - x0) / (x1 - x0 || 1)) * (W - L - R);
    const Y = (b) => H - B - (b / ymax) * (H - T - B);
    // Grid and axes.
    const unit = state.units === 'gb' ? 1e9 : GiB;
    const step = niceStep(ymax / unit / 5);
    for (let g = 0; g * step * unit <= ymax; ++g) {
      const y = Y(g * step * unit);
      svg.append(sv('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }));
      const t = sv('text', { x: L - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' });
      t.textContent = `${+(g * step).toFixed(2)} ${state.units === 'gb' ? 'GB' : 'GiB'}`;
      svg.append(t);
    }
    for (const p of pts) {
      const t = sv('text', { x: X(p.value), y: H - B + 16, class: 'tick', 'text-anchor': 'middle' });
      t.textContent = formatTokens(p.value);
      if (p.value === lastSeries.current && !Number.isInteger(Math.log2(p.value))) continue;
      svg.append(t);
    }
    const xl = sv('text', { x: (L + W - R) / 2, y: H - 6, class: 'axis', 'text-anchor': 'middle' });
    xl.textContent = axisName[lastSeries.vary];
    svg.append(xl);
    // Stacked areas by component (the largest device at each point).
    const names = [];
    for (const p of pts) for (const c of p.components) if (!names.includes(c.name)) names.push(c.name);
    const base = pts.map(() => 0);
    for (const name of names) {
      const top = pts.map((p, i) => base[i] + ((p.components.find((c) => c.name === name) || {}).bytes || 0));
      let d = '';
      pts.forEach((p, i) => { d += `${i ? 'L' : 'M'}${X(p.value).toFixed(1)},${Y(top[i]).toFixed(1)}`; });
      for (let i = pts.length - 1; i >= 0; --i) d += `L${X(pts[i].value).toFixed(1)},${Y(base[i]).toFixed(1)}`;
      const area = sv('path', { d: d + 'Z', fill: color(name), class: 'area' });
      const title = sv('title');
      title.textContent = name;
      area.append(title);
      svg.append(area);
      top.forEach((v, i) => { base[i] = v; });
    }
    // Total line, capacity lines, current value.
    let line = '';
    pts.forEach((p, i) => { line += `${i ? 'L' : 'M'}${X(p.value).toFixed(1)},${Y(p.total_bytes).toFixed(1)}`; });
    svg.append(sv('path', { d: line, class: 'total' }));
    for (const c of caps) {
      svg.append(sv('line', { x1: L, x2: W - R, y1: Y(c), y2: Y(c), class: 'capline' }));
      const t = sv('text', { x: W - R - 4, y: Y(c) - 5, class: 'caplabel', 'text-anchor': 'end' });
      const gpu = (lastEstimate && lastEstimate.doc.devices.find((d) => d.capacity_bytes === c) || {}).gpu || 'GPU';
      t.textContent = `${gpu} ${fmt(c)}`;
      svg.append(t);
    }
    const cur = pts.find((p) => p.value === lastSeries.current);
    if (cur) {
      svg.append(sv('line', { x1: X(cur.value), x2: X(cur.value), y1: T, y2: H - B, class: 'current' }));
      svg.append(sv('circle', { cx: X(cur.value), cy: Y(cur.total_bytes), r: 4.5, class: 'current-dot' }));
    }
    // Largest value that fits, when the curve crosses a capacity line.
    const fitsAll = pts.filter((p) => p.fits === true);
    const note = $('#chart-note');
    if (caps.length && fitsAll.length && fitsAll.length < pts.length) {
      const best = fitsAll[fitsAll.length - 1];
      note.textContent = `Fits up to ${formatTokens(best.value)} of the values charted (${fmt(best.total_bytes)}).`;
    } else if (caps.length && !fitsAll.length) {
      note.textContent = 'None of the charted values fits.';
    } else {
      note.textContent = caps.length ? 'Every charted value fits.' : '';
    }
    // Keyboard / pointer cursor over the points.
    if (chartCursor >= pts.length) chartCursor = -1;
    const hot = sv('g', { class: 'hot' });
    svg.append(hot);
    const showCursor = (i) => {
      hot.textContent = '';
      chartCursor = i;
      if (i < 0) { $('#chart-readout').textContent = ''; return; }
      const p = pts[i];
      hot.append(sv('circle', { cx: X(p.value), cy: Y(p.total_bytes), r: 5, class: 'cursor' }));
      $('#chart-readout').textContent =
        `${lastSeries.vary} ${p.value.toLocaleString('en-US')}: ${fmt(p.total_bytes)}${p.fits === false ? ' — does not fit' : ''} (Enter uses it)`;
    };
    svg.onkeydown = (ev) => {
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        ev.preventDefault();
        const i = chartCursor < 0 ? pts.indexOf(cur) : chartCursor;
        showCursor(Math.max(0, Math.min(pts.length - 1, i + (ev.key === 'ArrowRight' ? 1 : -1))));
      } else if (ev.key === 'Enter' && chartCursor >= 0) {
        setValue(lastSeries.vary, String(pts[chartCursor].value));
      }
    };
    svg.onmousemove = (ev) => {
      const r = svg.getBoundingClientRect();
      const x = ((ev.clientX - r.left) / r.width) * W;
      let best = 0;
      pts.forEach((p, i) => { if (Math.abs(X(p.value) - x) < Math.abs(X(pts[best].value) - x)) best = i; });
      showCursor(best);
    };
    svg.onmouseleave = () => showCursor(-1);
    svg.onclick = () => { if (chartCursor >= 0) setValue(lastSeries.vary, String(pts[chartCursor].value)); };
    showCursor(chartCursor);
  }

  function niceStep(raw) {
    const p = 10 ** Math.floor(Math.log10(raw || 1));
    for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }

  // ---- The form ------------------------------------------------------------

  function setValue(key, value) {
    state.values[key] = value;
    const input = document.getElementById(`f-${key}`);
    if (input) syncInput(FIELD[key], input);
    schedule(0);
  }

  function syncInput(f, input) {
    const v = state.values[f.key] ?? (f.def || '');
    if (f.kind === 'bool') input.checked = v === 'true';
    else input.value = v;
    const slider = document.getElementById(`s-${f.key}`);
    if (slider) {
      const n = Number(v || f.placeholder || 1);
      slider.value = String(Math.round(Math.log2(Math.max(1, n))));
    }
  }

  function buildFields() {
    for (const group of ['main', 'adv']) {
      const box = $(group === 'main' ? '#fields-main' : '#fields-adv');
      for (const f of FIELDS.filter((x) => x.group === group)) {
        const id = `f-${f.key}`;
        let input;
        if (f.kind === 'select') {
          input = el('select', { id, name: f.key },
            f.options.map(([v, t]) => el('option', { value: v, text: t })));
        } else if (f.kind === 'bool') {
          input = el('input', { id, name: f.key, type: 'checkbox' });
        } else {
          input = el('input', { id, name: f.key, type: 'text', inputmode: f.kind === 'int' ? 'numeric' : null,
            placeholder: f.placeholder || 'default', list: f.list ? `${id}-list` : null, spellcheck: 'false' });
        }
        const onChange = () => {
          state.values[f.key] = f.kind === 'bool' ? (input.checked ? 'true' : '') : input.value.trim();
          const slider = document.getElementById(`s-${f.key}`);
          if (slider && /^\d+$/.test(state.values[f.key])) {
            slider.value = String(Math.round(Math.log2(Math.max(1, Number(state.values[f.key])))));
          }
          if (f.key === 'runtime') showFields();
          schedule();
        };
        input.addEventListener('input', onChange);
        input.addEventListener('change', onChange);
        const wrap = el('div', { class: `field field-${f.kind}`, 'data-key': f.key },
          el('label', { for: id }, f.label, f.unit ? el('span', { class: 'unit', text: f.unit }) : null));
        if (f.kind === 'bool') wrap.classList.add('check');
        wrap.append(input);
        if (f.list) wrap.append(el('datalist', { id: `${id}-list` }, f.list.map((v) => el('option', { value: v }))));
        if (f.slider) {
          const slider = el('input', { id: `s-${f.key}`, type: 'range', min: f.slider[0], max: f.slider[1], step: 1,
            'aria-label': `${f.label} (powers of two)` });
          slider.addEventListener('input', () => {
            state.values[f.key] = String(2 ** Number(slider.value));
            input.value = state.values[f.key];
            schedule();
          });
          wrap.append(slider);
        }
        box.append(wrap);
        syncInput(f, input);
      }
    }
  }

  function showFields() {
    for (const f of FIELDS) {
      const wrap = document.querySelector(`.field[data-key="${f.key}"]`);
      if (wrap) wrap.hidden = !applies(f);
    }
    for (const b of document.querySelectorAll('#mode button')) {
      b.setAttribute('aria-pressed', String(b.dataset.mode === state.mode));
    }
  }

  // GPUs: rows of (catalog name, count).
  function renderGpuRows() {
    const box = $('#gpu-rows');
    box.textContent = '';
    state.gpus.forEach((g, i) => {
      const sel = el('select', { id: `gpu-${i}`, 'aria-label': `GPU ${i + 1}` },
        el('option', { value: '', text: 'no GPU (memory only)' }));
      const vendors = [...new Set(gpuCatalog.map((x) => x.vendor))];
      for (const v of vendors) {
        const og = el('optgroup', { label: v === 'nvidia' ? 'NVIDIA' : v === 'amd' ? 'AMD' : v === 'apple' ? 'Apple' : v });
        for (const x of gpuCatalog.filter((y) => y.vendor === v)) {
          og.append(el('option', { value: x.name, text: `${x.name} — ${formatBytes(x.capacity_bytes, state.units)}` }));
        }
        sel.append(og);
      }
      if (g.name && !gpuCatalog.some((x) => x.name === g.name)) sel.append(el('option', { value: g.name, text: g.name }));
      sel.value = g.name;
      sel.addEventListener('change', () => { g.name = sel.value; schedule(); });
      const count = el('input', { type: 'number', min: 1, max: 4096, value: String(g.count), class: 'count',
        'aria-label': `number of GPU ${i + 1}` });
      count.addEventListener('input', () => {
        const n = Number(count.value);
        if (Number.isInteger(n) && n >= 1) { g.count = n; schedule(); }
      });
      const remove = el('button', { type: 'button', class: 'icon', 'aria-label': `remove GPU ${i + 1}`, text: '×',
        onclick: () => { state.gpus.splice(i, 1); if (!state.gpus.length) state.gpus.push({ name: '', count: 1 }); renderGpuRows(); schedule(); } });
      box.append(el('div', { class: 'gpu-row' }, sel, el('span', { class: 'times', text: '×' }), count, remove));
    });
  }

  // Model search: a combobox over /api/v1/models.
  function setupModelSearch() {
    const input = $('#model');
    const list = $('#model-list');
    let items = [];
    let active = -1;
    let searchTimer = 0;
    const close = () => { list.hidden = true; input.setAttribute('aria-expanded', 'false'); active = -1; };
    const choose = (id) => {
      state.model = id;
      input.value = id;
      close();
      showSource('catalog');
      schedule(0);
    };
    const paint = () => {
      list.textContent = '';
      items.forEach((m, i) => {
        const li = el('li', { role: 'option', id: `opt-${i}`, 'aria-selected': String(i === active),
          'data-id': m.id },
        el('span', { class: 'mid', text: m.id }),
        el('span', { class: 'mdesc', text: `${m.display}${m.exact_params ? ' · ' + formatCount(m.exact_params) : ''}` }));
        li.addEventListener('mousedown', (ev) => { ev.preventDefault(); choose(m.id); });
        list.append(li);
      });
      list.hidden = items.length === 0;
      input.setAttribute('aria-expanded', String(!list.hidden));
      input.setAttribute('aria-activedescendant', active >= 0 ? `opt-${active}` : '');
      if (active >= 0) list.children[active].scrollIntoView({ block: 'nearest' });
    };
    const search = async () => {
      const q = input.value.trim();
      const res = await fetch(`${API}/models?q=${encodeURIComponent(q)}`);
      if (!res.ok) return;
      const doc = await res.json();
      if (input.value.trim() !== q) return;
      items = doc.models.slice(0, 30);
      active = items.length ? 0 : -1;
      paint();
    };
    input.addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 80); });
    input.addEventListener('focus', () => { if (!items.length) search(); else paint(); });
    input.addEventListener('blur', () => setTimeout(close, 100));
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        if (list.hidden) { paint(); return; }
        active = (active + (ev.key === 'ArrowDown' ? 1 : -1) + items.length) % Math.max(1, items.length);
        paint();
      } else if (ev.key === 'Enter') {
        ev.preventDefault();
        if (!list.hidden && active >= 0 && items[active]) choose(items[active].id);
        else if (input.value.trim()) choose(input.value.trim());
      } else if (ev.key === 'Escape') {
        close();
      }
    });
  }

  // Shows a source tab; the estimate follows it when the tab has a model.
  function showSource(which) {
    const ready = { catalog: !!state.model, config: !!state.config, upload: !!state.upload };
    if (ready[which] && state.source !== which) { state.source = which; schedule(0); }
    for (const b of document.querySelectorAll('#source-tabs button')) {
      const on = b.dataset.source === which;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      document.getElementById(b.getAttribute('aria-controls')).hidden = !on;
    }
  }

  function setupConfig() {
    const ta = $('#config');
    ta.value = state.configText;
    const status = $('#config-status');
    ta.addEventListener('input', () => {
      const text = ta.value.trim();
      if (!text) { status.textContent = ''; return; }
      try {
        state.config = JSON.parse(text);
        state.configText = text;
        state.source = 'config';
        status.textContent = 'config.json read; estimating from it.';
        status.className = 'hint ok';
        schedule();
      } catch (e) {
        status.textContent = `not valid JSON yet: ${e.message}`;
        status.className = 'hint bad';
      }
    });
  }

  // ---- Dropped files: only their headers travel ---------------------------

  class NeedMore extends Error {}
  // The byte length of a GGUF header (magic .. last tensor info); throws
  // NeedMore when `buf` stops before it.
  function ggufHeaderLength(buf) {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let p = 0;
    const need = (n) => { if (p + n > buf.byteLength) throw new NeedMore(); };
    const u32 = () => { need(4); const v = dv.getUint32(p, true); p += 4; return v; };
    const u64 = () => { need(8); const v = dv.getBigUint64(p, true); p += 8; if (v > 2n ** 40n) throw new Error('a length in the GGUF header is implausibly large'); return Number(v); };
    const str = () => { const n = u64(); need(n); p += n; };
    const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    const value = (t) => {
      if (t === 8) return str();
      if (t === 9) {
        const et = u32(); const n = u64();
        if (et === 8) { for (let i = 0; i < n; ++i) str(); return; }
        if (!(et in SIZES)) throw new Error(`unknown GGUF array type ${et}`);
        need(SIZES[et] * n); p += SIZES[et] * n; return;
      }
      if (!(t in SIZES)) throw new Error(`unknown GGUF value type ${t}`);
      need(SIZES[t]); p += SIZES[t];
    };
    need(4);
    if (String.fromCharCode(buf[0], buf[1], buf[2], buf[3]) !== 'GGUF') throw new Error('not a GGUF file');
    const version = u32();
    if (version < 2) throw new Error(`GGUF version ${version} is not supported`);
    const nTensors = u64(); const nKv = u64();
    for (let i = 0; i < nKv; ++i) { str(); value(u32()); }
    for (let i = 0; i < nTensors; ++i) { str(); const nd = u32(); need(8 * nd); p += 8 * nd; u32(); u64(); }
    return p;
  }

  const MAX_HEADER = 24 * MiB;
  async function ggufHeader(file) {
    for (let n = Math.min(file.size, MiB); ; n = Math.min(file.size, n * 4)) {
      const buf = new Uint8Array(await file.slice(0, n).arrayBuffer());
      try {
        return buf.subarray(0, ggufHeaderLength(buf));
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        if (n >= file.size) throw new Error('the file ends inside its GGUF header');
        if (n >= MAX_HEADER) throw new Error(`the GGUF header is larger than ${MAX_HEADER / MiB} MiB`);
      }
    }
  }
  async function safetensorsHeader(file) {
    const head = new DataView(await file.slice(0, 8).arrayBuffer());
    if (head.byteLength < 8) throw new Error('shorter than a safetensors header');
    const n = Number(head.getBigUint64(0, true));
    if (n > MAX_HEADER) throw new Error(`a header of ${n} bytes is larger than ${MAX_HEADER / MiB} MiB`);
    return new Uint8Array(await file.slice(0, 8 + n).arrayBuffer());
  }
  function base64(bytes) {
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  async function takeFiles(fileList) {
    const status = $('#upload-status');
    const files = [...fileList];
    const body = { files: [] };
    try {
      for (const f of files) {
        const name = f.name.toLowerCase();
        if (name.endsWith('.index.json')) body.index = JSON.parse(await f.text());
        else if (name.endsWith('.json')) body.config = JSON.parse(await f.text());
      }
      for (const f of files) {
        const name = f.name.toLowerCase();
        if (name.endsWith('.json')) continue;
        status.textContent = `reading the header of ${f.name}…`;
        const header = name.endsWith('.gguf') ? await ggufHeader(f)
          : name.endsWith('.safetensors') ? await safetensorsHeader(f) : null;
        if (!header) throw new Error(`${f.name}: not a .gguf, .safetensors or .json file`);
        body.files.push({ name: f.name, size: f.size, header: base64(header) });
      }
      if (!body.files.length && body.config) {
        state.config = body.config;
        state.configText = JSON.stringify(body.config, null, 2);
        $('#config').value = state.configText;
        state.source = 'config';
        showSource('config');
        status.textContent = '';
        schedule(0);
        return;
      }
      const sent = body.files.reduce((a, f) => a + f.header.length, 0);
      status.textContent = `sending ${formatBytes(sent, 'gib')} of headers…`;
      const { status: code, doc } = await postJson('/upload', body);
      if (code !== 200) throw new Error(doc && doc.error ? doc.error.message : `HTTP ${code}`);
      state.source = 'upload';
      state.upload = doc.model;
      state.uploadLabel = doc.id;
      status.className = 'hint ok';
      status.textContent = `${doc.id}: ${doc.file_format}, ${formatCount(doc.params)} params, ${doc.tensors} tensors (only headers were read)`;
      schedule(0);
    } catch (e) {
      status.className = 'hint bad';
      status.textContent = e.message;
    }
  }

  function setupDrop() {
    const drop = $('#drop');
    const input = $('#files');
    input.addEventListener('change', () => takeFiles(input.files));
    drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (ev) => { ev.preventDefault(); drop.classList.remove('over'); takeFiles(ev.dataTransfer.files); });
    drop.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); input.click(); } });
    const formats = [features.upload_gguf && '.gguf', features.upload_safetensors && '.safetensors + config.json']
      .filter(Boolean);
    $('#drop-formats').textContent = formats.length ? formats.join(', or ') : 'file headers are not readable in this build';
  }

  function setupChrome() {
    $('#form').addEventListener('submit', (ev) => ev.preventDefault());
    for (const b of document.querySelectorAll('#units button')) {
      b.addEventListener('click', () => {
        state.units = b.dataset.units;
        for (const x of document.querySelectorAll('#units button')) x.setAttribute('aria-pressed', String(x === b));
        writeUrl();
        renderEstimate();
        renderGpuRows();
      });
      b.setAttribute('aria-pressed', String(b.dataset.units === state.units));
    }
    for (const b of document.querySelectorAll('#mode button')) {
      b.addEventListener('click', () => {
        if (b.disabled) return;
        state.mode = b.dataset.mode;
        state.chart = defaultChart();
        lastSeries = null;
        showFields();
        schedule(0);
      });
      if (b.dataset.mode === 'train' && !features.train) {
        b.disabled = true;
        b.title = 'training estimates are not in this build yet';
      }
    }
    for (const b of document.querySelectorAll('#chart-axis button')) {
      b.addEventListener('click', () => { state.chart = b.dataset.vary; lastSeries = null; renderChart(); schedule(0); });
    }
    const tabs = [...document.querySelectorAll('#source-tabs button')];
    tabs.forEach((b, i) => {
      b.addEventListener('click', () => showSource(b.dataset.source));
      b.addEventListener('keydown', (ev) => {
        if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
        const next = tabs[(i + (ev.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
        next.focus();
        showSource(next.dataset.source);
      });
    });
    $('#add-gpu').addEventListener('click', () => {
      state.gpus.push({ name: state.gpus[state.gpus.length - 1]?.name || 'RTX-4090', count: 1 });
      renderGpuRows();
      schedule();
      $(`#gpu-${state.gpus.length - 1}`).focus();
    });
    $('#share').addEventListener('click', async () => {
      writeUrl();
      try { await navigator.clipboard.writeText(location.href); $('#share').textContent = 'Link copied'; }
      catch (e) { $('#share').textContent = 'Copy the address bar'; }
      setTimeout(() => { $('#share').textContent = 'Copy link'; }, 1500);
    });
    $('#copy-cli').addEventListener('click', async () => {
      try { await navigator.clipboard.writeText($('#cli').textContent); $('#copy-cli').textContent = 'Copied'; }
      catch (e) { /* clipboard needs a secure context; the text is selectable */ }
      setTimeout(() => { $('#copy-cli').textContent = 'Copy'; }, 1500);
    });
    $('#device-pick').addEventListener('change', (ev) => {
      state.device = Number(ev.target.value);
      if (lastEstimate) renderBreakdown(lastEstimate.doc);
    });
    document.addEventListener('keydown', (ev) => {
      const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
      if (ev.key === '/' && !typing) { ev.preventDefault(); showSource('catalog'); $('#model').focus(); $('#model').select(); }
    });
  }

  async function start() {
    readUrl();
    try {
      const [v, g] = await Promise.all([fetch(`${API}/version`).then((r) => r.json()),
        fetch(`${API}/gpus`).then((r) => r.json())]);
      features = v.features;
      gpuCatalog = g.gpus;
      $('#version').textContent = `vramfit ${v.version}`;
    } catch (e) {
      showError(`cannot reach the vramfit server (${e.message})`, 0);
    }
    if (!features.train && state.mode === 'train') state.mode = 'infer';
    if (!state.chart || !(state.mode === 'train' ? ['seq', 'batch'] : ['ctx', 'batch']).includes(state.chart)) {
      state.chart = defaultChart();
    }
    buildFields();
    setupChrome();
    setupModelSearch();
    setupConfig();
    setupDrop();
    renderGpuRows();
    showFields();
    $('#model').value = state.model;
    showSource(state.source);
    schedule(0);
  }

  start();
})();

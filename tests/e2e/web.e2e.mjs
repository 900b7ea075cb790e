// End-to-end test of `vramfit serve` in a real headless browser: Debian's
// chromium driven by playwright-core (no browser download).
//
//   node web.e2e.mjs PATH/TO/vramfit ARTIFACT_DIR
//
// Starts the server on a free loopback port, loads the page, picks a model
// with the keyboard and a GPU, changes the context, and checks that every
// number the page shows equals the API's bytes for the same settings and the
// CLI's own text for the same command (the CLI is the reference the API and
// the page must agree with). Saves screenshots under ARTIFACT_DIR.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [binary, artifacts] = process.argv.slice(2);
if (!binary || !artifacts) {
  console.error('usage: node web.e2e.mjs VRAMFIT ARTIFACT_DIR');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const CHROMIUM = process.env.VRAMFIT_CHROMIUM || '/usr/bin/chromium';

let failures = 0;
function check(cond, what, detail = '') {
  if (cond) console.log(`ok - ${what}`);
  else { failures += 1; console.log(`not ok - ${what}${detail ? `\n  ${detail}` : ''}`); }
}
function equal(got, want, what) {
  check(got === want, what, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// The CLI's text for the same job: "  weights    14.96 GiB ..." lines.
function cliText(args) {
  try {
    return execFileSync(binary, args, { encoding: 'utf8' });
  } catch (e) {
    return e.stdout; // exit 3 (does not fit) still prints the table
  }
}
function cliValue(text, label) {
  const line = text.split('\n').find((l) => l.startsWith(`  ${label} `));
  if (!line) return null;
  const m = /\s(-?[\d.]+ (?:GiB|MiB|KiB|GB|MB|kB|B))\b/.exec(line.slice(2 + label.length));
  return m ? m[1] : null;
}

function startServer() {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['serve', '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1] }); }
    });
    proc.stderr.on('data', (d) => process.stderr.write(`server: ${d}`));
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

// Waits until the page shows an estimate for a request whose keys equal
// `want` (e.g. {ctx: 16384}). The page's CSP (script-src 'self', no
// 'unsafe-eval') forbids compiling strings in the page, so the predicate is a
// plain function and `want` travels as its JSON argument.
async function waitReady(page, want = {}, timeout = 20000) {
  await page.waitForFunction((w) => {
    const r = document.querySelector('#results');
    if (document.body.dataset.state !== 'ready' || !r.dataset.request) return false;
    const req = JSON.parse(r.dataset.request);
    return Object.entries(w).every(([k, v]) => JSON.stringify(req[k]) === JSON.stringify(v));
  }, want, { timeout });
}

// The planner panel is done when every question has its card and the status
// line is empty.
async function waitPlan(page, questions, timeout = 20000) {
  await page.waitForFunction((n) => {
    const panel = document.querySelector('#plan-panel');
    return !panel.hidden && document.querySelectorAll('#plan .answer').length === n &&
      document.querySelector('#plan-status').textContent === '';
  }, questions, { timeout });
}

async function post(url, path, body) {
  const res = await fetch(`${url}api/v1/${path}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, doc: await res.json() };
}

async function main() {
  const { proc, url } = await startServer();
  const profile = mkdtempSync(join(tmpdir(), 'vramfit-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    viewport: { width: 1366, height: 900 },
  });
  const consoleErrors = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    // No request may leave the machine: everything is served by vramfit.
    const offsite = [];
    page.on('request', (r) => { if (!r.url().startsWith(url) && !r.url().startsWith('data:')) offsite.push(r.url()); });

    await page.goto(url);
    await waitReady(page);
    check(true, 'the page loads and shows a first estimate');

    // Choose a model with the keyboard: / jumps to the search, type, arrow, Enter.
    await page.keyboard.press('/');
    await page.keyboard.type('qwen3 8b');
    await page.waitForSelector('#model-list li[data-id="Qwen/Qwen3-8B"]', { timeout: 10000 });
    const options = await page.$$eval('#model-list li', (lis) => lis.map((li) => li.dataset.id));
    for (let i = 0; i < options.indexOf('Qwen/Qwen3-8B'); ++i) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    // Choose a GPU and change the context.
    await page.selectOption('#gpu-0', 'L4');
    await page.fill('#f-ctx', '16384');
    await waitReady(page, { model: 'Qwen/Qwen3-8B', ctx: 16384, gpu: ['L4'] });
    check(true, 'model, GPU and context chosen; the page re-estimated');

    // The same settings, written out by the test (not read from the page).
    const settings = { mode: 'infer', model: 'Qwen/Qwen3-8B', gpu: ['L4'], ctx: 16384 };
    const body = JSON.parse(await page.$eval('#results', (r) => r.dataset.request));
    equal(JSON.stringify(body), JSON.stringify(settings), 'the request the page sent');
    const est = await post(url, 'estimate', settings);
    equal(est.status, 200, 'the API answers the same settings');
    const api = est.doc;
    const cli = cliText(['infer', 'Qwen/Qwen3-8B', '--gpu', 'L4', '--ctx', '16384']);

    // Totals: bytes from the API, text from the CLI.
    const total = await page.$eval('#total', (e) => ({ bytes: e.dataset.bytes, text: e.textContent }));
    equal(total.bytes, String(api.total_bytes), 'total bytes shown = API total_bytes');
    equal(total.text, cliValue(cli, 'total (as nvidia-smi shows)'), 'total text shown = CLI text');
    const rows = await page.$$eval('#breakdown tbody tr.top', (trs) => trs.map((tr) => ({
      name: tr.dataset.component, bytes: tr.querySelector('td.num').dataset.bytes, text: tr.querySelector('td.num').textContent,
    })));
    const comps = api.devices[0].components;
    equal(rows.length, comps.length, 'one breakdown row per component');
    for (const c of comps) {
      const row = rows.find((r) => r.name === c.name) || {};
      equal(row.bytes, String(c.bytes), `${c.name}: bytes shown = API`);
      equal(row.text, cliValue(cli, c.name), `${c.name}: text shown = CLI`);
    }
    const barTotal = await page.$eval('.device .dev-total', (e) => e.dataset.bytes);
    equal(barTotal, String(api.devices[0].total_bytes), 'device bar total = API device total');
    const segs = await page.$$eval('.device .bar .seg', (s) => s.length);
    equal(segs, comps.filter((c) => c.bytes > 0).length, 'one bar segment per non-empty component');
    check(await page.$('.device .bar .cap') !== null, 'the bar has a capacity line');
    const verdict = await page.$eval('#verdict', (v) => ({ kind: v.dataset.verdict, headroom: v.querySelector('#headroom')?.textContent }));
    const kinds = { fits: 'fits', tight: 'tight', 'does not fit': 'does-not-fit' };
    equal(verdict.kind, kinds[api.verdict], 'verdict = API verdict');
    const cliVerdict = cli.split('\n').find((l) => /^ {2}(fits: |DOES NOT FIT: )/.test(l)).trim().replace(/^fits: |^DOES NOT FIT: /, '');
    equal(verdict.headroom, cliVerdict, 'headroom / shortfall text = CLI');
    equal(await page.$eval('#weights', (e) => e.dataset.bytes), String(api.model.weight_bytes), 'weights card = API weight_bytes');
    equal(await page.$eval('#kvtok', (e) => e.dataset.bytes), String(api.model.kv_bytes_per_token), 'KV per token card = API');
    if (api.throughput) {
      equal(await page.$eval('#decode', (e) => e.textContent), `${Math.round(api.throughput.decode_tokens_per_s)} tok/s`,
        'decode speed card = API throughput');
    }

    // The chart comes from /api/v1/series at the same settings.
    await page.waitForSelector('#chart path.total', { timeout: 10000 });
    const series = (await post(url, 'series', { ...settings, vary: 'ctx', values: [16384] })).doc;
    equal(series.points[0].total_bytes, api.total_bytes, 'series point at the current context = estimate');
    check(await page.$('#chart circle.current-dot') !== null, 'the chart marks the current context');

    // The planner: one card per question, each the API's /fit answer.
    const questions = ['max-context', 'max-batch', 'min-gpus', 'best-quant'];
    await waitPlan(page, questions.length);
    const cards = await page.$$eval('#plan .answer', (as) => as.map((a) => ({
      solve: a.dataset.solve, answer: a.querySelector('.a').textContent, why: a.querySelector('.why').textContent,
    })));
    equal(JSON.stringify(cards.map((c) => c.solve)), JSON.stringify(questions), 'the planner asks every question');
    const fits = {};
    for (const q of questions) {
      const fit = await post(url, 'fit', { ...settings, solve: q });
      equal(fit.status, 200, `planner ${q}: the API answers`);
      fits[q] = fit.doc;
      const c = cards.find((x) => x.solve === q) || {};
      equal(c.answer, fit.doc.answer.label, `planner ${q}: answer shown = API`);
      equal(c.why, fit.doc.answer.reason, `planner ${q}: reason shown = API`);
    }
    await page.screenshot({ path: join(artifacts, 'web.png'), fullPage: true });

    // GB toggle: the CLI's --units gb text, in the URL too.
    await page.click('#units button[data-units="gb"]');
    const cliGb = cliText(['infer', 'Qwen/Qwen3-8B', '--gpu', 'L4', '--ctx', '16384', '--units', 'gb']);
    equal(await page.$eval('#total', (e) => e.textContent), cliValue(cliGb, 'total (as nvidia-smi shows)'), 'GB toggle: total = CLI --units gb');
    const gbRows = await page.$$eval('#breakdown tbody tr.top', (trs) => trs.map((tr) => [tr.dataset.component, tr.querySelector('td.num').textContent]));
    for (const [name, text] of gbRows) equal(text, cliValue(cliGb, name), `GB toggle: ${name} = CLI --units gb`);
    check(/units=gb/.test(page.url()), 'the URL holds the units', page.url());
    await page.click('#units button[data-units="gib"]');

    // The URL holds the state: a fresh page from the link shows the same.
    const link = page.url();
    check(/ctx=16384/.test(link) && /gpu=L4/.test(link) && /model=Qwen%2FQwen3-8B/.test(link), 'the URL holds the settings', link);
    const page2 = await context.newPage();
    page2.on('pageerror', (e) => consoleErrors.push(e.message));
    await page2.goto(link);
    await waitReady(page2, { ctx: 16384 });
    equal(await page2.$eval('#total', (e) => e.dataset.bytes), String(api.total_bytes), 'the shared link reproduces the estimate');
    await page2.close();

    // "Use this" on the longest context: the page moves to it, and it fits
    // with the planner's own estimate.
    const maxCtx = fits['max-context'].answer.value;
    await page.click('#plan .answer[data-solve="max-context"] button');
    await waitReady(page, { ctx: maxCtx });
    equal(await page.$eval('#f-ctx', (e) => e.value), String(maxCtx), 'Use this: the context field shows the answer');
    equal(await page.$eval('#total', (e) => e.dataset.bytes), String(fits['max-context'].estimate.total_bytes),
      'Use this: total = the planner\'s estimate at the answer');
    check(['fits', 'tight'].includes(await page.$eval('#verdict', (v) => v.dataset.verdict)), 'Use this: the answer fits');
    check(new URL(page.url()).searchParams.get('ctx') === String(maxCtx), 'Use this: the URL follows', page.url());
    // At the planner's edge the capacity lies inside the measured error band: "tight", with what to keep free.
    const atAnswer = (await post(url, 'estimate', { ...settings, ctx: maxCtx })).doc;
    equal(await page.$eval('#verdict', (v) => v.dataset.verdict), kinds[atAnswer.verdict], 'Use this: verdict = API verdict');
    const bandText = await page.$eval('#band', (e) => e.textContent);
    const u = atAnswer.devices[0].uncertainty;
    check(u.low_bytes === undefined ? bandText === 'no error band' : bandText.startsWith('error band '),
      'the band shown = API uncertainty', bandText);
    if (atAnswer.verdict === 'tight') check(bandText.includes('keep'), 'tight: the band says what to keep free', bandText);
    await page.screenshot({ path: join(artifacts, 'web-answer.png'), fullPage: true });

    // Past the answer it does not fit: the fixes table is the API's.
    await page.fill('#f-ctx', '131072');
    await waitReady(page, { ctx: 131072 });
    const over = (await post(url, 'estimate', { ...settings, ctx: 131072 })).doc;
    equal(await page.$eval('#verdict', (v) => v.dataset.verdict), { fits: 'fits', tight: 'tight', 'does not fit': 'does-not-fit' }[over.verdict], 'ctx 131072: verdict = API');
    const fixRows = await page.$$eval('#fixes tbody tr', (trs) => trs.map((tr) => ({
      change: tr.querySelector('code').textContent, bytes: tr.querySelector('td.num').dataset.bytes,
    })));
    equal(JSON.stringify(fixRows), JSON.stringify((over.fixes || []).map((f) => ({ change: f.change, bytes: String(f.total_bytes) }))),
      'the fixes shown = API fixes');
    check(fixRows.length > 0, 'a job that does not fit shows fixes');
    await waitPlan(page, questions.length);
    const minGpus = (await post(url, 'fit', { ...settings, ctx: 131072, solve: 'min-gpus' })).doc;
    equal(await page.$eval('#plan .answer[data-solve="min-gpus"] .a', (e) => e.textContent), minGpus.answer.label,
      'ctx 131072: fewest GPUs shown = API');
    await page.screenshot({ path: join(artifacts, 'web-over.png'), fullPage: true });

    // "Use this" on the best weight format applies every setting the answer
    // names (at 65536 tokens on the L4: fp8 weights + fp8 KV cache).
    await page.fill('#f-ctx', '65536');
    await waitReady(page, { ctx: 65536 });
    await waitPlan(page, questions.length);
    const bestQuant = (await post(url, 'fit', { ...settings, ctx: 65536, solve: 'best-quant' })).doc;
    check(bestQuant.answer.settings && bestQuant.answer.settings.quant === 'fp8' && bestQuant.answer.settings['kv-dtype'] === 'fp8',
      'best-quant at 65536: the API names fp8 weights and KV', JSON.stringify(bestQuant.answer));
    await page.click('#plan .answer[data-solve="best-quant"] button');
    await page.waitForFunction(() => document.body.dataset.state === 'ready' && document.getElementById('f-quant').value === 'fp8'
      && document.getElementById('f-kv-dtype').value === 'fp8', null, { timeout: 10000 });
    await page.waitForFunction((want) => document.body.dataset.state === 'ready'
      && document.getElementById('total').dataset.bytes === want, String(bestQuant.estimate.total_bytes), { timeout: 10000 });
    check(['fits', 'tight'].includes(await page.$eval('#verdict', (v) => v.dataset.verdict)), 'Use this (best-quant): the answer fits');
    check(new URL(page.url()).searchParams.get('quant') === 'fp8', 'Use this (best-quant): the URL follows', page.url());

    // An unknown model shows the API's message, word for word.
    await page.fill('#model', 'meta-llama/Llama-3.1-9B');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: 10000 });
    const shown = await page.$eval('#error .msg', (e) => e.textContent);
    const apiErr = (await post(url, 'estimate', { ...settings, model: 'meta-llama/Llama-3.1-9B', ctx: 131072 })).doc;
    equal(shown, apiErr.error.message, 'an error shows the API message');
    await page.screenshot({ path: join(artifacts, 'web-error.png') });

    check(offsite.length === 0, 'no request leaves the server', offsite.join(' '));
    check(consoleErrors.filter((m) => !/status of 404/.test(m)).length === 0, 'no script errors', consoleErrors.join(' | '));
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    proc.removeAllListeners('exit');
    const exited = new Promise((r) => proc.on('exit', (code, sig) => r({ code, sig })));
    proc.kill('SIGTERM');
    const { code } = await exited;
    equal(code, 0, 'the server stops cleanly on SIGTERM');
  }
  console.log(failures ? `${failures} check(s) failed` : `all checks passed; screenshots in ${artifacts}`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(`e2e: ${e.stack || e}`); process.exit(1); });

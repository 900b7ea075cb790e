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

async function waitReady(page, predicate) {
  await page.waitForFunction((src) => {
    const r = document.querySelector('#results');
    if (document.body.dataset.state !== 'ready' || !r.dataset.request) return false;
    return new Function('req', `return ${src}`)(JSON.parse(r.dataset.request));
  }, predicate.toString().replace(/^\(?req\)?\s*=>\s*/, ''), { timeout: 20000 });
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
    await waitReady(page, (req) => true);
    check(true, 'the page loads and shows a first estimate');

    // Choose a model with the keyboard: search, arrow, Enter.
    await page.keyboard.press('/');
    await page.keyboard.type('qwen3 8b');
    await page.waitForSelector('#model-list li[data-id="Qwen/Qwen3-8B"]', { timeout: 10000 });
    const options = await page.$$eval('#model-list li', (lis) => lis.map((li) => li.dataset.id));
    for (let i = 0; i < options.indexOf('Qwen/Qwen3-8B'); ++i) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    // Choose a GPU and change the context.
    await page.selectOption('#gpu-0', 'L4');
    await page.fill('#f-ctx', '16384');
    await waitReady(page, (req) => req.model === 'Qwen/Qwen3-8B' && req.ctx === 16384 && req.gpu[0] === 'L4');
    check(true, 'model, GPU and context chosen; the page re-estimated');

    const body = JSON.parse(await page.$eval('#results', (r) => r.dataset.request));
    equal(JSON.stringify(body), JSON.stringify({ mode: 'infer', model: 'Qwen/Qwen3-8B', gpu: ['L4'], runtime: 'hf', ctx: 16384 }),
      'the request the page sent');
    const res = await fetch(`${url}api/v1/estimate`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    equal(res.status, 200, 'the API answers the same request');
    const api = await res.json();
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
    equal(verdict.kind, api.fits ? 'fits' : 'does-not-fit', 'verdict = API fits');
    const cliVerdict = cli.split('\n').find((l) => /^ {2}(fits: |DOES NOT FIT: )/.test(l)).trim().replace(/^fits: |^DOES NOT FIT: /, '');
    equal(verdict.headroom, cliVerdict, 'headroom / shortfall text = CLI');

    // The chart comes from /api/v1/series at the same settings.
    await page.waitForSelector('#chart path.total', { timeout: 10000 });
    const series = await (await fetch(`${url}api/v1/series`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...body, vary: 'ctx', values: [16384] }),
    })).json();
    equal(series.points[0].total_bytes, api.total_bytes, 'series point at the current context = estimate');
    check(await page.$('#chart circle.current-dot') !== null, 'the chart marks the current context');

    // GB toggle: the CLI's --units gb text.
    await page.click('#units button[data-units="gb"]');
    const cliGb = cliText(['infer', 'Qwen/Qwen3-8B', '--gpu', 'L4', '--ctx', '16384', '--units', 'gb']);
    equal(await page.$eval('#total', (e) => e.textContent), cliValue(cliGb, 'total (as nvidia-smi shows)'), 'GB toggle: total = CLI --units gb');
    await page.click('#units button[data-units="gib"]');

    // The URL holds the state: a fresh page from the link shows the same.
    const link = page.url();
    check(/ctx=16384/.test(link) && /gpu=L4/.test(link) && /model=Qwen%2FQwen3-8B/.test(link), 'the URL holds the settings', link);
    await page.screenshot({ path: join(artifacts, 'web.png'), fullPage: true });
    const page2 = await context.newPage();
    page2.on('pageerror', (e) => consoleErrors.push(e.message));
    await page2.goto(link);
    await waitReady(page2, (req) => req.ctx === 16384);
    equal(await page2.$eval('#total', (e) => e.dataset.bytes), String(api.total_bytes), 'the shared link reproduces the estimate');
    await page2.close();

    // An unknown model shows the API's message, word for word.
    await page.fill('#model', 'meta-llama/Llama-3.1-9B');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: 10000 });
    const shown = await page.$eval('#error .msg', (e) => e.textContent);
    const apiErr = await (await fetch(`${url}api/v1/estimate`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...body, model: 'meta-llama/Llama-3.1-9B' }),
    })).json();
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

// The web console in a real browser: Debian's chromium driven by
// playwright-core, against a primary and two replicas on loopback. Run by
// tests/ui/run.sh, which installs the tools and bounds the time; this file
// starts and stops every kvstore itself, by PID, and lists the PIDs in
// WORK/pids for the runner's cleanup. Prints "ui: ok - ..." per check and
// "N passed, M failed" last (also into WORK/summary); exits 1 on any
// failure.
//
// node tests/ui/console.mjs --bin ./kvstore --work DIR --shots DIR --tools DIR
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

const opt = {};
for (let i = 2; i + 1 < process.argv.length; i += 2)
  opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const bin = path.resolve(opt.bin);
const work = opt.work;
const shots = opt.shots;
const { chromium } = createRequire(path.join(opt.tools, 'package.json'))(
  'playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync'];
const DOWN_MS = 2000;		// the issue: disconnects and reconnects show within 2 s
const KEYS = 500;
const CONFIG = '{\n  "theme": "dark",\n  "replicas": 2\n}\n';

let passed = 0;
let failed = 0;
const failures = [];
const say = (s) => console.log('ui: ' + s);
function check(what, ok, detail) {
  if (ok) {
    passed++;
    say('ok   - ' + what + (detail ? ' (' + detail + ')' : ''));
  } else {
    failed++;
    failures.push(what);
    say('FAIL - ' + what + (detail ? ': ' + detail : ''));
  }
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- Servers ----

const procs = new Map();	// name -> child process
function startNode(name, env) {
  const log = fs.openSync(path.join(work, name + '.log'), 'a');
  const c = spawn(bin, [], {
    env: { RECOVER_WAIT_MS: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  fs.appendFileSync(path.join(work, 'pids'), c.pid + '\n');
  c.exited = new Promise((r) => c.on('exit', r));
  procs.set(name, c);
  return c;
}
async function stopNode(name, sig) {
  const c = procs.get(name);
  if (c && c.exitCode === null && c.signalCode === null) {
    c.kill(sig);
    await c.exited;
  }
  procs.delete(name);
}
async function stopAll() {
  await Promise.all([...procs.keys()].map((n) => stopNode(n, 'SIGKILL')));
}
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    for (const c of procs.values())
      c.kill('SIGKILL');
    process.exit(1);
  });

// A free port below the ephemeral range (32768 up), where client sockets
// of other tests could take it first.
async function freePort(taken) {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 12000);
    if (taken.includes(p))
      continue;
    const ok = await new Promise((r) => {
      const s = net.createServer().once('error', () => r(false))
        .listen({ port: p, host: '::' }, () => s.close(() => r(true)));
    });
    if (ok)
      return p;
  }
}

async function call(port, method, target, body, headers) {
  const r = await fetch('http://127.0.0.1:' + port + target,
    { method, body, headers });
  return { status: r.status, headers: r.headers,
    body: Buffer.from(await r.arrayBuffer()) };
}
async function ready(port) {
  try {
    return JSON.parse((await call(port, 'GET', '/ready')).body);
  } catch (e) {
    return null;
  }
}
async function until(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v)
      return v;
    if (Date.now() > end)
      throw new Error('timed out after ' + ms + ' ms waiting for ' + what);
    await sleep(25);
  }
}
const curl = (...a) => execFileSync('curl', ['-s', '--max-time', '5', ...a]);

// A reverse proxy that serves the node under /kvstore/p/, stripping the
// prefix, as an ingress with a rewrite rule would.
function proxy(port, target) {
  const s = http.createServer((req, res) => {
    if (!req.url.startsWith('/kvstore/p/')) {
      res.writeHead(404).end('outside /kvstore/p/\n');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: target,
      method: req.method, path: req.url.slice('/kvstore/p'.length),
      headers: req.headers }, (u) => {
      res.writeHead(u.statusCode, u.headers);
      u.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  return new Promise((r) => s.listen(port, '127.0.0.1', () => r(s)));
}

// ---- The test ----

async function main() {
  const ports = [];
  for (let i = 0; i < 5; i++)
    ports.push(await freePort(ports));
  const [P, R1, R2, A, X] = ports;
  const u = (p) => 'http://127.0.0.1:' + p;
  const primaryEnv = { ROLE: 'primary', PORT: String(P),
    DATA_DIR: path.join(work, 'p'), REPLICA_URLS: u(R1) + ',' + u(R2) };
  const replicaEnv = (p) => ({ ROLE: 'replica', PORT: String(p),
    DATA_DIR: path.join(work, 'r' + p), PRIMARY_URL: u(P),
    ADVERTISE_URL: u(p) });

  // A primary that starts on a store of its own, as after any restart
  // (a brand-new one would warn that it started empty).
  startNode('primary', { ...primaryEnv, REPLICA_URLS: '' });
  await until('the primary', () => ready(P), 10000);
  await call(P, 'PUT', '/kv/user/alice', 'Alice Liddell');
  await stopNode('primary', 'SIGTERM');
  startNode('primary', primaryEnv);
  startNode('r1', replicaEnv(R1));
  startNode('r2', replicaEnv(R2));
  const streaming = async () => {
    const s = await ready(P);
    return s && s.replicas && s.replicas.length === 2 &&
      s.replicas.every((r) => r.state === 'streaming');
  };
  await until('both replicas streaming', streaming, 20000);
  say('cluster up: primary ' + u(P) + ', replicas ' + u(R1) + ' ' + u(R2));

  const puts = [];
  for (let i = 0; i < KEYS; i++)
    puts.push(['item/' + String(i).padStart(3, '0'), 'value of item ' + i]);
  puts.push(['config/app.json', CONFIG]);
  puts.push(['user/bob', 'Bob Dylan']);
  puts.push(['greeting', 'Hello, world ✓ — ünïcödé']);
  for (let i = 0; i < puts.length; i += 25)
    await Promise.all(puts.slice(i, i + 25).map(([k, v]) =>
      call(P, 'PUT', '/kv/' + encodeURIComponent(k), v)));
  await call(P, 'PUT', '/kv/bin/blob', Buffer.from([...Array(300).keys()].map((i) => i & 255)));
  await call(P, 'PUT', '/kv/raw/%FF%FE', 'a key that is not UTF-8');

  const profile = path.join(work, 'profile');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS,
    viewport: { width: 1180, height: 860 }, timeout: 60000,
  });
  ctx.setDefaultTimeout(10000);
  const requests = [];
  ctx.on('request', (r) => requests.push(r.url()));
  const errors = [];
  const page = await ctx.newPage();
  // A 400, 401 or 404 the test provokes is logged by Chromium; nothing
  // else may be.
  page.on('console', (m) => m.type() === 'error' &&
    !/^Failed to load resource: .* status of (400|401|404) /.test(m.text()) &&
    errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));

  try {
    await primaryPage(page, { P, R1, R2, u, replicaEnv });
    await keyBrowser(page, { P, u });
    await tokenFlow(page, { A, u });
    await replicaPage(page, { P, R1, u });
    await layout(page, { P, u });
    await behindProxy(page, { P, X });
  } catch (e) {
    check('no step threw', false, e.stack);
  }
  const nodes = [P, R1, R2, A, X].map((p) => u(p) + '/');
  const outside = requests.filter((r) => !nodes.some((n) => r.startsWith(n)));
  check('the pages made no request outside the nodes', outside.length === 0,
    requests.length + ' requests' + (outside.length ? '; outside: ' +
    outside.slice(0, 5).join(' ') : ''));
  check('no script error or CSP violation in the console', errors.length === 0,
    errors.slice(0, 5).join(' | '));
  await ctx.close();
}

// Cluster view on the primary: replicas, a kill and a restart.
async function primaryPage(page, { P, R1, R2, u, replicaEnv }) {
  const res = await page.goto(u(P) + '/');
  const csp = res.headers()['content-security-policy'] || '';
  check('the page is served with a strict CSP', res.status() === 200 &&
    csp.includes("default-src 'none'") && csp.includes("script-src 'self'") &&
    !csp.includes('unsafe'), csp);
  await page.waitForSelector('#node .role');
  check('the node says it is the primary',
    (await page.textContent('#node .role')) === 'primary');
  const row = (p) => '#repl tr[data-url="' + u(p) + '"]';
  await page.waitForSelector(row(R1) + '[data-state="streaming"]');
  await page.waitForSelector(row(R2) + '[data-state="streaming"]');
  for (const p of [R1, R2]) {
    const lag = await page.textContent(row(p) + ' td[data-label="Lag"]');
    check('replica ' + u(p) + ' is listed streaming, with its lag',
      /^\d[\d,]* writes? · \d+(\.\d)? m?s$/.test(lag), lag);
  }
  const resyncs = async () => page.textContent(row(R2) + ' td[data-label="Resyncs"]');
  const before = await resyncs();

  const r2 = procs.get('r2');
  const t0 = Date.now();
  await stopNode('r2', 'SIGKILL');
  await page.waitForSelector(row(R2) + '[data-state="down"]', { timeout: 10000 });
  const down = Date.now() - t0;
  check('a killed replica (pid ' + r2.pid + ') is marked down within ' +
    DOWN_MS + ' ms', down <= DOWN_MS, down + ' ms');
  check('the other replica stays streaming',
    await page.isVisible(row(R1) + '[data-state="streaming"]'));
  await call(P, 'PUT', '/kv/while/r2/was/down', 'missed it');

  startNode('r2', replicaEnv(R2));
  await until('the restarted replica', async () => {
    try {
      return (await call(R2, 'GET', '/health')).status === 200;
    } catch (e) {
      return false;
    }
  }, 10000);
  const t1 = Date.now();
  await page.waitForSelector(row(R2) + '[data-state="streaming"]', { timeout: 15000 });
  const up = Date.now() - t1;
  check('the restarted replica shows streaming again within ' + DOWN_MS +
    ' ms of answering', up <= DOWN_MS, up + ' ms');
  const after = await resyncs();
  check('its resync count went up', after !== before, before + ' → ' + after);
  const events = await page.textContent('#events');
  check('the event log has the way down and back',
    events.includes(u(R2) + ': streaming → down') &&
    events.includes(u(R2) + ': down → '), events.replace(/\s+/g, ' '));

  // A stalled replica (SIGSTOP): its lag grows on screen, bar and all,
  // and goes back to nothing once it runs again.
  const lagOf = (p) => page.textContent(row(p) + ' td[data-label="Lag"]');
  procs.get('r1').kill('SIGSTOP');
  try {
    for (let i = 0; i < 20; i++)
      await call(P, 'PUT', '/kv/while/r1/stalls/' + i, 'x');
    await page.waitForFunction((sel) => {
      const t = document.querySelector(sel);
      return t && /^20 writes · [1-9]/.test(t.textContent);
    }, row(R1) + ' td[data-label="Lag"]', { timeout: 3000 });
    const lag = await lagOf(R1);
    const bar = await page.$eval(row(R1) + ' .bar > span',
      (e) => e.getBoundingClientRect().width / e.parentNode.getBoundingClientRect().width);
    check('a stalled replica shows its lag in writes and ms, drawn as a bar',
      bar > 0.2 && /^0 writes/.test(await lagOf(R2)), lag + ', bar ' +
      (bar * 100).toFixed(0) + '%');
    await page.click('#events-box summary');
    await page.evaluate(() => window.scrollTo(0, 0));
    const box = await page.locator('main > section').first().boundingBox();
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(shots, 'cluster.png'),
      clip: { x: 0, y: 0, width: 1180, height: box.y + box.height + 16 } });
  } finally {
    procs.get('r1').kill('SIGCONT');
  }
  const caught = await page.waitForFunction((sel) => /^0 writes/.test(
    document.querySelector(sel).textContent), row(R1) + ' td[data-label="Lag"]')
    .then(() => true, () => false);
  check('once it runs again its lag is back to 0 writes', caught,
    await lagOf(R1));
}

// Keys: the form, paging, text and hex values, odd keys, delete.
async function keyBrowser(page, { P, u }) {
  await page.fill('#w-key', 'hello/console');
  await page.fill('#w-val', 'written from the browser ✓');
  await page.click('#write button:text("Put")');
  await page.waitForSelector('#w-msg:has-text("created")');
  const back = curl(u(P) + '/kv/hello%2Fconsole').toString();
  check('a key put through the form reads back with curl',
    back === 'written from the browser ✓', JSON.stringify(back));
  // The detail is fetched after the answer: wait for it, up to 5 s.
  const detailShown = await detailOf(page, 'hello/console', 5000)
    .then(() => true, () => false);
  check('the form shows the put key', detailShown,
    await page.textContent('#detail h3'));

  // An expiring key: the form's ttl, the time left in the detail, Edit
  // keeping it, a bad one refused, an empty one making the key permanent.
  const expiring = u(P) + '/kv/hello%2Fexpiring';
  const leftOf = () => (curl('-I', expiring).toString()
    .match(/X-Kv-Expires-In: ([\d.]+)/i) || [])[1];
  await page.fill('#w-key', 'hello/expiring');
  await page.fill('#w-val', 'gone within the hour');
  await page.fill('#w-ttl', '1h');
  await page.click('#write button:text("Put")');
  await page.waitForSelector('#w-msg:has-text("created")');
  const left = leftOf();
  check('the form puts a key with its ttl', left > 3500 && left <= 3600, left);
  await detailOf(page, 'hello/expiring', 5000);
  const ttlMeta = await page.textContent('#detail .meta');
  check('the detail shows the time left', /Expires in(59 min|1\.0 h)/.test(ttlMeta),
    ttlMeta);
  await page.click('#detail #edit');
  const kept = await page.inputValue('#w-ttl');
  check('Edit keeps the time left in the form', /^(3600|35\d\d)s$/.test(kept), kept);
  await page.fill('#w-ttl', 'soon');
  await page.click('#write button:text("Put")');
  await page.waitForSelector('#w-msg:has-text("400")');
  const refused = await page.textContent('#w-msg');
  check('a bad ttl is refused with the reason, the key kept as it was',
    refused.includes('ttl') && leftOf() > 3500, refused);
  await page.fill('#w-ttl', '');
  await page.click('#write button:text("Put")');
  await page.waitForSelector('#w-msg:has-text("version")');
  check('an empty ttl makes the key permanent', leftOf() === undefined,
    curl('-I', expiring).toString());
  curl('-X', 'DELETE', expiring);

  let info = await page.textContent('#list-info');
  await page.focus('#prefix');
  await page.keyboard.type('item/');
  await page.keyboard.press('Enter');
  // A page ends where the listing's scan stops, so the last one may be
  // empty; each page is awaited as a new "Page N" with a new summary.
  const seen = [];
  let pages = 0;
  for (;;) {
    await page.waitForFunction(([n, was]) =>
      document.getElementById('page-no').textContent === 'Page ' + n &&
      document.getElementById('list-info').textContent !== was,
      [pages + 1, info]);
    info = await page.textContent('#list-info');
    pages++;
    seen.push(...await page.$$eval('#list button', (b) => b.map((e) => e.dataset.key)));
    if (await page.isDisabled('#next'))
      break;
    await page.click('#next');
  }
  const distinct = new Set(seen);
  const all = [...Array(KEYS).keys()].every((i) =>
    distinct.has('item/' + String(i).padStart(3, '0')));
  check('paging through ' + KEYS + ' keys shows each once', seen.length === KEYS &&
    distinct.size === KEYS && all, pages + ' pages, ' + seen.length + ' keys, ' +
    distinct.size + ' distinct');
  const last = await page.$$eval('#list button', (b) => b.map((e) => e.dataset.key));
  await page.click('#prev');
  await page.waitForFunction((n) =>
    document.getElementById('page-no').textContent === 'Page ' + n,
    pages - 1);
  const prev = await page.$$eval('#list button', (b) => b.map((e) => e.dataset.key));
  check('Previous goes back a page', prev.length > 0 &&
    prev.every((k) => seen.includes(k) && !last.includes(k)) &&
    (await page.isEnabled('#next')), prev.length + ' keys');

  // Keyboard only: Tab from the search box, past Search and Follow, to
  // the first key, then Enter.
  await search(page, 'config/');
  await page.focus('#prefix');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail h3:text("config/app.json")');
  const etag = curl('-sI', u(P) + '/kv/config%2Fapp.json').toString()
    .match(/ETag: "(\d+)"/i)[1];
  const meta = await page.textContent('#detail .meta');
  check('a text value shows with its size and version (keyboard only)',
    meta.includes(Buffer.byteLength(CONFIG) + ' bytes') && meta.includes('Version' + etag) &&
    (await page.textContent('#detail pre')).includes('"theme": "dark"'), meta);

  await search(page, 'bin/');
  await openFirst(page);
  const hex = await page.textContent('#detail pre.hex');
  check('a binary value shows as a hex dump', hex.startsWith(
    '00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  ................') &&
    (await page.textContent('#detail .meta')).includes('300 bytes'),
    hex.split('\n')[0]);

  await search(page, 'raw/');
  const shown = await openFirst(page);
  check('a key that is not UTF-8 lists as \\xNN and opens',
    shown === 'raw/\\xff\\xfe' &&
    (await page.textContent('#detail pre')) === 'a key that is not UTF-8', shown);

  // "." and ".." are keys like any other: the browser must not resolve
  // them as path segments (kv/.. is the node's root).
  for (const k of ['..', '.']) {
    await call(P, 'PUT', '/kv?key=' + k, 'dot key ' + k);
    await search(page, k);
    const dot = await openFirst(page);
    const val = await page.textContent('#detail pre');
    page.once('dialog', (d) => d.accept());
    await page.click('#detail #delete');
    await page.waitForSelector('#detail:has-text("Deleted")');
    const left = curl('-o', '/dev/null', '-w', '%{http_code}',
      u(P) + '/kv?key=' + k).toString();
    check('the key "' + k + '" opens and deletes in the console',
      dot === k && val === 'dot key ' + k && left === '404',
      dot + ' ' + val + ' ' + left);
  }

  await search(page, 'hello/');
  await openFirst(page);
  page.once('dialog', (d) => d.accept());
  await page.click('#detail #delete');
  await page.waitForSelector('#detail:has-text("Deleted")');
  const gone = curl('-o', '/dev/null', '-w', '%{http_code}',
    u(P) + '/kv/hello%2Fconsole').toString();
  check('Delete removes the key', gone === '404', gone);

  // Follow: a write under the prefix reaches the event log and the list
  // live, through an event stream (kv/?watch=events).
  await search(page, 'live/');
  await page.click('#follow');
  await until('the event stream', () => curl(u(P) + '/metrics').toString()
    .includes('kvstore_event_streams 1'), 5000);
  curl('-X', 'PUT', '-d', 'x', u(P) + '/kv/live%2Fone');
  const followed = await page.waitForFunction(() =>
    document.getElementById('events').textContent.includes('put live/one') &&
    document.getElementById('list').textContent.includes('live/one'),
  null, { timeout: 5000 }).then(() => true, () => false);
  check('Follow shows a write under the prefix as it happens', followed);
  // A burst of writes: each reaches the event log, and the page is
  // listed again a few times, not once per write.
  const lists = [];
  const listed = (r) => /\/kv\/\?/.test(r.url()) &&
    !r.url().includes('watch=events') && lists.push(r.url());
  page.on('request', listed);
  curl('-X', 'PUT', '-d', 'x', ...[...Array(20).keys()].map((i) =>
    u(P) + '/kv/live%2Fburst' + i));
  const burst = await page.waitForFunction(() =>
    document.getElementById('events').textContent.includes('live/burst19') &&
    document.getElementById('list').textContent.includes('live/burst19'),
  null, { timeout: 5000 }).then(() => true, () => false);
  page.off('request', listed);
  check('a burst of 20 writes: all in the event log, fewer listings',
    burst && lists.length < 20, lists.length + ' listings');
  await page.click('#follow');

  // The picture: the first page of every key, beside a JSON value.
  await search(page, 'config/');
  await openFirst(page);
  await search(page, '');
  await page.fill('#w-key', 'user/carol');
  await page.fill('#w-val', 'Carol Shaw');
  await page.mouse.move(0, 0);
  await page.evaluate(() => {
    document.activeElement.blur();
    window.scrollTo(0, 0);	// so that the box is in page coordinates
  });
  const box = await page.locator('#keys').boundingBox();
  await page.screenshot({ path: path.join(shots, 'keys.png'), fullPage: true,
    clip: { x: 0, y: box.y - 16, width: 1180, height: box.height + 32 } });
}

// Opens the first key listed and waits for its own detail: the one shown
// before stays on screen until the value arrives, and has a <pre> and a
// Delete button too. Returns the key as listed.
async function openFirst(page) {
  const shown = await page.textContent('#list button');
  await page.click('#list button');
  await detailOf(page, shown);
  return shown;
}

// Resolves once the detail shows key (as listed) with its value loaded.
function detailOf(page, key, timeout) {
  return page.waitForFunction((k) => {
    const d = document.getElementById('detail');
    const t = d.querySelector('h3');
    return t && t.textContent === k && d.querySelector('.meta');
  }, key, timeout ? { timeout } : {});
}

async function search(page, prefix) {
  await page.fill('#prefix', prefix);
  await page.press('#prefix', 'Enter');
  await page.waitForFunction((p) => {
    const i = document.getElementById('list-info').textContent;
    return p ? i.includes('“' + p + '”') : i.startsWith('Keys 1');
  }, prefix);
}

// AUTH_TOKEN: writes answer 401 until the page is given the token, which
// it keeps for the tab; with READ_AUTH the key list asks for it too.
async function tokenFlow(page, { A, u }) {
  const token = 's3cret-token';
  const env = { ROLE: 'primary', PORT: String(A),
    DATA_DIR: path.join(work, 'auth'), AUTH_TOKEN: token };
  startNode('auth', env);
  await until('the AUTH_TOKEN node', () => ready(A), 10000);
  const probe = await call(A, 'PUT', '/kv/probe', 'x');
  check('AUTH_TOKEN: a write without the token answers 401 with ' +
    'WWW-Authenticate', probe.status === 401 &&
    probe.headers.has('www-authenticate'), probe.status + ' ' +
    probe.headers.get('www-authenticate'));
  await page.goto(u(A) + '/');
  await page.waitForSelector('#write:not([hidden])');
  await page.fill('#w-key', 'auth/key');
  await page.fill('#w-val', 'needs a token');
  await page.click('#write button:text("Put")');
  await page.waitForSelector('#auth:not([hidden])');
  const asked = await page.textContent('#auth-why');
  await page.fill('#token', 'wrong');
  await page.click('#auth button:text("Use token")');
  await page.waitForSelector('#auth-why:has-text("refused")');
  await page.fill('#token', token);
  await page.click('#auth button:text("Use token")');
  await page.waitForSelector('#w-msg:has-text("created")');
  const back = curl(u(A) + '/kv/auth%2Fkey').toString();
  const kept = await page.evaluate(() => sessionStorage.getItem('kvstore.token'));
  check('on 401 the form asks for the token, says when it is refused, then ' +
    'writes', back === 'needs a token' && kept === token &&
    /token/i.test(asked), asked.trim());
  await page.reload();
  await page.waitForSelector('#write:not([hidden])');
  await page.fill('#w-key', 'auth/again');
  await page.fill('#w-val', 'no prompt this time');
  await page.click('#write button:text("Put")');
  await page.waitForSelector('#w-msg:has-text("created")');
  check('the token is kept for the tab (sessionStorage): no second prompt',
    await page.isHidden('#auth'));
  await page.goto('about:blank');	// its page would poll a stopped node
  await stopNode('auth', 'SIGTERM');

  // A new tab has no token; with READ_AUTH the listing asks for it.
  startNode('auth', { ...env, READ_AUTH: 'true' });
  await until('the READ_AUTH node', () => ready(A), 10000);
  const tab = await page.context().newPage();
  try {
    await tab.goto(u(A) + '/');
    await tab.waitForSelector('#auth:not([hidden])');
    await tab.fill('#token', token);
    await tab.click('#auth button:text("Use token")');
    await tab.waitForSelector('#list button:text("auth/key")');
    check('READ_AUTH: the key list asks for the token, then lists', true);
  } catch (e) {
    check('READ_AUTH: the key list asks for the token, then lists', false,
      e.message.split('\n')[0]);
  }
  await tab.close();
  await stopNode('auth', 'SIGTERM');
}

// A replica's page: no write controls, and it says where the primary is.
async function replicaPage(page, { P, R1, u }) {
  await page.goto(u(R1) + '/');
  await page.waitForSelector('#node .role:text("replica")');
  await page.waitForSelector('#primary');
  const ro = await page.textContent('#readonly');
  check('a replica\'s page names the primary', await page.isVisible('#readonly') &&
    ro.includes(u(P)), ro);
  await page.waitForSelector('#list button');
  await page.click('#list button');
  await page.waitForSelector('#detail pre');
  const controls = await page.$$eval('button, input, textarea', (els) =>
    els.filter((e) => e.offsetParent !== null)
      .map((e) => e.id || e.textContent.trim()));
  check('a replica\'s page has no write controls', await page.isHidden('#write') &&
    !controls.some((c) => /^(Put|Delete|Edit|w-key|w-val|delete|edit)$/.test(c)),
    controls.filter((c) => !/^item\//.test(c)).join(', ') + ' and keys');
  const dl = await page.textContent('#primary');
  check('a replica shows its primary, link, applied seq and lag',
    dl.includes(u(P)) && /Linkup/.test(dl) && /Applied seq[\d,]+/.test(dl) &&
    /Lag\d+ writes?/.test(dl), dl);
}

// Phone width and dark mode.
async function layout(page, { P, u }) {
  await page.goto(u(P) + '/');
  await page.waitForSelector('#repl tr');
  await page.setViewportSize({ width: 375, height: 800 });
  await page.waitForTimeout(200);
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  check('readable at phone width: nothing wider than 375 px', w <= 375, w + ' px');
  const label = await page.evaluate(() => getComputedStyle(
    document.querySelector('#repl td'), '::before').content);
  check('at phone width replica rows become labelled cards',
    label === '"Replica"', label);
  await page.screenshot({ path: path.join(shots, 'phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1180, height: 860 });
  const bg = async () => page.evaluate(() => getComputedStyle(document.body)
    .backgroundColor.match(/\d+/g).slice(0, 3).map(Number)
    .reduce((a, b) => a + b) / 3);
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await bg();
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await bg();
  check('light and dark follow the system setting', light > 200 && dark < 60,
    'background ' + light.toFixed(0) + ' / ' + dark.toFixed(0));
  await page.screenshot({ path: path.join(shots, 'dark.png') });
  await page.emulateMedia({ colorScheme: 'light' });
}

// Under a path of a proxy's own: every URL in the page is relative.
async function behindProxy(page, { P, X }) {
  const s = await proxy(X, P);
  try {
    const base = 'http://127.0.0.1:' + X + '/kvstore/p/';
    const seen = [];
    const log = (r) => seen.push(r.url());
    await page.goto('about:blank');	// the last page polls no more
    page.on('request', log);
    await page.goto(base);
    await page.waitForSelector('#node .role:text("primary")');
    await page.waitForSelector('#list button');
    await page.waitForTimeout(1100);
    page.off('request', log);
    check('behind a path-rewriting proxy every request stays under its path',
      seen.length >= 5 && seen.every((r) => r.startsWith(base)),
      seen.length + ' requests' + seen.filter((r) => !r.startsWith(base))
        .map((r) => '; outside: ' + r).join(''));
  } finally {
    s.close();
  }
}

try {
  await main();
} catch (e) {
  check('the test ran', false, e.stack);
} finally {
  await stopAll();
}
const summary = failures.map((f) => 'ui: failed: ' + f + '\n').join('') +
  passed + ' passed, ' + failed + ' failed\n';
process.stdout.write(summary);
fs.writeFileSync(path.join(work, 'summary'), summary);	// run.sh's last word
process.exit(failed === 0 && passed > 0 ? 0 : 1);

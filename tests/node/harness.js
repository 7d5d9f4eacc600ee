'use strict';
// Shared harness for the Node integration tests in this folder: starts and stops the real
// gatehouse binary, builds pop-core RPC clients (@alicloud/pop-core 1.8.0, RPC signature v1),
// and holds the small helpers the tests have in common.
// Not a test file: node --test picks only *.test.js and the like, never harness.js.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { RPCClient } = require('@alicloud/pop-core');

const REPO = path.resolve(__dirname, '..', '..');
const BIN = process.env.GATEHOUSE_BIN || path.join(REPO, 'target', 'release', 'gatehouse');
const AK = 'LTAI5tGatehouseNodeTest';
const SECRET = 'gatehouse-node-secret~0123456789abcdef';
const REGION = 'cn-hangzhou';
const LISTEN_RE = /^gatehouse listening on http:\/\/127\.0\.0\.1:(\d+)\s*$/;
const TLS_LISTEN_RE = /^gatehouse listening on https:\/\/127\.0\.0\.1:(\d+)\s*$/;
const TLS_CERT_RE = /^gatehouse TLS certificate (\S+) \(SHA-256 [0-9A-F:]+\)\s*$/;

function rand(n = 21) {
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += abc[Math.floor(Math.random() * abc.length)];
  return s;
}

function publicIp() {
  const first = [39, 45, 47, 101, 106, 114, 120, 139][Math.floor(Math.random() * 8)];
  const r = () => Math.floor(Math.random() * 254) + 1;
  return `${first}.${r()}.${r()}.${r()}`;
}

// json-bigint builds prototype-less objects: compare plain copies.
const plain = (v) => JSON.parse(JSON.stringify(v));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Bounded poll: resolves with fn()'s first truthy value or rejects after timeoutMs.
async function waitFor(fn, what, timeoutMs = 10000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(stepMs);
  }
}

// The call must fail with this API error code and a well-formed error body; check(body) may look further.
async function expectCode(promise, code, check) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    assert.equal(err.data.Code, code);
    assert.ok(err.data.RequestId, 'error body carries RequestId');
    assert.ok(err.data.Message, 'error body carries Message');
    if (check) check(err.data);
    return true;
  });
}

// ------------------------------------------------------------------ server

// Starts `gatehouse serve` on a free port with a fresh temporary data dir and the AK/SECRET root
// key, plus extraArgs (e.g. ['--transition-delay-ms', '200']). Resolves once the listening line
// is read (at most 10 s) with { port, endpoint, dataDir, stop() } — and, when extraArgs ask for
// --tls-listen, once the HTTPS lines are read too, with tls: { port, endpoint, cert }. stop()
// sends SIGTERM (SIGKILL after 5 s) and removes the data dir. If the start fails, it cleans up
// before rejecting.
async function startServer(extraArgs = [], { tmpPrefix = 'gatehouse-node-' } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run cargo build --release --bins`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  let child = null;
  let stderr = '';

  async function stop() {
    if (child && child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* gone */ } }, 5000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }

  try {
    child = spawn(
      BIN,
      ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dataDir, 'data'), ...extraArgs],
      {
        env: { ...process.env, GATEHOUSE_ROOT_ACCESS_KEY_ID: AK, GATEHOUSE_ROOT_ACCESS_KEY_SECRET: SECRET },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stderr.on('data', (d) => { stderr = (stderr + d.toString()).slice(-8000); });
    const wantTls = extraArgs.includes('--tls-listen');
    const tls = {};
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line within 10 s; stderr: ${stderr}`)), 10000);
      // readline keeps draining stdout for the life of the process
      const rl = readline.createInterface({ input: child.stdout });
      let plainPort = null;
      rl.on('line', (line) => {
        let m = LISTEN_RE.exec(line);
        if (m) plainPort = Number(m[1]);
        m = TLS_LISTEN_RE.exec(line);
        if (m) { tls.port = Number(m[1]); tls.endpoint = `https://127.0.0.1:${m[1]}`; }
        m = TLS_CERT_RE.exec(line);
        if (m) tls.cert = m[1];
        if (plainPort !== null && (!wantTls || tls.cert)) { clearTimeout(timer); resolve(plainPort); }
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`gatehouse exited early (${code ?? sig}); stderr: ${stderr}`));
      });
      child.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
    return { port, endpoint: `http://127.0.0.1:${port}`, dataDir, stop, tls: wantTls ? tls : undefined };
  } catch (err) {
    await stop();
    throw err;
  }
}

// A pop-core RPC client for a started server; signs with the root key unless told otherwise.
function rpcClient(endpoint, secret = SECRET, accessKeyId = AK) {
  return new RPCClient({
    accessKeyId,
    accessKeySecret: secret,
    endpoint,
    apiVersion: '2016-04-28',
  });
}

module.exports = {
  BIN, AK, SECRET, REGION, LISTEN_RE,
  rand, publicIp, plain, sleep, waitFor, expectCode,
  startServer, rpcClient,
};

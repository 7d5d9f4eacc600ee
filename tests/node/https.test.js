'use strict';
// pop-core over HTTPS: `gatehouse serve --tls-listen` with its generated self-signed
// certificate, trusted the way Node users trust one (NODE_EXTRA_CA_CERTS, read at process start,
// so the client runs in a child process). Without the certificate trusted, the call is refused.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const { AK, SECRET, REGION, rpcClient, startServer } = require('./harness');

let srv;
before(async () => { srv = await startServer(['--transition-delay-ms', '0', '--tls-listen', '127.0.0.1:0']); });
after(async () => { if (srv) await srv.stop(); });

// A pop-core client in a child node: calls `action` over HTTPS and prints the answer (or the error).
const CLIENT = `
const { RPCClient } = require('@alicloud/pop-core');
const [endpoint, ak, secret, action, params] = process.argv.slice(1);
const client = new RPCClient({ accessKeyId: ak, accessKeySecret: secret, endpoint, apiVersion: '2016-04-28' });
client.request(action, JSON.parse(params), { method: 'POST' })
  .then((r) => console.log(JSON.stringify({ ok: r })))
  .catch((e) => console.log(JSON.stringify({ error: e.code || e.name, message: e.message })));
`;

function popcore(action, params, env) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', CLIENT, srv.tls.endpoint, AK, SECRET, action, JSON.stringify(params)],
      { cwd: __dirname, env, timeout: 20000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}; stderr: ${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      });
  });
}

test('pop-core speaks HTTPS once NODE_EXTRA_CA_CERTS trusts the generated certificate', async () => {
  assert.ok(srv.tls.cert.endsWith('/tls/cert.pem'), srv.tls.cert);
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: srv.tls.cert };
  const regions = await popcore('DescribeRegions', { RegionId: 'cn-hangzhou' }, env);
  assert.ok(regions.ok, JSON.stringify(regions));
  assert.ok(regions.ok.Regions.Region.some((r) => r.RegionId === 'cn-hangzhou'));
  const created = await popcore('CreateVpnGateway', { RegionId: 'cn-hangzhou', VpcId: 'vpc-tls', Bandwidth: 10 }, env);
  assert.match(created.ok.VpnGatewayId, /^vpn-[a-z0-9]{21}$/);
  // The same gateway over plain HTTP: one server behind both listeners.
  const plain = await rpcClient(srv.endpoint).request('DescribeVpnGateway',
    { RegionId: REGION, VpnGatewayId: created.ok.VpnGatewayId }, { method: 'POST' });
  assert.equal(plain.VpnGatewayId, created.ok.VpnGatewayId);
});

test('an untrusted certificate is refused by pop-core', async () => {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const out = await popcore('DescribeRegions', { RegionId: 'cn-hangzhou' }, env);
  assert.ok(out.error, JSON.stringify(out));
  assert.match(`${out.error} ${out.message}`, /SELF_SIGNED|self[- ]signed|certificate/i);
});

'use strict';
// Integration tests: the official Node SDK (@alicloud/pop-core 1.8.0 RPCClient,
// RPC signature v1) against the real gatehouse binary, with GET and POST.
// Run: node --test tests/node/   (./scripts/test.sh builds the binary first)

const { describe, test, before, after } = require('node:test');
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

// ------------------------------------------------------------------ server

const server = { child: null, port: null, dataDir: null, stderr: '' };

async function startServer() {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run cargo build --release --bins`);
  server.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-node-'));
  const child = spawn(
    BIN,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(server.dataDir, 'data'),
      '--transition-delay-ms', '200'],
    {
      env: { ...process.env, GATEHOUSE_ROOT_ACCESS_KEY_ID: AK, GATEHOUSE_ROOT_ACCESS_KEY_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  server.child = child;
  child.stderr.on('data', (d) => { server.stderr = (server.stderr + d.toString()).slice(-8000); });
  server.port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 10 s; stderr: ${server.stderr}`)), 10000);
    // readline keeps draining stdout for the life of the process
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      const m = LISTEN_RE.exec(line);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`gatehouse exited early (${code ?? sig}); stderr: ${server.stderr}`));
    });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

async function stopServer() {
  const child = server.child;
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(child.pid, 'SIGTERM');
    const t = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
  }
  if (server.dataDir) fs.rmSync(server.dataDir, { recursive: true, force: true });
}

function client(secret = SECRET, accessKeyId = AK) {
  return new RPCClient({
    accessKeyId,
    accessKeySecret: secret,
    endpoint: `http://127.0.0.1:${server.port}`,
    apiVersion: '2016-04-28',
  });
}

before(startServer);
after(stopServer);

// ------------------------------------------------------------------ tests

for (const method of ['GET', 'POST']) {
  describe(`pop-core RPCClient ${method}`, () => {
    const opts = { method, timeout: 10000 };
    const call = (action, params) => client().request(action, { RegionId: REGION, ...params }, opts);

    async function expectCode(promise, code) {
      await assert.rejects(promise, (err) => {
        assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
        assert.equal(err.data.Code, code);
        assert.ok(err.data.RequestId, 'error body carries RequestId');
        assert.ok(err.data.Message, 'error body carries Message');
        return true;
      });
    }

    async function describeStatus(id) {
      try {
        return (await call('DescribeVpnGateway', { VpnGatewayId: id })).Status;
      } catch (err) {
        if (err.code === 'InvalidVpnGatewayInstanceId.NotFound') return null;
        throw err;
      }
    }

    test('VPN gateway: create, describe, list, modify, delete', async () => {
      const vpc = `vpc-${rand()}`;
      const created = await call('CreateVpnGateway', {
        VpcId: vpc, Bandwidth: 20, Name: `node-${method.toLowerCase()}`, EnableSsl: true, SslConnections: 5,
        InstanceChargeType: 'PREPAY', Period: 1, AutoPay: true,
      });
      assert.match(created.VpnGatewayId, /^vpn-[a-z0-9]{21}$/);
      assert.equal(created.Name, `node-${method.toLowerCase()}`);
      assert.ok(created.RequestId);
      assert.equal(created.Code, undefined);
      const id = created.VpnGatewayId;

      const d = await waitFor(async () => {
        const g = await call('DescribeVpnGateway', { VpnGatewayId: id });
        return g.Status === 'active' ? g : null;
      }, `${id} active`);
      assert.equal(d.VpcId, vpc);
      assert.equal(d.Spec, '20M');
      assert.equal(d.SslVpn, 'enable');
      assert.equal(d.IpsecVpn, 'enable');
      assert.equal(d.SslMaxConnections, 5);
      assert.equal(d.ChargeType, 'Prepay');
      assert.equal(d.BusinessStatus, 'Normal');
      assert.equal(d.AutoPropagate, true);
      assert.equal(typeof d.CreateTime, 'number');
      assert.ok(Array.isArray(d.Tags.Tag) && d.Tags.Tag.length === 0, JSON.stringify(d.Tags));

      const listed = await call('DescribeVpnGateways', { VpcId: vpc });
      assert.equal(listed.TotalCount, 1);
      assert.deepEqual(listed.VpnGateways.VpnGateway.map((g) => g.VpnGatewayId), [id]);

      const modified = await call('ModifyVpnGatewayAttribute', {
        VpnGatewayId: id, Name: 'renamed-by-node', Description: 'node-desc', AutoPropagate: false,
      });
      assert.equal(modified.Name, 'renamed-by-node');
      assert.equal(modified.Description, 'node-desc');
      assert.equal(modified.AutoPropagate, false);
      const after = await call('DescribeVpnGateway', { VpnGatewayId: id });
      assert.equal(after.Name, 'renamed-by-node');
      assert.equal(after.Description, 'node-desc');
      assert.equal(after.AutoPropagate, false);

      const del = await call('DeleteVpnGateway', { VpnGatewayId: id });
      assert.ok(del.RequestId);
      await waitFor(async () => (await describeStatus(id)) === null, `${id} gone`);
      await expectCode(call('DescribeVpnGateway', { VpnGatewayId: id }), 'InvalidVpnGatewayInstanceId.NotFound');
    });

    test('customer gateway: create, describe, list, modify, delete', async () => {
      const ip = publicIp();
      const c = await call('CreateCustomerGateway', {
        IpAddress: ip, Name: 'node-cgw', Description: 'branch-office', Asn: '123.456', AuthKey: 'node-key-1',
      });
      assert.match(c.CustomerGatewayId, /^cgw-[a-z0-9]{21}$/);
      assert.equal(c.IpAddress, ip);
      assert.equal(c.Name, 'node-cgw');
      const id = c.CustomerGatewayId;

      const d = await call('DescribeCustomerGateway', { CustomerGatewayId: id });
      assert.equal(d.IpAddress, ip);
      assert.equal(d.Asn, 123 * 65536 + 456);
      assert.equal(d.AuthKey, 'node-key-1');
      assert.equal(d.Description, 'branch-office');

      const listed = await call('DescribeCustomerGateways', { CustomerGatewayId: id });
      assert.equal(listed.TotalCount, 1);
      assert.deepEqual(listed.CustomerGateways.CustomerGateway.map((x) => x.CustomerGatewayId), [id]);

      const m = await call('ModifyCustomerGatewayAttribute', {
        CustomerGatewayId: id, Name: 'node-cgw-2', Description: 'moved-office', AuthKey: 'node-key-2',
      });
      assert.equal(m.Name, 'node-cgw-2');
      assert.equal(m.Description, 'moved-office');
      const d2 = await call('DescribeCustomerGateway', { CustomerGatewayId: id });
      assert.equal(d2.Name, 'node-cgw-2');
      assert.equal(d2.AuthKey, 'node-key-2');

      await expectCode(call('CreateCustomerGateway', { IpAddress: ip }), 'InvalidIpAddress.AlreadyExist');
      await call('DeleteCustomerGateway', { CustomerGatewayId: id });
      await expectCode(call('DescribeCustomerGateway', { CustomerGatewayId: id }),
        'InvalidCustomerGatewayInstanceId.NotFound');
    });

    test('tags: tag, list, untag', async () => {
      const { VpnGatewayId: id } = await call('CreateVpnGateway', { VpcId: `vpc-${rand()}`, Bandwidth: 10 });
      await call('TagResources', {
        ResourceType: 'VpnGateWay', ResourceId: [id],
        Tag: [{ Key: 'env', Value: 'prod' }, { Key: 'owner', Value: 'node' }],
      });
      const listed = await call('ListTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id] });
      const pairs = listed.TagResources.TagResource.map((t) => `${t.ResourceId}:${t.TagKey}=${t.TagValue}`).sort();
      assert.deepEqual(pairs, [`${id}:env=prod`, `${id}:owner=node`]);
      assert.equal(listed.NextToken, '');

      const d = await call('DescribeVpnGateway', { VpnGatewayId: id });
      const tags = Object.fromEntries(d.Tags.Tag.map((t) => [t.Key, t.Value]));
      assert.deepEqual(tags, { env: 'prod', owner: 'node' });

      const filtered = await call('DescribeVpnGateways', { Tag: [{ Key: 'owner', Value: 'node' }], VpnGatewayId: id });
      assert.equal(filtered.TotalCount, 1);

      await call('UnTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id], TagKey: ['env'] });
      const after1 = await call('ListTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id] });
      assert.deepEqual(after1.TagResources.TagResource.map((t) => t.TagKey), ['owner']);
      await call('UnTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id], All: true });
      const after2 = await call('ListTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id] });
      assert.deepEqual(after2.TagResources.TagResource, []);

      await expectCode(call('TagResources', {
        ResourceType: 'VpnGateWay', ResourceId: [`vpn-${'x'.repeat(21)}`], Tag: [{ Key: 'a', Value: 'b' }],
      }), 'InvalidResourceId.NotFound');
    });

    test('errors: NotFound, bad parameters, bad signature, unknown key', async () => {
      const unknown = `vpn-${'0'.repeat(21)}`;
      await expectCode(call('DescribeVpnGateway', { VpnGatewayId: unknown }), 'InvalidVpnGatewayInstanceId.NotFound');
      await expectCode(call('ModifyVpnGatewayAttribute', { VpnGatewayId: unknown, Name: 'abc' }),
        'InvalidVpnGatewayInstanceId.NotFound');
      await expectCode(call('DeleteVpnGateway', { VpnGatewayId: unknown }), 'InvalidVpnGatewayInstanceId.NotFound');
      await expectCode(call('DescribeCustomerGateway', { CustomerGatewayId: `cgw-${'0'.repeat(21)}` }),
        'InvalidCustomerGatewayInstanceId.NotFound');
      await expectCode(call('CreateVpnGateway', { VpcId: `vpc-${rand()}`, Bandwidth: 7 }), 'InvalidParameter');
      await expectCode(call('CreateVpnGateway', { Bandwidth: 10 }), 'MissingVpcId');
      await expectCode(
        client('wrong-secret').request('DescribeRegions', { RegionId: REGION }, opts), 'SignatureDoesNotMatch');
      await expectCode(
        client(SECRET, 'LTAI5tNodeUnknownKey').request('DescribeRegions', { RegionId: REGION }, opts),
        'InvalidAccessKeyId.NotFound');
    });

    test('DescribeRegions', async () => {
      const r = await call('DescribeRegions', {});
      const ids = r.Regions.Region.map((x) => x.RegionId);
      for (const want of ['cn-hangzhou', 'cn-shanghai', 'cn-beijing']) assert.ok(ids.includes(want), want);
    });
  });
}

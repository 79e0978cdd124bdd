/**
 * TLS served by the node itself (TLS_CERT_FILE/TLS_KEY_FILE): wss:// and https:// work
 * with a certificate made by openssl here, TLS 1.0/1.1 are refused (by the node: the same
 * client completes them with a server that allows them), 1.2 and 1.3 accepted,
 * an untrusted certificate is refused by the client, and half a configuration refuses to start.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { DeviceClient } from '../src/client/index.js';
import { aptInstall } from './support/apt.js';
import { ServerProcess, TEST_SECRET, token } from './support/server-process.js';

function httpsGet(port: number, path: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/**
 * Offers exactly `version` to `port` (SECLEVEL=0 lifts the client's own floor, so 1.0 and
 * 1.1 really are offered) and answers the negotiated protocol or the error code.
 */
function handshake(port: number, version: TlsVersion): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect(
      {
        host: '127.0.0.1',
        port,
        minVersion: version,
        maxVersion: version,
        ciphers: 'DEFAULT@SECLEVEL=0',
        rejectUnauthorized: false,
      },
      () => {
        resolve(socket.getProtocol() ?? 'none');
        socket.destroy();
      },
    );
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('TLS served directly', () => {
  let dir: string;
  let server: ServerProcess;
  let cert: Buffer;
  before(async () => {
    if (spawnSync('openssl', ['version']).status !== 0) aptInstall('openssl');
    dir = mkdtempSync(join(tmpdir(), 'fieldtrack-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'));
    server = await ServerProcess.start({
      env: { TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') },
    });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves https:// with the certificate', async () => {
    const res = await httpsGet(server.port, '/healthz', cert);
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { ok: true });
  });

  it('serves wss:// to the typed client given the CA, and acks a ping', async () => {
    const d = new DeviceClient({
      url: `wss://127.0.0.1:${server.port}`,
      token: await token('tech-tls', 'device'),
      ca: cert,
    });
    await d.connect();
    assert.equal((await d.ping({ ts: Date.now(), lat: 1, lon: 1 })).t, 'ack');
    await d.close();
  });

  it('the client refuses an untrusted certificate by default', async () => {
    const d = new DeviceClient({ url: `wss://127.0.0.1:${server.port}`, token: await token('tech-tls2', 'device') });
    await assert.rejects(d.connect(), /self[- ]signed|certificate/i);
  });

  it('refuses plain ws:// on the TLS port', async () => {
    const d = new DeviceClient({ url: `ws://127.0.0.1:${server.port}`, token: await token('tech-tls3', 'device') });
    await assert.rejects(d.connect());
  });

  it('accepts TLS 1.2 and 1.3 and refuses TLS 1.0 and 1.1', async () => {
    assert.equal(await handshake(server.port, 'TLSv1.2'), 'TLSv1.2');
    assert.equal(await handshake(server.port, 'TLSv1.3'), 'TLSv1.3');
    // Control: the same client does complete 1.0 and 1.1 with a server that allows them, so
    // a refusal below is the node's, not the client's.
    const lax = createTlsServer(
      { key: readFileSync(join(dir, 'key.pem')), cert, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      (s) => s.end(),
    );
    await new Promise<void>((resolve) => lax.listen(0, '127.0.0.1', resolve));
    try {
      const laxPort = (lax.address() as AddressInfo).port;
      assert.equal(await handshake(laxPort, 'TLSv1'), 'TLSv1');
      assert.equal(await handshake(laxPort, 'TLSv1.1'), 'TLSv1.1');
    } finally {
      lax.close();
    }
    // The node answers with the protocol_version alert (70).
    assert.equal(await handshake(server.port, 'TLSv1.1'), 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    assert.equal(await handshake(server.port, 'TLSv1'), 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('refuses to start with only one of the two TLS files, or a missing file', async () => {
    const half = await ServerProcess.runToExit({
      TRACKER_JWT_SECRET: TEST_SECRET,
      TLS_CERT_FILE: join(dir, 'cert.pem'),
    });
    assert.notEqual(half.code, 0);
    assert.match(JSON.stringify(half.logs) + half.stderr, /TLS_CERT_FILE and TLS_KEY_FILE/);
    const missing = await ServerProcess.runToExit({
      TRACKER_JWT_SECRET: TEST_SECRET,
      TLS_CERT_FILE: join(dir, 'nope.pem'),
      TLS_KEY_FILE: join(dir, 'key.pem'),
    });
    assert.notEqual(missing.code, 0);
    assert.match(JSON.stringify(missing.logs) + missing.stderr, /nope\.pem/);
  });
});

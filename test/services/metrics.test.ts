import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { connect, TokenSet } from '../../src/index.js';
import { PutFlag } from '../../src/protocol/index.js';
import { eventually, randomData, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { startServeProcess } from '../helpers/cli.js';

const TOKEN = 'w'.repeat(32);
const WRONG = 'x'.repeat(32);

/** GET path from the metrics port: status and body. */
function scrape(port: number, path = '/metrics', method = 'GET'): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (d: string) => (text += d));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), text }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** `name{labels} value` lines → map from `name{labels}` to value. */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    map.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return map;
}

describe('metrics (--metrics-port): counts after real transfers', () => {
  let server: TestServer;
  let metricsPort: number;
  let local: string;
  /** Every server log record, to add up the bytes its connections report on close. */
  const records: { msg: string; bytesIn?: number; bytesOut?: number }[] = [];

  before(async () => {
    local = await tempDir();
    const logStream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line !== '') records.push(JSON.parse(line) as (typeof records)[number]);
        done();
      },
    });
    server = await startServer({
      metricsPort: 0,
      tokens: TokenSet.parse(`${TOKEN} write\n`),
      quota: 10 * 1024 * 1024,
      maxPerIp: 3,
      logger: pino({ level: 'info' }, logStream),
    });
    metricsPort = server.server.pluginAddress('metrics')!.port;
  });
  after(async () => {
    await server.stop();
    await fs.rm(local, { recursive: true, force: true });
  });

  it('serves Prometheus text at /metrics only', async () => {
    const page = await scrape(metricsPort);
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/plain; version=0\.0\.4/);
    assert.match(page.text, /# TYPE ferry_requests_total counter/);
    assert.match(page.text, /^process_cpu_user_seconds_total /m); // the process defaults
    assert.match(page.text, /^nodejs_eventloop_lag_seconds /m);
    assert.equal((await scrape(metricsPort, '/')).status, 404);
    assert.equal((await scrape(metricsPort, '/metrics', 'POST')).status, 405);
  });

  it('counts requests, results, bytes, durations, partials, quota use, refusals and auth failures exactly', async () => {
    const a = randomData(1000);
    const b = randomData(5000);
    const client = await connect({ ...server.address, token: TOKEN });
    await client.put(a, 'secret-name-a.txt');
    await client.put(b, 'dir/secret-name-b.bin');
    await client.get('secret-name-a.txt', path.join(local, 'a-copy.txt'));
    const listing = await client.list('', { recursive: true });
    assert.equal(listing.length, 2);
    await assert.rejects(client.stat('missing'), { code: 'NOT_FOUND' });
    await client.close();

    await assert.rejects(connect({ ...server.address, token: WRONG }), { code: 'AUTH_FAILED' });

    // An upload of 3000 bytes cut after 1000: kept for resuming.
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'AUTH', id: 1, token: TOKEN });
    await peer.waitFor((m) => m.type === 'OK' && m.id === 1);
    peer.send({ type: 'PUT', id: 2, name: 'secret-name-c.bin', flags: PutFlag.AWAIT_READY, size: 3000 });
    await peer.waitFor((m) => m.type === 'PUT_READY');
    peer.write(randomData(1000));
    await new Promise<void>((resolve) => peer.socket.end(resolve));
    await peer.waitClosed();
    await eventually(() => server.server.storage.partials.count === 1, 3000, 'the partial to be kept');

    // --max-per-ip 3: three idle connections held, the fourth refused.
    const held = await Promise.all([0, 1, 2].map(() => openSocket(server.address.port)));
    await eventually(() => server.server.connectionCount === 3, 3000, 'three connections');
    const refused = await openSocket(server.address.port);
    refused.resume(); // read the BUSY refusal, so its end (and close) comes through
    await new Promise((resolve) => refused.once('close', resolve));
    let open = samples((await scrape(metricsPort)).text);
    assert.equal(open.get('ferry_connections_open'), 3);
    for (const socket of held) socket.destroy();
    await eventually(() => server.server.connectionCount === 0, 3000, 'every connection closed');

    const page = await scrape(metricsPort);
    const m = samples(page.text);
    open = m;
    assert.equal(m.get('ferry_connections_open'), 0);
    assert.equal(m.get('ferry_connections_refused_total'), 1);
    assert.equal(m.get('ferry_auth_failures_total'), 1);
    const requests = [...m].filter(([key]) => key.startsWith('ferry_requests_total{')).sort();
    assert.deepEqual(requests, [
      ['ferry_requests_total{type="AUTH",result="AUTH_FAILED"}', 1],
      ['ferry_requests_total{type="AUTH",result="OK"}', 2],
      ['ferry_requests_total{type="GET",result="OK"}', 1],
      ['ferry_requests_total{type="LIST",result="OK"}', 1],
      ['ferry_requests_total{type="PUT",result="CLOSED"}', 1],
      ['ferry_requests_total{type="PUT",result="OK"}', 2],
      ['ferry_requests_total{type="STAT",result="NOT_FOUND"}', 1],
    ]);
    assert.equal(m.get('ferry_transfer_duration_seconds_count{type="PUT"}'), 2);
    assert.equal(m.get('ferry_transfer_duration_seconds_count{type="GET"}'), 1);
    assert.equal(m.get('ferry_partial_uploads'), 1);
    assert.equal(m.get('ferry_partial_upload_bytes'), 1000);
    assert.equal(m.get('ferry_store_quota_bytes'), 10 * 1024 * 1024);
    assert.equal(m.get('ferry_store_used_bytes'), 1000 + 5000 + 1000);
    assert.ok((m.get('ferry_disk_free_bytes') ?? 0) > 0);

    // Bytes: what each connection reported in the log when it closed, added up.
    const closedLines = records.filter((r) => r.msg === 'disconnected');
    assert.equal(closedLines.length, 6); // client, wrong token, raw peer, three held (the refused one never was a session)
    const bytesIn = closedLines.reduce((sum, r) => sum + r.bytesIn!, 0);
    const bytesOut = closedLines.reduce((sum, r) => sum + r.bytesOut!, 0);
    assert.ok(bytesIn > 1000 + 5000 + 1000 && bytesOut > 1000);
    assert.equal(m.get('ferry_received_bytes_total'), bytesIn);
    assert.equal(m.get('ferry_sent_bytes_total'), bytesOut);

    // Never a file name or a token.
    for (const secret of ['secret-name', TOKEN, WRONG, '127.0.0.1']) assert.ok(!page.text.includes(secret), secret);
  });

  it('counts the bytes of a connection still open', async () => {
    const before = samples((await scrape(metricsPort)).text).get('ferry_received_bytes_total')!;
    const client = await connect({ ...server.address, token: TOKEN });
    try {
      await client.put(randomData(20_000), 'live.bin');
      const during = samples((await scrape(metricsPort)).text).get('ferry_received_bytes_total')!;
      assert.ok(during - before > 20_000, `${during - before}`);
    } finally {
      await client.close();
    }
  });
});

describe('ferry serve --metrics-port (child process)', () => {
  it('serves metrics from the bundled CLI, and stops cleanly on SIGTERM', async () => {
    const root = await tempDir();
    const server = await startServeProcess(['--root', root, '--metrics-port', '0']);
    try {
      await eventually(() => /metrics listening on 127\.0\.0\.1:\d+/.test(server.output()), 5000, 'the metrics port');
      const port = Number(/metrics listening on 127\.0\.0\.1:(\d+)/.exec(server.output())![1]);
      const client = await connect({ host: '127.0.0.1', port: server.port });
      await client.put(Buffer.from('hello'), 'a.txt');
      await client.close();
      const m = samples((await scrape(port)).text);
      assert.equal(m.get('ferry_requests_total{type="PUT",result="OK"}'), 1);
      assert.ok((m.get('process_resident_memory_bytes') ?? 0) > 0);
    } finally {
      assert.equal(await server.stop(), 0);
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});

function openSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
  });
}

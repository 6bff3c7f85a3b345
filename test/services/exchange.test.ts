import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import { afterEach, describe, it } from 'node:test';
import { MAX_TIMER_MS } from '../../src/clock.js';
import { ExchangeServer } from '../../src/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { runCli, spawnCli, type CliProcess } from './helpers.js';

/** Connects, sends `bytes`, and returns everything the server sent until it closed. */
function exchangeRaw(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`server did not close; got ${JSON.stringify(received)}`));
    }, 5000);
    socket.on('data', (d: Buffer) => (received += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(bytes);
  });
}

async function startExchange(args: string[] = []): Promise<{ serve: CliProcess; port: number }> {
  const serve = spawnCli(['exchange', 'serve', '--port', '0', ...args]);
  const match = await serve.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/);
  return { serve, port: Number(match[1]) };
}

/** A stand-in exchange server that records the line it got and answers `reply`. */
async function fakeServer(reply: string): Promise<{ port: number; lines: string[]; close(): Promise<void> }> {
  const lines: string[] = [];
  const server = net.createServer((socket) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) {
        lines.push(text);
        socket.end(reply);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    lines,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('integer exchange', { timeout: 30_000 }, () => {
  const running: CliProcess[] = [];
  afterEach(() => {
    for (const process of running.splice(0)) process.process.kill('SIGKILL');
  });

  it('answers a raw socket with the exact wire line and prints the exchange', async () => {
    const { serve, port } = await startExchange(['--name', 'srv', '--number', '42']);
    running.push(serve);
    assert.equal(await exchangeRaw(port, 'Client of tester: 7\n'), 'Server of srv: 42\n');
    assert.equal(await exchangeRaw(port, 'Client of crlf user: 58\r\n'), 'Server of srv: 42\n', '\\r\\n is accepted');
    await serve.waitForOutput(/sum: 100/);
    assert.match(
      serve.stdout,
      /connection from 127\.0\.0\.1:\d+\nclient name: tester\nclient integer: 7\nserver name: srv\nserver integer: 42\nsum: 49\n/,
    );
    assert.match(serve.stdout, /client name: crlf user\nclient integer: 58\n/);
    assert.equal(serve.process.exitCode, null, 'in-range integers keep it running');
  });

  it('stops after answering an integer outside 1–100: closes its port, exits 0', async () => {
    const { serve, port } = await startExchange(['--name', 'srv']);
    running.push(serve);
    assert.equal(await exchangeRaw(port, 'Client of tester: 101\n'), 'Server of srv: 42\n');
    const exit = await serve.exited(5000);
    assert.equal(exit.code, 0);
    assert.match(exit.stdout, /sum: 143\nclient integer 101 is outside 1-100: stopping\n/);
    await assert.rejects(exchangeRaw(port, 'Client of late: 5\n'), { code: 'ECONNREFUSED' });
  });

  it('answers malformed lines with ERROR, closes that connection, and keeps serving', async () => {
    const { serve, port } = await startExchange(['--name', 'srv']);
    running.push(serve);
    assert.equal(await exchangeRaw(port, 'hello\n'), 'ERROR expected "Client of <name>: <integer>"\n');
    assert.equal(await exchangeRaw(port, 'Client of x: 3.5\n'), 'ERROR "3.5" is not an integer\n');
    assert.equal(await exchangeRaw(port, Buffer.from([0x43, 0xff, 0x0a])), 'ERROR line is not valid UTF-8\n');
    // Over 1 KiB: refused as soon as it is too long, without waiting for the newline.
    assert.equal(await exchangeRaw(port, 'x'.repeat(4000)), 'ERROR line is longer than 1024 bytes\n');
    assert.equal(await exchangeRaw(port, 'Client of still: 1\n'), 'Server of srv: 42\n');
    assert.match(serve.stdout, /malformed line: expected "Client of <name>: <integer>" \(answered ERROR, closed\)/);
    assert.equal(serve.process.exitCode, null);
  });

  it('bounds how long a client may take to send its line', async () => {
    const printed: string[] = [];
    const server = new ExchangeServer({ port: 0, lineTimeoutMs: 200, print: (text) => printed.push(text) });
    const { port } = await server.listen();
    try {
      const started = Date.now();
      assert.equal(await exchangeRaw(port, 'Client of slow'), 'ERROR no line within 0.2 s\n');
      assert.ok(Date.now() - started < 2000);
      assert.match(printed.join(''), /malformed line: no line within 0\.2 s/);
    } finally {
      assert.deepEqual(await server.close(), { kind: 'closed' });
    }
  });

  it('counts the line deadline on the injected clock; trickled bytes do not extend it', async () => {
    const clock = new ManualClock();
    const printed: string[] = [];
    // Ten minutes: only the injected clock can make it pass within the test.
    const server = new ExchangeServer({ port: 0, lineTimeoutMs: 600_000, clock, print: (text) => printed.push(text) });
    const { port } = await server.listen();
    try {
      const socket = net.connect({ host: '127.0.0.1', port });
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      await new Promise((resolve) => socket.once('connect', resolve));
      await new Promise<void>((resolve) => socket.write('Client of sl', () => resolve()));
      clock.advance(300_000);
      await new Promise<void>((resolve) => socket.write('ow', () => resolve()));
      clock.advance(299_999);
      assert.equal(received, '', 'no answer 1 ms before the deadline');
      clock.advance(1);
      await closed;
      assert.equal(received, 'ERROR no line within 600 s\n');
      assert.match(printed.join(''), /malformed line: no line within 600 s/);
    } finally {
      assert.deepEqual(await server.close(), { kind: 'closed' });
    }
  });

  it('closes an answered connection after the linger on the clock, even while the client keeps sending', async () => {
    const clock = new ManualClock();
    const server = new ExchangeServer({ port: 0, name: 'srv', clock, print: () => undefined });
    const { port } = await server.listen();
    try {
      // Half-open and never closing: the server must close it on its own.
      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      socket.on('error', () => undefined);
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('Client of chatty: 5\n');
      await new Promise((resolve) => socket.once('end', resolve));
      assert.equal(received, 'Server of srv: 42\n');
      const trickle = setInterval(() => socket.write('.'), 20);
      try {
        await new Promise((resolve) => setTimeout(resolve, 100)); // some trickled bytes reach the server
        clock.advance(2000);
        await closed;
      } finally {
        clearInterval(trickle);
      }
    } finally {
      await server.close();
    }
  });

  it('takes a line timeout longer than Node timers allow (2^31 − 1 ms) without firing at once', async () => {
    assert.throws(() => new ExchangeServer({ port: 0, lineTimeoutMs: 0 }), RangeError);
    assert.throws(() => new ExchangeServer({ port: 0, lineTimeoutMs: Number.POSITIVE_INFINITY }), RangeError);
    assert.ok(9_999_999_000 > MAX_TIMER_MS);
    const server = new ExchangeServer({ port: 0, name: 'srv', lineTimeoutMs: 9_999_999_000, print: () => undefined });
    const { port } = await server.listen();
    try {
      const socket = net.connect({ host: '127.0.0.1', port });
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('Client of patient');
      await new Promise((resolve) => setTimeout(resolve, 50)); // real time: the system clock is what overflowed
      socket.write(': 7\n');
      await closed;
      assert.equal(received, 'Server of srv: 42\n');
    } finally {
      await server.close();
    }
  });

  it('send: writes the exact client line and prints the server name, both integers and the sum', async () => {
    const fake = await fakeServer('Server of fake box: 10\r\n');
    try {
      const result = await runCli(['exchange', 'send', '5', '--name', 'bob', '-s', `127.0.0.1:${fake.port}`]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(fake.lines, ['Client of bob: 5\n']);
      assert.equal(result.stdout, 'server name: fake box\nclient integer: 5\nserver integer: 10\nsum: 15\n');

      // Without --name: the OS user name.
      await runCli(['exchange', 'send', '6', '-s', `127.0.0.1:${fake.port}`]);
      assert.equal(fake.lines[1], `Client of ${os.userInfo().username}: 6\n`);
    } finally {
      await fake.close();
    }
  });

  it('send: with N omitted, prompts and reads the integer from stdin', async () => {
    const { serve, port } = await startExchange(['--name', 'srv', '--number', '42']);
    running.push(serve);
    const result = await runCli(['exchange', 'send', '--name', 'carol', '-s', `127.0.0.1:${port}`], { input: '8\n' });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.startsWith('Enter an integer between 1 and 100: '), result.stdout);
    assert.match(result.stdout, /server name: srv\nclient integer: 8\nserver integer: 42\nsum: 50\n$/);
  });

  it('send: failures are one line with a non-zero exit', async () => {
    const refusing = await fakeServer('ERROR not today\n');
    try {
      const refused = await runCli(['exchange', 'send', '5', '-s', `127.0.0.1:${refusing.port}`]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stderr, `ferry: 127.0.0.1:${refusing.port} answered ERROR not today\n`);
    } finally {
      await refusing.close();
    }
    const closedPort = refusing.port;
    const noServer = await runCli(['exchange', 'send', '5', '-s', `127.0.0.1:${closedPort}`]);
    assert.equal(noServer.code, 1);
    assert.match(noServer.stderr, /^ferry: connection refused by 127\.0\.0\.1:\d+.*\n$/);
    const notInteger = await runCli(['exchange', 'send', 'seven']);
    assert.equal(notInteger.code, 2);
    assert.match(notInteger.stderr, /^ferry: invalid integer "seven": not a whole number/);
    const noInput = await runCli(['exchange', 'send'], { input: '' });
    assert.equal(noInput.code, 2);
    assert.match(noInput.stderr, /no integer given/);
    const badPort = await runCli(['exchange', 'serve', '--port', 'x']);
    assert.equal(badPort.code, 2);
  });
});

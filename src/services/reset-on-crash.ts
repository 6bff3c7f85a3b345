import { spawn } from 'node:child_process';
import type net from 'node:net';
import { systemClock, type Clock } from '../clock.js';

/**
 * When a process dies, the kernel closes its sockets like close(2) would: with a FIN when every
 * received byte was read. A raw sender takes a FIN for "stored", so a server killed while
 * committing would acknowledge an upload it never stored. With SO_LINGER {on, 0} the kernel
 * resets such a socket instead; an explicit shutdown (our FIN after a durable commit) still
 * sends a FIN.
 *
 * Node cannot set SO_LINGER on a live socket, but accepted sockets inherit it from the
 * listening socket, and `resetAndDestroy()` sets it before closing. So a short-lived child gets
 * a duplicate of the listening descriptor, calls `resetAndDestroy()` on it (which sets the
 * option on the shared socket and closes only the child's copy) and exits.
 */

/** The child's whole program: fd 3 is the listening socket, shared with us. */
const ARM_SCRIPT = [
  "const s = new (require('node:net').Socket)({ fd: 3, readable: false, writable: false });",
  "s.on('error', (e) => { process.stderr.write(String(e && e.message)); process.exit(1); });",
  "s.on('close', () => process.exit(0));",
  's.resetAndDestroy();',
].join('\n');

const ARM_TIMEOUT_MS = 10_000;

/**
 * Makes every connection `server` accepts from now on end with a reset, not a FIN, if this
 * process dies before closing it gracefully. Rejects (and changes nothing) where that is not
 * possible: no descriptor (Windows), no child process, or the option refused.
 */
export async function resetConnectionsOnCrash(server: net.Server, clock: Clock = systemClock): Promise<void> {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the listening socket has no file descriptor on this platform');
  // An empty environment: NODE_OPTIONS and the like must not change what the child runs.
  const child = spawn(process.execPath, ['-e', ARM_SCRIPT], { stdio: ['ignore', 'ignore', 'pipe', fd], env: {} });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => (stderr = (stderr + text).slice(0, 500)));
  await new Promise<void>((resolve, reject) => {
    const timer = clock.setTimer(ARM_TIMEOUT_MS, () => {
      child.kill('SIGKILL');
      reject(new Error(`the helper process did not finish within ${ARM_TIMEOUT_MS / 1000} s`));
    });
    child.once('error', (error) => {
      timer.cancel();
      reject(error);
    });
    child.once('close', (code, signal) => {
      timer.cancel();
      if (code === 0) resolve();
      else reject(new Error(`the helper process failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
    });
  });
}

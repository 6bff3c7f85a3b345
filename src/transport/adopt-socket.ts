import net from 'node:net';
import tls from 'node:tls';
import { SlabReader } from './read-slab.js';

interface HandleHolder {
  _handle?: { useUserBuffer?: unknown } | null;
}

/**
 * An accepted plain-TCP socket that reads into our slabs (`onread`) instead of a fresh 64 KiB
 * buffer per read. Node 20's `net.Server` takes no `onread` option, but `new net.Socket({
 * handle, onread })` does: the accepted socket's handle moves, in the 'connection' callback
 * before any byte is read, to a socket made with one. Measured on a 1 GiB upload into a bare
 * Node server: peak RSS 51 MB instead of 113 MB, the difference being read buffers waiting for
 * the GC. This reaches for `_handle`, which Node does not document; where it is missing (another
 * runtime, a future Node), the socket is returned as it is and reads with 'data' events.
 */
export function adoptWithSlabs(accepted: net.Socket, allowHalfOpen: boolean): { socket: net.Socket; reader?: SlabReader } {
  const holder = accepted as unknown as HandleHolder;
  const handle = holder._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function' || accepted.readableLength > 0) return { socket: accepted };
  const reader = new SlabReader();
  holder._handle = null;
  const socket = new net.Socket({ handle, allowHalfOpen, onread: reader.onread } as net.SocketConstructorOpts);
  // The old wrapper owns nothing now; destroying it releases its bookkeeping (and the
  // listening server's connection count) without touching the connection.
  accepted.destroy();
  return { socket, reader };
}

/** The handle the next AdoptingTLSSocket wraps (set only for the duration of its constructor). */
let adopting: unknown;

/**
 * A server-side TLS socket over an accepted TCP handle that decrypts into our slabs. Node's
 * TLSSocket honours `onread` only when it wraps no socket (`onread: !socket ? … : null` in
 * lib/_tls_wrap.js), so it is made with none and given the accepted handle where it would
 * create a fresh one (`_wrapHandle`). Measured on a 1 GiB TLS upload: peak server RSS 105 MB
 * with a 16 KiB buffer per TLS record left to the GC, 76 MB with slabs.
 */
class AdoptingTLSSocket extends tls.TLSSocket {
  _wrapHandle(wrap: unknown, handle: unknown, ...rest: unknown[]): unknown {
    const base = (tls.TLSSocket.prototype as unknown as { _wrapHandle: (...args: unknown[]) => unknown })._wrapHandle;
    return base.call(this, wrap, handle ?? adopting, ...rest);
  }
}

/**
 * `new tls.TLSSocket(accepted, { isServer: true, … })`, reading into slabs where this Node
 * allows (see AdoptingTLSSocket); otherwise that plain TLS socket, which emits 'data'.
 */
export function adoptTlsWithSlabs(accepted: net.Socket, options: tls.TLSSocketOptions): { socket: tls.TLSSocket; reader?: SlabReader } {
  const holder = accepted as unknown as HandleHolder;
  const handle = holder._handle;
  const internals = tls.TLSSocket.prototype as unknown as { _wrapHandle?: unknown };
  if (!handle || typeof handle.useUserBuffer !== 'function' || typeof internals._wrapHandle !== 'function' || accepted.readableLength > 0) {
    return { socket: new tls.TLSSocket(accepted, { ...options, isServer: true }) };
  }
  const reader = new SlabReader();
  holder._handle = null;
  let socket: tls.TLSSocket;
  adopting = handle;
  try {
    socket = new AdoptingTLSSocket(undefined as unknown as net.Socket, { ...options, isServer: true, onread: reader.onread } as tls.TLSSocketOptions);
  } finally {
    adopting = undefined;
  }
  accepted.destroy(); // as in adoptWithSlabs: the old wrapper owns nothing now
  // Made without a socket, it takes itself for one still connecting (tls.connect's case):
  // the connection is up, so reading (the client's hello first) starts now.
  (socket as unknown as { connecting: boolean }).connecting = false;
  socket.read(0);
  return { socket, reader };
}

import net from 'node:net';

/**
 * Connection accounting shared by every port of one server (main, raw ingest): a total cap
 * and a cap per client address, checked when a TCP connection is accepted — before any TLS
 * handshake or protocol byte is processed, so refusing is cheap.
 */

export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_MAX_PER_IP = 50;

export interface ConnectionLimits {
  maxConnections?: number;
  maxPerIp?: number;
}

export type Admission = { ok: true; release: () => void } | { ok: false; reason: string };

export class ConnectionLimiter {
  readonly maxConnections: number;
  readonly maxPerIp: number;
  private total = 0;
  private refusals = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(limits: ConnectionLimits = {}) {
    this.maxConnections = limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.maxPerIp = limits.maxPerIp ?? DEFAULT_MAX_PER_IP;
  }

  get count(): number {
    return this.total;
  }

  /** Connections refused by either cap since the start (for metrics). */
  get refused(): number {
    return this.refusals;
  }

  countFor(address: string | undefined): number {
    return this.perAddress.get(addressKey(address)) ?? 0;
  }

  /** Takes a slot for a connection from `address`; `release` (idempotent) gives it back. */
  admit(address: string | undefined): Admission {
    const key = addressKey(address);
    if (this.total >= this.maxConnections) {
      this.refusals++;
      return { ok: false, reason: `the server is at its limit of ${this.maxConnections} connections` };
    }
    const current = this.perAddress.get(key) ?? 0;
    if (current >= this.maxPerIp) {
      this.refusals++;
      return { ok: false, reason: `too many connections from your address (limit ${this.maxPerIp})` };
    }
    this.total++;
    this.perAddress.set(key, current + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perAddress.get(key) ?? 1) - 1;
        if (left <= 0) this.perAddress.delete(key);
        else this.perAddress.set(key, left);
      },
    };
  }
}

/**
 * The unit a per-address limit counts: an IPv4 address (also when mapped into IPv6), or the
 * /64 prefix of an IPv6 address — one host usually owns a whole /64, so counting single
 * IPv6 addresses would let it open unlimited connections.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address === '') return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!net.isIPv6(address)) return address;
  const groups = expandIPv6(address);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : address;
}

function expandIPv6(address: string): string[] | undefined {
  const clean = address.split('%')[0]!; // zone id
  const [head, tail] = clean.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  if (right.some((g) => g.includes('.')) || left.some((g) => g.includes('.'))) return undefined;
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}

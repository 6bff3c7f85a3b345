/**
 * Read buffers for a socket created with `onread`: Node reads straight into memory we hand it,
 * instead of allocating a fresh 64 KiB buffer per read and running it through a stream.
 *
 * The bytes of a read are kept beyond the callback (body slices queued by the download sink,
 * a partial frame held by the decoder), so memory handed out is never overwritten while a
 * reference may remain: each read goes into the unused tail of a slab, and a new slab is taken
 * when the tail gets short; a slab is freed by the GC once no slice of it is held (like Node's
 * own Buffer pool). A slab nothing escaped from is rewound and read into again, so control
 * traffic reads without allocating at all.
 */
export const SLAB_BYTES = 1024 * 1024;
/** A tail shorter than this is not worth a read of its own: the next read takes a new slab. */
export const MIN_READ_BYTES = 128 * 1024;

export class ReadSlab {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;
  /** A slice of this slab was kept by someone (body bytes, a held partial frame). */
  private escaped = false;

  /** The `onread.buffer` factory: called before the first read and after each delivery. */
  next(): Buffer {
    if (SLAB_BYTES - this.used < MIN_READ_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
      this.escaped = false;
    }
    return this.slab.subarray(this.used);
  }

  /**
   * The `count` bytes Node just read into `region` (the last `next()`), as a slice of the
   * slab. It stays valid while referenced, provided `settle` is told whether anything was kept.
   */
  take(count: number, region: Uint8Array): Buffer {
    this.used += count;
    return (region as Buffer).subarray(0, count);
  }

  /**
   * After the bytes of `take` were handled: `kept` says whether any slice of them (or of an
   * earlier read in this slab) may still be referenced. If none is, the slab is read into
   * again from its start.
   */
  settle(kept: boolean): void {
    if (kept) this.escaped = true;
    if (!this.escaped) this.used = 0;
  }
}

/** Takes the bytes a socket reads; returns true when it kept a reference to any of them. */
export type ByteReceiver = (chunk: Buffer) => boolean;

/**
 * The `onread` option for `net.connect`, delivering to a receiver attached once the
 * connection exists. Bytes that arrive before that (none in the protocol: the server speaks
 * after HELLO) are copied and handed over on attach.
 */
export class SlabReader {
  private readonly slab = new ReadSlab();
  private receiver: ByteReceiver | undefined;
  private early: Buffer[] = [];

  readonly onread = {
    buffer: (): Buffer => this.slab.next(),
    /** Returns true: pausing is the connection's `socket.pause()`, not this return value. */
    callback: (count: number, region: Uint8Array): boolean => {
      const chunk = this.slab.take(count, region);
      if (this.receiver === undefined) {
        this.early.push(Buffer.from(chunk));
        this.slab.settle(false);
      } else {
        this.slab.settle(this.receiver(chunk));
      }
      return true;
    },
  };

  attach(receiver: ByteReceiver): void {
    this.receiver = receiver;
    const early = this.early;
    this.early = [];
    for (const chunk of early) receiver(chunk);
  }
}

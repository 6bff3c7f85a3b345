/**
 * Read buffers for a socket read with `onread`: Node reads straight into memory we hand it,
 * instead of allocating a fresh 64 KiB buffer per read and running it through a stream.
 *
 * The bytes of a read are kept beyond the callback (body slices queued by a file sink, a
 * partial frame held by the decoder), so memory handed out is never overwritten while a
 * reference may remain: each read goes into the unused tail of a 1 MiB slab, and a new slab is
 * taken when the tail gets short. A slice handed to a consumer that says when it is done with
 * it (`retain`, then the release it returns: a file sink once the bytes are written) keeps its
 * slab out of use only until then, and a retired slab nothing holds any more is read into again
 * — so a transfer of any size cycles through a few slabs instead of leaving a trail of garbage
 * for the GC (tens of MB of RSS before a collection). A slab from which a reference escaped
 * untracked is left to the GC, like Node's own Buffer pool. A connection starts on a 64 KiB
 * slab and reads into 1 MiB ones once it has received a megabyte.
 */
export const SLAB_BYTES = 1024 * 1024;
/**
 * A connection's first slab: requests and small files fit, and a hundred idle or chatty
 * connections hold 6 MiB instead of 100. A connection takes full slabs once it has received
 * FULL_SLABS_AFTER bytes (a body stream, or many batches).
 */
export const FIRST_SLAB_BYTES = 64 * 1024;
const FULL_SLABS_AFTER = SLAB_BYTES;
/** A tail shorter than this is not worth a read of its own: the next read takes another slab. */
export const MIN_READ_BYTES = 128 * 1024;
/** Retired slabs kept for reuse; more than this in flight are allocated (and left to the GC). */
const MAX_SPARE_SLABS = 8;

interface Slab {
  readonly buffer: Buffer;
  /** Slices retained and not yet released. */
  held: number;
  /** A slice may be referenced untracked: never read into again. */
  leaked: boolean;
  /** No longer the slab being read into. */
  retired: boolean;
}

/** What `retain` returns for memory that is not a slab's (nothing to give back). */
export const NO_RELEASE = (): void => undefined;

export class ReadSlab {
  private current: Slab;
  private used = 0;
  private received = 0;
  private readonly spare: Buffer[] = [];
  /** Retired small slabs nothing holds, read into again while the connection is still small. */
  private readonly spareSmall: Buffer[] = [];
  private readonly slabs = new WeakMap<ArrayBufferLike, Slab>();

  /** `firstSlabBytes`: the size of the slab read into until FULL_SLABS_AFTER bytes arrived. */
  constructor(firstSlabBytes = FIRST_SLAB_BYTES) {
    this.current = this.slabFor(Buffer.allocUnsafeSlow(firstSlabBytes));
  }

  private slabFor(buffer: Buffer): Slab {
    const slab: Slab = { buffer, held: 0, leaked: false, retired: false };
    this.slabs.set(buffer.buffer, slab);
    return slab;
  }

  /** The `onread.buffer` factory: called before the first read and after each delivery. */
  next(): Buffer {
    const size = this.current.buffer.length;
    const small = size < SLAB_BYTES;
    // A small first slab is left for a full one once the connection carries bulk, or once full.
    const tailTooShort = size - this.used < Math.min(MIN_READ_BYTES, size / 2);
    if (tailTooShort || (small && this.received >= FULL_SLABS_AFTER)) {
      const old = this.current;
      old.retired = true;
      if (old.held === 0 && !old.leaked) this.recycle(old);
      const full = !small || this.received >= FULL_SLABS_AFTER;
      if (full) this.spareSmall.length = 0; // never read into again: left to the GC
      this.current = this.slabFor(full ? (this.spare.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES)) : (this.spareSmall.pop() ?? Buffer.allocUnsafeSlow(size)));
      this.used = 0;
    }
    return this.current.buffer.subarray(this.used);
  }

  /** The `count` bytes Node just read into `region` (the last `next()`), as a slice of the slab. */
  take(count: number, region: Uint8Array): Buffer {
    this.used += count;
    this.received += count;
    return (region as Buffer).subarray(0, count);
  }

  /**
   * `slice` (of a read just taken) is kept by a consumer until it calls the returned function
   * (once; later calls do nothing): the slab is not read into again before that.
   */
  retain(slice: Buffer): () => void {
    const slab = this.slabs.get(slice.buffer);
    if (slab === undefined) return NO_RELEASE;
    slab.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      slab.held--;
      if (slab.held === 0 && slab.retired && !slab.leaked) this.recycle(slab);
    };
  }

  private recycle(slab: Slab): void {
    this.slabs.delete(slab.buffer.buffer);
    if (slab.buffer.length === SLAB_BYTES) {
      if (this.spare.length < MAX_SPARE_SLABS) this.spare.push(slab.buffer);
    } else if (this.received < FULL_SLABS_AFTER && this.spareSmall.length < MAX_SPARE_SLABS) {
      this.spareSmall.push(slab.buffer);
    }
  }

  /**
   * After the bytes of `take` were handled: `kept` says whether a slice of them may still be
   * referenced without a `retain`. If nothing holds the slab, it is read into again from its start.
   */
  settle(kept: boolean): void {
    if (kept) this.current.leaked = true;
    if (!this.current.leaked && this.current.held === 0) this.used = 0;
  }
}

/** Takes the bytes a socket reads; returns true when it kept an untracked reference to any of them. */
export type ByteReceiver = (chunk: Buffer) => boolean;

/**
 * The `onread` option of a socket, delivering to a receiver attached once the connection
 * exists. Bytes that arrive before that are copied and handed over on attach.
 */
export class SlabReader {
  private readonly slab = new ReadSlab();
  private receiver: ByteReceiver | undefined;
  private early: Buffer[] = [];

  readonly onread = {
    buffer: (): Buffer => this.slab.next(),
    /** Returns true: pausing is the socket's `pause()`, not this return value. */
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

  /** See ReadSlab.retain: only for a slice of the chunk being received right now. */
  retain(slice: Buffer): () => void {
    return this.slab.retain(slice);
  }

  attach(receiver: ByteReceiver): void {
    this.receiver = receiver;
    const early = this.early;
    this.early = [];
    for (const chunk of early) receiver(chunk);
  }
}

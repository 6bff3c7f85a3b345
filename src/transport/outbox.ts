import type { Socket } from 'node:net';

/**
 * Serialises everything one side writes on a connection. Frames are written at once when
 * nothing else is in flight; a body (a file or a stream) holds the line until its last byte is
 * written, and frames queued meanwhile follow it. Writers respect socket backpressure.
 *
 * It also measures what is owed to the peer, so a reader that stops reading can be stopped
 * from producing more: `backlog` counts frame bytes not yet taken by the kernel (queued behind
 * a body, or sitting in the socket's buffer while no body runs) and `tasks` the bodies waiting
 * for the line. A body's own bytes are not counted: it waits for drain itself.
 */
export class Outbox {
  private tail: Promise<void> = Promise.resolve();
  private busy = 0;
  private queuedBytes = 0;
  private closed = false;
  private corked = false;
  /** Raw body bytes under way (from a GET_OK to its body's last byte): nothing may go between. */
  private rawBodies = 0;

  constructor(
    private readonly socket: Socket,
    /** Told each time a queued frame or body has been handed to the socket (or failed). */
    private readonly onTaskDone?: () => void,
    /** Told each time bytes written through this outbox reach the kernel: the peer is taking them. */
    readonly onWritten?: () => void,
  ) {}

  /** Writes a frame now if the line is free, otherwise after the bodies queued before it. */
  frame(bytes: Buffer): void {
    if (this.closed || this.socket.destroyed) return;
    if (this.busy === 0) {
      // Frames written in one tick (replies to pipelined requests) leave in one segment.
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      this.socket.write(bytes, this.onWritten);
      return;
    }
    this.queuedBytes += bytes.length;
    void this.enqueue(async () => {
      this.queuedBytes -= bytes.length;
      await writeAndWait(this.socket, bytes, this.onWritten);
    }).catch(() => undefined); // a closed connection: the frame is moot
  }

  /** Runs `send`, which writes a header frame and its raw body, marked so no frame is written out of turn meanwhile. */
  async rawBody<T>(send: () => Promise<T>): Promise<T> {
    this.rawBodies++;
    try {
      return await send();
    } finally {
      this.rawBodies--;
    }
  }

  /**
   * Writes a frame that needs no place in the order of replies (WORKING) at once, unless a raw
   * body is being written: every other write is a whole frame, so the socket is between frames.
   * Returns whether it was written.
   */
  frameOutOfTurn(bytes: Buffer): boolean {
    if (this.closed || this.socket.destroyed || this.rawBodies > 0) return false;
    this.socket.write(bytes, this.onWritten);
    return true;
  }

  /** Runs `task` with exclusive use of the socket once everything queued before it is written. */
  enqueue(task: () => Promise<void>): Promise<void> {
    this.busy++;
    const run = this.tail.then(async () => {
      if (this.closed || this.socket.destroyed) throw new Error('connection closed');
      await task();
    });
    const done = (): void => {
      this.busy--;
      this.onTaskDone?.();
    };
    this.tail = run.then(done, done);
    return run;
  }

  /** Frame bytes the peer has not taken yet (see the class comment). */
  get backlog(): number {
    return this.queuedBytes + (this.busy === 0 ? this.socket.writableLength : 0);
  }

  /** Bodies and frames waiting for (or holding) the line. */
  get tasks(): number {
    return this.busy;
  }

  close(): void {
    this.closed = true;
  }
}

/** Writes `bytes` and resolves once the socket will take more (or rejects if it closes). */
export function writeAndWait(socket: Socket, bytes: Buffer, onWritten?: () => void): Promise<void> | void {
  if (socket.write(bytes, onWritten)) return;
  return waitForDrain(socket);
}

export function waitForDrain(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.reject(new Error('connection closed'));
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('connection closed'));
    };
    const cleanup = (): void => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
    };
    socket.on('drain', onDrain);
    socket.on('close', onClose);
  });
}

import type net from 'node:net';
import { Deadline, type Clock } from '../clock.js';

/**
 * The idle deadline of one HTTP connection, on the server's Clock: the connection is closed
 * when the peer made no progress — no byte received and none of ours taken — for the idle
 * timeout, whatever is in flight (a stalled upload body, a download not read, a keep-alive
 * connection left open). Time the server spends waiting for its disk is never counted
 * (`diskBusy`). Node's HTTP parser reads the socket below JavaScript, so the handlers report
 * what they receive (`touch`: a request, a body chunk); writes are seen when the deadline
 * fires (the socket's count of bytes taken moved), so a stalled reader is noticed between one
 * and two timeouts after it stopped.
 */
export class ConnectionWatch {
  private readonly deadline: Deadline;
  private written: number;
  /** Uploads on this connection waiting for the disk (not the peer's silence). */
  diskBusy = 0;

  constructor(
    private readonly socket: net.Socket,
    clock: Clock,
    idleTimeoutMs: number,
    onIdle: () => void,
  ) {
    this.written = socket.bytesWritten;
    this.deadline = new Deadline(clock, idleTimeoutMs, () => {
      const written = this.socket.bytesWritten;
      if (written !== this.written || this.diskBusy > 0) {
        this.written = written;
        this.deadline.start();
        return;
      }
      onIdle();
    });
    socket.once('close', () => this.deadline.stop());
    this.deadline.start();
  }

  /** The peer made progress (a request arrived, body bytes were read). */
  touch(): void {
    this.deadline.touch();
  }

  stop(): void {
    this.deadline.stop();
  }
}

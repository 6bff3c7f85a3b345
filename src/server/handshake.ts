import type { Timer } from '../clock.js';
import { FerryError, ProtocolError, WireErrorCode } from '../errors.js';
import type { DigestAlgorithm } from '../io/digest.js';
import { HelloFlag, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, ServerFlag, type Message, type MessageOf } from '../protocol/index.js';
import { allows, MAX_FAILED_ATTEMPTS, permissionFor, type Permission } from './auth.js';
import type { SessionIo } from './session-io.js';

/**
 * HELLO and AUTH for one connection (PROTOCOL.md §3, §8): the version agreed, what the
 * connection may do, and the absolute handshake deadline — HELLO (and, with tokens, a
 * successful AUTH) must be done by then however the bytes trickle in.
 */
export class Handshake {
  greeted = false;
  version = PROTOCOL_VERSION;
  /** SHA-256 unless a version-4 client offered BLAKE3 and this server has it. */
  algorithm: DigestAlgorithm = 'sha256';
  /** The client takes WORKING frames (HELLO flag WORKING, PROTOCOL.md §3.1). */
  takesWorking = false;
  /** Everything without tokens; else what the accepted token grants (undefined: nothing yet). */
  private permission: Permission | undefined;
  private failures = 0;
  private verdictTimer: Timer | undefined;
  private deadline: Timer | undefined;

  constructor(private readonly io: SessionIo) {
    const { ctx } = io;
    this.permission = ctx.tokens ? undefined : 'write';
    this.deadline = ctx.clock.setTimer(ctx.limits.handshakeTimeoutMs, () =>
      io.guard(() =>
        io.fail(new FerryError('TIMEOUT', ctx.tokens ? 'no HELLO and AUTH within the handshake deadline' : 'no HELLO within the handshake deadline')),
      ),
    );
  }

  /** The handshake deadline no longer applies. */
  private done(): void {
    this.deadline?.cancel();
    this.deadline = undefined;
  }

  dispose(): void {
    this.done();
    this.verdictTimer?.cancel();
    this.verdictTimer = undefined;
  }

  hello(hello: MessageOf<'HELLO'>): void {
    const { ctx } = this.io;
    if (!ctx.tokens) this.done();
    if (hello.version < MIN_PROTOCOL_VERSION || hello.version > PROTOCOL_VERSION) {
      this.io.fail(
        new FerryError('VERSION', `client speaks protocol ${hello.version}; this server speaks ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`),
      );
      return;
    }
    this.version = hello.version;
    if (hello.version >= 4 && hello.flags & HelloFlag.BLAKE3 && ctx.blake3) this.algorithm = 'blake3';
    this.takesWorking = (hello.flags & HelloFlag.WORKING) !== 0;
    this.greeted = true;
    ctx.log.debug({ peer: this.io.peer, client: hello.clientName }, 'hello');
    this.io.send({
      type: 'SERVER_HELLO',
      id: 0,
      version: this.version,
      serverName: ctx.serverName,
      maxFileSize: ctx.store.maxFileSize,
      flags: (ctx.tokens ? ServerFlag.AUTH_REQUIRED : 0) | (this.algorithm === 'blake3' ? ServerFlag.BLAKE3 : 0) | (this.takesWorking ? ServerFlag.WORKING : 0),
    });
  }

  /**
   * AUTH: the token is checked at once (in constant time) and never kept or logged; an address
   * that failed too often waits for its verdict. The third failure closes the connection.
   */
  auth(message: MessageOf<'AUTH'>): void {
    const { ctx } = this.io;
    const tokens = ctx.tokens;
    if (!tokens) {
      this.io.send({ type: 'OK', id: message.id }); // no tokens configured: any token is accepted
      return;
    }
    if (this.verdictTimer !== undefined) throw new ProtocolError('AUTH sent while another AUTH is in progress');
    const address = this.io.remoteAddress;
    const delay = ctx.throttle?.delayFor(address) ?? 0;
    const granted = tokens.check(message.token);
    if (granted === undefined) ctx.throttle?.recordFailure(address);
    const verdict = (): void => {
      this.verdictTimer = undefined;
      if (this.io.closed) return;
      if (granted !== undefined) {
        this.permission = granted;
        this.done();
        ctx.log.info({ peer: this.io.peer, permission: granted }, 'authenticated');
        this.io.send({ type: 'OK', id: message.id });
        return;
      }
      this.failures++;
      ctx.events?.emit('auth-failed', {});
      ctx.log.warn({ peer: this.io.peer, attempt: this.failures }, 'token not accepted');
      this.io.send({ type: 'ERROR', id: message.id, code: WireErrorCode.AUTH_FAILED, message: 'token not accepted' });
      if (this.failures >= MAX_FAILED_ATTEMPTS) {
        this.io.fail(new FerryError('AUTH_FAILED', `${MAX_FAILED_ATTEMPTS} tokens not accepted: closing`));
      }
    };
    if (delay === 0) verdict();
    else this.verdictTimer = ctx.clock.setTimer(delay, () => this.io.guard(verdict));
  }

  /** Why this connection may not make `message`, or undefined if it may. */
  refusal(message: Message): FerryError | undefined {
    const needed = permissionFor(message.type);
    if (needed === undefined || allows(this.permission, needed)) return undefined;
    return this.permission === undefined
      ? new FerryError('AUTH_REQUIRED', 'authentication required: send AUTH with a token first')
      : new FerryError('READ_ONLY', 'read-only token: it may list, stat and get, not write');
  }

  requireVersion(version: number, feature: string): void {
    if (this.version < version) {
      throw new FerryError('UNSUPPORTED', `${feature} needs protocol ${version}; this connection speaks ${this.version}`);
    }
  }
}

import { ProtocolError } from '../errors.js';
import { PayloadReader, PayloadWriter } from './bytes.js';
import {
  HEADER_SIZE,
  MAGIC,
  MAX_CONTROL_PAYLOAD,
  MessageType,
  PutFlag,
  DIGEST_SIZE,
  BatchFlag,
  BatchStatus,
  MAX_BATCH_FILES,
  MAX_BATCH_MESSAGE,
  GetBatchStatus,
  MAX_GET_BATCH_FILE,
  MAX_GET_BATCH_NAMES,
  ListFlag,
} from './constants.js';

/** A stored file as it travels in ENTRY, ENTRIES. */
export interface WireEntry {
  name: string;
  /** A file, or a folder (only in a non-recursive listing; size 0, digest all zero). */
  kind: 'file' | 'folder';
  size: number;
  /** Milliseconds since the Unix epoch. */
  mtimeMs: number;
  digest: Buffer;
}

/** One file of a PUT_BATCH (v5): its bytes travel inside the frame. */
export interface BatchFile {
  name: string;
  /** (with the MTIME flag) */
  mtimeMs?: number;
  digest: Buffer;
  data: Buffer;
}

/** What became of one file of a batch, in request order. */
export type BatchResult =
  | { status: 'stored'; /** Set when RENAME chose another name. */ name?: string; mtimeMs: number }
  | { status: 'identical'; mtimeMs: number }
  | { status: 'refused'; code: number; message: string };

/** One file of a BATCH_FILES reply (v6), in the order the GET_BATCH named them. */
export type BatchItem =
  | { status: 'file'; mtimeMs: number; digest: Buffer; data: Buffer }
  | { status: 'large'; size: number }
  | { status: 'refused'; code: number; message: string };

export type Message =
  | { type: 'HELLO'; id: number; version: number; clientName: string; flags: number }
  | { type: 'AUTH'; id: number; token: string }
  /** `after` and `limit` are there exactly when `flags` has PAGE (v7). */
  | { type: 'LIST'; id: number; prefix: string; flags: number; after?: string; limit?: number }
  | { type: 'STAT'; id: number; name: string }
  | { type: 'PUT'; id: number; name: string; flags: number; size: number; /** (v3, with the MTIME flag) */ mtimeMs?: number }
  | { type: 'GET'; id: number; name: string; offset: number }
  | { type: 'DELETE'; id: number; name: string; flags: number }
  | { type: 'PUT_END'; id: number; digest: Buffer }
  | { type: 'PROBE_UPLOAD'; id: number; name: string; size: number }
  | { type: 'HASH_PREFIX'; id: number; name: string; length: number }
  | { type: 'PARTIAL'; id: number; offset: number; digest: Buffer }
  | { type: 'PUT_BATCH'; id: number; flags: number; files: BatchFile[] }
  | { type: 'BATCH_RESULTS'; id: number; results: BatchResult[] }
  | { type: 'GET_BATCH'; id: number; names: string[] }
  | { type: 'BATCH_FILES'; id: number; more: boolean; items: BatchItem[] }
  | { type: 'OK'; id: number }
  | { type: 'WORKING'; id: number }
  | {
      type: 'SERVER_HELLO';
      id: number;
      version: number;
      serverName: string;
      maxFileSize: number;
      flags: number;
    }
  | { type: 'ENTRIES'; id: number; more: boolean; entries: WireEntry[] }
  | { type: 'ENTRY'; id: number; entry: WireEntry }
  | { type: 'PUT_OK'; id: number; entry: WireEntry }
  | { type: 'GET_OK'; id: number; size: number; offset: number; mtimeMs: number; digest: Buffer }
  | { type: 'PUT_READY'; id: number; offset: number; prefixDigest: Buffer }
  | { type: 'ERROR'; id: number; code: number; message: string };

export type MessageOf<T extends Message['type']> = Extract<Message, { type: T }>;

const typeByNumber = new Map<number, Message['type']>(
  Object.entries(MessageType).map(([name, value]) => [value, name as Message['type']]),
);

export function messageTypeName(type: number): Message['type'] | undefined {
  return typeByNumber.get(type);
}

/** Header (u32 payload length, u8 type, u32 id) followed by the payload. */
export function frame(type: number, id: number, payload: Buffer): Buffer {
  if (payload.length > MAX_CONTROL_PAYLOAD) {
    throw new RangeError(`control payload of ${payload.length} bytes exceeds ${MAX_CONTROL_PAYLOAD}`);
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32BE(id >>> 0, 5);
  payload.copy(out, HEADER_SIZE);
  return out;
}

function writeEntry(w: PayloadWriter, entry: WireEntry): PayloadWriter {
  return w.string(entry.name).u8(entry.kind === 'folder' ? 1 : 0).u64(entry.size).u64(entry.mtimeMs).raw(checkDigest(entry.digest));
}

function readEntry(r: PayloadReader): WireEntry {
  const name = r.string('name');
  const kind = r.u8('kind');
  if (kind > 1) throw new ProtocolError(`unknown entry kind ${kind}`);
  return {
    name,
    kind: kind === 1 ? 'folder' : 'file',
    size: r.u64('size'),
    mtimeMs: r.u64('mtime'),
    digest: r.bytesOf(DIGEST_SIZE, 'digest'),
  };
}

/** Encoded size of one entry, so a listing can be split into frames under the cap. */
export function entryWireSize(entry: WireEntry): number {
  return 2 + Buffer.byteLength(entry.name, 'utf8') + 1 + 8 + 8 + DIGEST_SIZE;
}
/** Bytes of an ENTRIES payload before its entries (more flag, count). */
export const ENTRIES_OVERHEAD = 1 + 2;

/** Bytes of a PUT_BATCH payload before its files (flags, count). */
export const BATCH_OVERHEAD = 1 + 2;

/** Encoded size of one file in a PUT_BATCH, so a batch can be filled up to the frame cap. */
export function batchFileWireSize(nameBytes: number, size: number, withMtime: boolean): number {
  return 2 + nameBytes + 4 + (withMtime ? 8 : 0) + DIGEST_SIZE + size;
}

/** Bytes of a GET_BATCH payload before its names (count). */
export const GET_BATCH_OVERHEAD = 2;
/** Bytes of a BATCH_FILES payload before its items (more flag, count). */
export const BATCH_FILES_OVERHEAD = 1 + 2;

/** Encoded size of one name in a GET_BATCH. */
export function getBatchNameWireSize(name: string): number {
  return 2 + Buffer.byteLength(name, 'utf8');
}

/** Encoded size of one item of a BATCH_FILES reply, so the server can fill frames under the cap. */
export function batchItemWireSize(item: BatchItem): number {
  if (item.status === 'file') return 1 + 4 + 8 + DIGEST_SIZE + item.data.length;
  if (item.status === 'large') return 1 + 8;
  return 1 + 2 + 2 + Buffer.byteLength(shortMessage(item.message), 'utf8');
}

/** A refusal message cut to MAX_BATCH_MESSAGE bytes on a character boundary. */
export function shortMessage(text: string): string {
  let out = text;
  while (Buffer.byteLength(out, 'utf8') > MAX_BATCH_MESSAGE) out = out.slice(0, -1);
  return out;
}

function checkDigest(digest: Buffer): Buffer {
  if (digest.length !== DIGEST_SIZE) throw new RangeError('digest must be 32 bytes');
  return digest;
}

export function encodePayload(message: Message): Buffer {
  return writePayload(new PayloadWriter(), message).toBuffer();
}

/** The message's payload, written after whatever `w` holds. */
function writePayload(w: PayloadWriter, message: Message): PayloadWriter {
  switch (message.type) {
    case 'HELLO':
      w.u32(MAGIC).u16(message.version).string(message.clientName).u32(message.flags);
      break;
    case 'AUTH':
      w.string(message.token);
      break;
    case 'LIST':
      w.string(message.prefix).u8(message.flags);
      if (message.flags & ListFlag.PAGE) w.string(message.after ?? '').u16(message.limit ?? 0);
      break;
    case 'STAT':
      w.string(message.name);
      break;
    case 'PUT':
      w.string(message.name).u8(message.flags).u64(message.size);
      if (message.flags & PutFlag.MTIME) w.u64(message.mtimeMs ?? 0);
      break;
    case 'GET':
      w.string(message.name).u64(message.offset);
      break;
    case 'DELETE':
      w.string(message.name).u8(message.flags);
      break;
    case 'PUT_END':
      w.raw(checkDigest(message.digest));
      break;
    case 'PROBE_UPLOAD':
      w.string(message.name).u64(message.size);
      break;
    case 'HASH_PREFIX':
      w.string(message.name).u64(message.length);
      break;
    case 'PARTIAL':
      w.u64(message.offset).raw(checkDigest(message.digest));
      break;
    case 'PUT_BATCH':
      if (message.files.length > MAX_BATCH_FILES) throw new RangeError(`a batch carries at most ${MAX_BATCH_FILES} files`);
      w.u8(message.flags).u16(message.files.length);
      for (const file of message.files) {
        w.string(file.name).u32(file.data.length);
        if (message.flags & BatchFlag.MTIME) w.u64(file.mtimeMs ?? 0);
        w.raw(checkDigest(file.digest)).raw(file.data);
      }
      break;
    case 'BATCH_RESULTS':
      w.u16(message.results.length);
      for (const result of message.results) {
        if (result.status === 'stored' && result.name !== undefined) w.u8(BatchStatus.STORED_AS).string(result.name).u64(result.mtimeMs);
        else if (result.status === 'stored') w.u8(BatchStatus.STORED).u64(result.mtimeMs);
        else if (result.status === 'identical') w.u8(BatchStatus.IDENTICAL).u64(result.mtimeMs);
        else w.u8(BatchStatus.REFUSED).u16(result.code).string(shortMessage(result.message));
      }
      break;
    case 'GET_BATCH':
      if (message.names.length > MAX_GET_BATCH_NAMES) throw new RangeError(`a GET_BATCH names at most ${MAX_GET_BATCH_NAMES} files`);
      w.u16(message.names.length);
      for (const name of message.names) w.string(name);
      break;
    case 'BATCH_FILES':
      w.u8(message.more ? 1 : 0).u16(message.items.length);
      for (const item of message.items) {
        if (item.status === 'file') w.u8(GetBatchStatus.FILE).u32(item.data.length).u64(item.mtimeMs).raw(checkDigest(item.digest)).raw(item.data);
        else if (item.status === 'large') w.u8(GetBatchStatus.LARGE).u64(item.size);
        else w.u8(GetBatchStatus.REFUSED).u16(item.code).string(shortMessage(item.message));
      }
      break;
    case 'OK':
    case 'WORKING':
      break;
    case 'SERVER_HELLO':
      w.u32(MAGIC)
        .u16(message.version)
        .string(message.serverName)
        .u64(message.maxFileSize)
        .u32(message.flags);
      break;
    case 'ENTRIES':
      w.u8(message.more ? 1 : 0).u16(message.entries.length);
      for (const entry of message.entries) writeEntry(w, entry);
      break;
    case 'ENTRY':
    case 'PUT_OK':
      writeEntry(w, message.entry);
      break;
    case 'GET_OK':
      w.u64(message.size).u64(message.offset).u64(message.mtimeMs).raw(checkDigest(message.digest));
      break;
    case 'PUT_READY':
      w.u64(message.offset).raw(checkDigest(message.prefixDigest));
      break;
    case 'ERROR':
      w.u16(message.code).string(message.message);
      break;
  }
  return w;
}

/** The message as one frame: header (as `frame` writes it) and payload, written in place. */
export function encodeMessage(message: Message): Buffer {
  const w = writePayload(new PayloadWriter(HEADER_SIZE), message);
  const length = w.byteLength;
  if (length > MAX_CONTROL_PAYLOAD) throw new RangeError(`control payload of ${length} bytes exceeds ${MAX_CONTROL_PAYLOAD}`);
  return w.framed((header) => {
    header.writeUInt32BE(length, 0);
    header.writeUInt8(MessageType[message.type], 4);
    header.writeUInt32BE(message.id >>> 0, 5);
  });
}

/** Decodes one frame's payload; throws ProtocolError on any malformed field. */
export function decodePayload(typeNumber: number, id: number, payload: Buffer): Message {
  const type = typeByNumber.get(typeNumber);
  if (type === undefined) {
    throw new ProtocolError(`unknown message type 0x${typeNumber.toString(16).padStart(2, '0')}`);
  }
  const r = new PayloadReader(payload);
  let message: Message;
  switch (type) {
    case 'HELLO': {
      if (r.u32('magic') !== MAGIC) throw new ProtocolError('bad magic: not a ferry client');
      message = { type, id, version: r.u16('version'), clientName: r.string('client name'), flags: r.u32('flags') };
      break;
    }
    case 'AUTH':
      message = { type, id, token: r.string('token') };
      break;
    case 'LIST': {
      const prefix = r.string('prefix');
      const flags = r.u8('flags');
      message = flags & ListFlag.PAGE ? { type, id, prefix, flags, after: r.string('after'), limit: r.u16('limit') } : { type, id, prefix, flags };
      break;
    }
    case 'STAT':
      message = { type, id, name: r.string('name') };
      break;
    case 'PUT': {
      const name = r.string('name');
      const flags = r.u8('flags');
      const size = r.u64('size');
      if (flags & PutFlag.CHUNKED && size !== 0) throw new ProtocolError('chunked PUT must declare size 0');
      // MTIME carries a field from version 3 on; on older connections the bit is merely
      // unknown (refused by the session), so the field is read only when it is there.
      const mtimeMs = flags & PutFlag.MTIME && r.remaining >= 8 ? r.u64('mtime') : undefined;
      message = mtimeMs === undefined ? { type, id, name, flags, size } : { type, id, name, flags, size, mtimeMs };
      break;
    }
    case 'GET':
      message = { type, id, name: r.string('name'), offset: r.u64('offset') };
      break;
    case 'DELETE':
      message = { type, id, name: r.string('name'), flags: r.u8('flags') };
      break;
    case 'PUT_END':
      message = { type, id, digest: r.bytesOf(DIGEST_SIZE, 'digest') };
      break;
    case 'PROBE_UPLOAD':
      message = { type, id, name: r.string('name'), size: r.u64('size') };
      break;
    case 'HASH_PREFIX':
      message = { type, id, name: r.string('name'), length: r.u64('length') };
      break;
    case 'PARTIAL':
      message = { type, id, offset: r.u64('offset'), digest: r.bytesOf(DIGEST_SIZE, 'digest') };
      break;
    case 'PUT_BATCH': {
      const flags = r.u8('flags');
      const count = r.u16('file count');
      if (count > MAX_BATCH_FILES) throw new ProtocolError(`PUT_BATCH of ${count} files: at most ${MAX_BATCH_FILES}`);
      r.own(); // the files' digests and bytes are slices of one copy of the frame
      const files: BatchFile[] = [];
      for (let i = 0; i < count; i++) {
        const name = r.string('name');
        const size = r.u32('size');
        const mtimeMs = flags & BatchFlag.MTIME ? r.u64('mtime') : undefined;
        const digest = r.view(DIGEST_SIZE, 'digest');
        const data = r.view(size, 'file bytes');
        files.push(mtimeMs === undefined ? { name, digest, data } : { name, mtimeMs, digest, data });
      }
      message = { type, id, flags, files };
      break;
    }
    case 'BATCH_RESULTS': {
      const count = r.u16('result count');
      const results: BatchResult[] = [];
      for (let i = 0; i < count; i++) {
        const status = r.u8('status');
        if (status === BatchStatus.STORED) results.push({ status: 'stored', mtimeMs: r.u64('mtime') });
        else if (status === BatchStatus.STORED_AS) results.push({ status: 'stored', name: r.string('name'), mtimeMs: r.u64('mtime') });
        else if (status === BatchStatus.IDENTICAL) results.push({ status: 'identical', mtimeMs: r.u64('mtime') });
        else if (status === BatchStatus.REFUSED) results.push({ status: 'refused', code: r.u16('code'), message: r.string('message') });
        else throw new ProtocolError(`unknown batch result status ${status}`);
      }
      message = { type, id, results };
      break;
    }
    case 'GET_BATCH': {
      const count = r.u16('name count');
      if (count > MAX_GET_BATCH_NAMES) throw new ProtocolError(`GET_BATCH of ${count} names: at most ${MAX_GET_BATCH_NAMES}`);
      const names: string[] = [];
      for (let i = 0; i < count; i++) names.push(r.string('name'));
      message = { type, id, names };
      break;
    }
    case 'BATCH_FILES': {
      const more = r.u8('more flag');
      if (more > 1) throw new ProtocolError('BATCH_FILES more flag must be 0 or 1');
      const count = r.u16('item count');
      r.own(); // the files' digests and bytes are slices of one copy of the frame
      const items: BatchItem[] = [];
      for (let i = 0; i < count; i++) {
        const status = r.u8('status');
        if (status === GetBatchStatus.FILE) {
          const size = r.u32('size');
          if (size > MAX_GET_BATCH_FILE) throw new ProtocolError(`BATCH_FILES carries a file of ${size} bytes: at most ${MAX_GET_BATCH_FILE}`);
          const mtimeMs = r.u64('mtime');
          const digest = r.view(DIGEST_SIZE, 'digest');
          items.push({ status: 'file', mtimeMs, digest, data: r.view(size, 'file bytes') });
        } else if (status === GetBatchStatus.LARGE) {
          items.push({ status: 'large', size: r.u64('size') });
        } else if (status === GetBatchStatus.REFUSED) {
          items.push({ status: 'refused', code: r.u16('code'), message: r.string('message') });
        } else {
          throw new ProtocolError(`unknown batch item status ${status}`);
        }
      }
      message = { type, id, more: more === 1, items };
      break;
    }
    case 'OK':
      message = { type, id };
      break;
    case 'WORKING':
      if (id !== 0) throw new ProtocolError(`WORKING with request id ${id}: it is always 0`);
      message = { type, id };
      break;
    case 'SERVER_HELLO': {
      if (r.u32('magic') !== MAGIC) throw new ProtocolError('bad magic: not a ferry server');
      message = {
        type,
        id,
        version: r.u16('version'),
        serverName: r.string('server name'),
        maxFileSize: r.u64('max file size'),
        flags: r.u32('flags'),
      };
      break;
    }
    case 'ENTRIES': {
      const more = r.u8('more flag');
      if (more > 1) throw new ProtocolError('ENTRIES more flag must be 0 or 1');
      const count = r.u16('entry count');
      const entries: WireEntry[] = [];
      for (let i = 0; i < count; i++) entries.push(readEntry(r));
      message = { type, id, more: more === 1, entries };
      break;
    }
    case 'ENTRY':
    case 'PUT_OK':
      message = { type, id, entry: readEntry(r) };
      break;
    case 'GET_OK': {
      const size = r.u64('size');
      const offset = r.u64('offset');
      if (offset > size) throw new ProtocolError('GET_OK offset beyond size');
      message = { type, id, size, offset, mtimeMs: r.u64('mtime'), digest: r.bytesOf(DIGEST_SIZE, 'digest') };
      break;
    }
    case 'PUT_READY':
      message = { type, id, offset: r.u64('offset'), prefixDigest: r.bytesOf(DIGEST_SIZE, 'digest') };
      break;
    case 'ERROR':
      message = { type, id, code: r.u16('code'), message: r.string('message') };
      break;
  }
  r.end(type);
  return message;
}

/** The u32 length prefix of one chunk of a chunked body; a zero length ends the body. */
export function chunkHeader(length: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(length);
  return out;
}

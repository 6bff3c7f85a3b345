/** Wire constants. PROTOCOL.md is the normative description of every value here. */

/** "FRRY": the first four bytes of every HELLO payload. */
export const MAGIC = 0x46525259;
/** The version this implementation speaks; it also accepts clients of every older version. */
export const PROTOCOL_VERSION = 7;
export const MIN_PROTOCOL_VERSION = 1;

/** Frame header: u32 payload length, u8 type, u32 request id. */
export const HEADER_SIZE = 9;
/** No control frame payload may exceed this; checked before anything is allocated. */
export const MAX_CONTROL_PAYLOAD = 64 * 1024;
/** Largest chunk in a chunked body; chunk bytes are streamed, never buffered whole. */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** Every digest field: SHA-256 or BLAKE3, as the connection agreed (§11). */
export const DIGEST_SIZE = 32;
/** Largest value a u64 size field may carry and still be exact in a JS number. */
export const MAX_SAFE_SIZE = Number.MAX_SAFE_INTEGER;

export const MessageType = {
  // client → server
  HELLO: 0x01,
  AUTH: 0x02,
  LIST: 0x10,
  STAT: 0x11,
  PUT: 0x12,
  GET: 0x13,
  DELETE: 0x14,
  PROBE_UPLOAD: 0x15,
  PUT_END: 0x16,
  HASH_PREFIX: 0x17,
  PUT_BATCH: 0x18,
  GET_BATCH: 0x19,
  // server → client
  OK: 0x80,
  SERVER_HELLO: 0x81,
  /** Id 0, no payload: the server is still working on this connection's requests (HELLO flag WORKING). */
  WORKING: 0x82,
  ENTRIES: 0x90,
  ENTRY: 0x92,
  PUT_OK: 0x93,
  GET_OK: 0x94,
  PUT_READY: 0x95,
  PARTIAL: 0x96,
  BATCH_RESULTS: 0x97,
  BATCH_FILES: 0x98,
  ERROR: 0xff,
} as const;

export type MessageTypeName = keyof typeof MessageType;

/** PUT flags (u8). */
export const PutFlag = {
  OVERWRITE: 0x01,
  /** Body is sent as length-prefixed chunks ending with a zero-length chunk; size field is 0. */
  CHUNKED: 0x02,
  /** Client sends the body only after PUT_READY (lets the server refuse a large body first). */
  AWAIT_READY: 0x04,
  /** On a name clash, store as "name (1).ext" instead of failing with EXISTS. */
  RENAME: 0x08,
  /** (v2) Continue the server's partial of this name and size at PUT_READY.offset; needs AWAIT_READY. */
  RESUME: 0x10,
  /** (v3) The payload ends with a u64 mtime: the stored file's modification time (like scp -p). */
  MTIME: 0x20,
} as const;

/** PUT_BATCH flags (u8, v5): they apply to every file of the batch. */
export const BatchFlag = {
  /** Replace existing files. */
  OVERWRITE: 0x01,
  /** On a name clash, store as "name (1).ext", … (the result carries the name chosen). */
  RENAME: 0x02,
  /** Each file carries a u64 mtime: its stored modification time (put -p). */
  MTIME: 0x04,
  /** A file already stored with the same size and digest is left alone and reported IDENTICAL. */
  SKIP_IDENTICAL: 0x08,
} as const;

/** Most files one PUT_BATCH may carry (its payload is also under MAX_CONTROL_PAYLOAD). */
export const MAX_BATCH_FILES = 256;
/** Longest refusal message in BATCH_RESULTS, in bytes (a reply is never larger than its request). */
export const MAX_BATCH_MESSAGE = 32;

/** BATCH_RESULTS status of one file (u8, v5). */
export const BatchStatus = {
  STORED: 0,
  /** Stored under another name (RENAME): the result carries it. */
  STORED_AS: 1,
  IDENTICAL: 2,
  REFUSED: 3,
} as const;

/** Most names one GET_BATCH may carry (v6; its payload is also under MAX_CONTROL_PAYLOAD). */
export const MAX_GET_BATCH_NAMES = 256;
/**
 * Largest file a BATCH_FILES reply carries inline (v6): 60 KiB, so any such file with its
 * item header fits one frame. A larger one is answered LARGE and fetched with GET.
 */
export const MAX_GET_BATCH_FILE = 60 * 1024;

/** BATCH_FILES item status (u8, v6). */
export const GetBatchStatus = {
  /** The file's size, mtime, digest and bytes follow. */
  FILE: 0,
  /** Over MAX_GET_BATCH_FILE: its size follows; fetch it with GET. */
  LARGE: 1,
  /** Not served: code and message follow (as a GET of it would be refused). */
  REFUSED: 2,
} as const;

/** LIST and DELETE flags (u8); DELETE honours RECURSIVE from v2 on (removes a folder). */
export const ListFlag = {
  RECURSIVE: 0x01,
  /** (v7, LIST only) One page of a folder: `after` and `limit` follow the flags (§4.1). */
  PAGE: 0x02,
} as const;

/** Most entries one page of a paged LIST may ask for (v7). */
export const MAX_LIST_PAGE = 4096;

/** HELLO capability flags (u32); a server ignores bits it does not know. */
export const HelloFlag = {
  /** (v4) The client can verify with BLAKE3 and prefers it to SHA-256. */
  BLAKE3: 0x01,
  /** The client takes WORKING frames: sent while the server works long on its requests (§3.1). */
  WORKING: 0x02,
} as const;

/** SERVER_HELLO capability flags (u32). */
export const ServerFlag = {
  AUTH_REQUIRED: 0x01,
  /** (v4) Every digest on this connection is BLAKE3; clear: SHA-256. */
  BLAKE3: 0x02,
  /** The server will send WORKING frames (only when the client set HelloFlag.WORKING). */
  WORKING: 0x04,
} as const;

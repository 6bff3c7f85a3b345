import type { DigestAlgorithm } from '../io/digest.js';

/** The shapes the client library takes and returns (re-exported by client.ts and index.ts). */

/** A stored file as the client sees it. */
export interface Entry {
  name: string;
  kind: 'file' | 'folder';
  size: number;
  mtime: Date;
  /** Lowercase hex, in `algorithm`; empty for folders. */
  digest: string;
  /** The algorithm the connection agreed (PROTOCOL.md §11). */
  algorithm: DigestAlgorithm;
}

export interface Progress {
  /** Bytes moved so far in this transfer. */
  bytes: number;
  /** Total bytes, when known. */
  total: number | undefined;
}

export interface PutOptions {
  overwrite?: boolean;
  /** Continue an interrupted upload of this file if the server kept one (default true). */
  resume?: boolean;
  /** On a clash the server stores "name (1).ext" instead of refusing with EXISTS. */
  rename?: boolean;
  /** Size of a stream source, if known (otherwise the body is sent chunked). */
  size?: number;
  /** Modification time the stored file gets (ms since the epoch), like `scp -p`; needs a protocol-3 server. */
  mtimeMs?: number;
  onProgress?: (progress: Progress) => void;
  /** Called once when a transfer continues an interrupted one, with the byte it resumes at. */
  onResume?: (offset: number) => void;
}

export interface GetOptions {
  onProgress?: (progress: Progress) => void;
  /** Called once when a transfer continues an interrupted one, with the byte it resumes at. */
  onResume?: (offset: number) => void;
  /** Continue `<path>.ferry-part` left by an interrupted download, after checking it (default true). */
  resume?: boolean;
}

export interface TransferResult {
  /** The name the file is stored under (a put with `rename` may differ from the one asked). */
  name: string;
  size: number;
  /** Lowercase hex digest of the whole file, in `algorithm`, checked on both ends. */
  digest: string;
  algorithm: DigestAlgorithm;
  mtime: Date;
  /** Bytes that were already in place from an interrupted transfer (0 for a fresh one). */
  resumedFrom: number;
}

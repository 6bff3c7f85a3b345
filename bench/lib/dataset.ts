// The data behind RESULTS.md, kept beside it as RESULTS.json, so a run of some workloads
// (`--only big`) replaces just those and the file still shows every other workload, each
// labelled with the run it comes from. Rows are stored without their samples (medians, ranges,
// CPU medians and run counts are enough to render them).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Machine } from './report.js';
import type { WorkloadResult } from '../workloads/common.js';
import type { ColdResult } from '../workloads/coldstart.js';

export interface RunInfo {
  /** ISO time the run started: its id. */
  started: string;
  finished: string;
  args: string[];
  mode: 'full' | 'quick';
  machine: Machine;
  versions: Array<[string, string]>;
  ferryVersion: string;
  ferryClientArgs: string[];
  ferryServerArgs: string[];
  notes: string[];
  reps: Record<string, number>;
  /** Titles of the workloads this run measured. */
  measured: string[];
}

export interface Dataset {
  format: 1;
  runs: RunInfo[];
  workloads: Array<WorkloadResult & { run: string }>;
  cold?: ColdResult & { run: string };
}

/** Sections in this order; workloads not listed (none today) go last. */
const ORDER = ['big', 'tree-t10000x1k', 'tree-t1000x4k', 'tree-t200x1k', 'tree-t100000x1k', 'tree-t2000x1k', 'concurrent', 'durable'];
const rank = (id: string): number => {
  const i = ORDER.indexOf(id);
  return i < 0 ? ORDER.length : i;
};

export function loadDataset(file: string): Dataset | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const ds = JSON.parse(readFileSync(file, 'utf8')) as Dataset;
    return ds.format === 1 && Array.isArray(ds.runs) && Array.isArray(ds.workloads) ? ds : undefined;
  } catch {
    return undefined;
  }
}

/** `old` with every workload (and the cold start) that `run` measured replaced by the new one. */
export function mergeDataset(old: Dataset | undefined, run: RunInfo, workloads: WorkloadResult[], cold: ColdResult | undefined): Dataset {
  const fresh = workloads.map((w) => ({ ...w, run: run.started, rows: w.rows.map((r) => ({ ...r, samples: [] })) }));
  const ids = new Set(fresh.map((w) => w.id));
  const kept = (old?.workloads ?? []).filter((w) => !ids.has(w.id));
  const all = [...kept, ...fresh].sort((a, b) => rank(a.id) - rank(b.id));
  const coldNow = cold ? { ...cold, run: run.started } : old?.cold;
  const used = new Set([...all.map((w) => w.run), ...(coldNow ? [coldNow.run] : [])]);
  const runs = [...(old?.runs ?? []).filter((r) => r.started !== run.started), run].filter((r) => used.has(r.started));
  return { format: 1, runs, workloads: all, ...(coldNow ? { cold: coldNow } : {}) };
}

export function saveDataset(file: string, ds: Dataset): void {
  writeFileSync(file, `${JSON.stringify(ds, null, 1)}\n`);
}

/**
 * Sections of an existing RESULTS.md to keep below the rendered ones: sections other tools
 * write (`## Server memory under hostile load`, bench:memory) always; and, unless `fresh`,
 * sections of a RESULTS.md written before RESULTS.json existed whose workload this dataset
 * still lacks (labelled with that file's date once, then kept as they are).
 */
export function keptSections(oldMd: string, ds: Dataset, fresh: boolean): string[] {
  const parts = oldMd.split(/\n(?=## )/).slice(1);
  const have = new Set([...ds.workloads.map((w) => w.id), ...(ds.cold ? ['coldstart'] : [])]);
  const date = /^- Date: (.+? UTC)/m.exec(oldMd)?.[1] ?? 'unknown date';
  const out: string[] = [];
  for (const part of parts) {
    const heading = part.split('\n')[0] ?? '';
    if (/^## (Server memory under hostile load|S3 backend|Many small files)/.test(heading)) {
      out.push(part.trimEnd());
      continue;
    }
    const id = legacyId(heading);
    if (fresh || !id || have.has(id)) continue;
    const label = 'written before RESULTS.json existed';
    out.push((part.includes(label) ? part : part.replace(/^(## .*)\n/, `$1\n\nKept from the run of ${date} (${label}).\n`)).trimEnd());
  }
  return out;
}

/** The workload a section of a RESULTS.md written before RESULTS.json existed belongs to. */
function legacyId(heading: string): string | undefined {
  if (/^## 1\. /.test(heading) || /^## ferry vs nc/.test(heading)) return 'big';
  if (/^## 2[a-z]\. 10,000 × 1 KiB/.test(heading)) return 'tree-t10000x1k';
  if (/^## 2[a-z]\. 1,000 × 4 KiB/.test(heading)) return 'tree-t1000x4k';
  if (/^## 3\. /.test(heading)) return 'concurrent';
  if (/^## 4\. /.test(heading)) return 'durable';
  if (/^## CLI start-up/.test(heading)) return 'coldstart';
  return undefined;
}

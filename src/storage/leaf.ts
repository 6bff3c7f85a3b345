import { lstatSync, type Stats } from 'node:fs';
import { FerryError } from '../errors.js';
import { nameProblem } from '../protocol/names.js';
import type { Folder } from './safe-path.js';

/**
 * The leaf to store `name` under in `folder` — the name's own, or "name (n).ext" with
 * `rename` — and what is there now; EXISTS when it is taken and neither `overwrite` nor
 * `rename` allows that. Called under the name's lock, right before the rename.
 */
export function pickLeaf(
  folder: Folder,
  leaf: string,
  name: string,
  options: { overwrite?: boolean; rename?: boolean },
  /** Leaves already picked for files not yet renamed into place (a batch's earlier files), with their stats. */
  picked?: ReadonlyMap<string, Stats>,
): { leaf: string; existing: Stats | undefined } {
  const at = (candidate: string): Stats | undefined => picked?.get(candidate) ?? lstatSync(folder.entry(candidate), { throwIfNoEntry: false });
  const existing = at(leaf);
  if (options.overwrite || existing === undefined) return { leaf, existing };
  if (!options.rename) throw new FerryError('EXISTS', `"${name}" already exists`);
  const dot = leaf.lastIndexOf('.');
  const stem = dot > 0 ? leaf.slice(0, dot) : leaf;
  const ext = dot > 0 ? leaf.slice(dot) : '';
  const prefix = name.slice(0, name.length - leaf.length);
  for (let n = 1; n < 10_000; n++) {
    const candidate = `${stem} (${n})${ext}`;
    if (nameProblem(prefix + candidate) === undefined && at(candidate) === undefined) return { leaf: candidate, existing: undefined };
  }
  throw new FerryError('EXISTS', `no free name like "${name}"`);
}

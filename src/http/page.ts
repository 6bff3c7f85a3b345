import type { StoredEntry } from '../storage/store.js';
import { humanSize } from './size-text.js';
import { pathOf } from './target.js';

/**
 * The web page: a listing rendered on the server (readable and usable without script), which
 * the page's script (dist/web/app.js, bundled by scripts/build.mjs) turns into the full
 * tool — sorting, digests on demand, uploads with progress and verification, changes.
 * Every stored name is escaped; nothing is inline, so the page's policy allows no inline script.
 */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function pageStart(folder: string, tokens: boolean): string {
  const title = folder === '' ? '/' : `/${folder}/`;
  const crumbs = [`<li><a href="/"${folder === '' ? ' aria-current="page"' : ''}>ferry</a></li>`];
  const parts = folder === '' ? [] : folder.split('/');
  parts.forEach((part, i) => {
    const current = i === parts.length - 1 ? ' aria-current="page"' : '';
    crumbs.push(`<li><a href="${escapeHtml(pathOf(parts.slice(0, i + 1).join('/'), true))}"${current}>${escapeHtml(part)}</a></li>`);
  });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ferry ${escapeHtml(title)}</title>
<link rel="stylesheet" href="/.ferry/web/app.css">
<script type="module" src="/.ferry/web/app.js"></script>
</head>
<body data-folder="${escapeHtml(folder)}" data-tokens="${tokens ? 'required' : 'none'}">
<header>
<nav aria-label="Breadcrumbs"><ol class="crumbs">${crumbs.join('')}</ol></nav>
<div id="account" class="account"></div>
</header>
<main>
<section id="upload" class="upload" aria-labelledby="upload-title">
<h2 id="upload-title" class="visually-hidden">Upload</h2>
<div id="drop" class="drop" tabindex="-1">
<p>Drop files or folders here, or</p>
<p class="pickers">
<label class="button" for="pick-files">Choose files</label><input id="pick-files" type="file" multiple>
<label class="button" for="pick-folder">Choose a folder</label><input id="pick-folder" type="file" webkitdirectory multiple>
<button type="button" id="new-folder" class="button">New folder</button>
</p>
<p><label><input type="checkbox" id="replace"> Replace files that already exist</label></p>
</div>
<ul id="transfers" class="transfers" aria-live="polite"></ul>
</section>
<table id="listing" class="listing">
<caption class="visually-hidden">Files in ${escapeHtml(title)}</caption>
<thead><tr>
<th scope="col" aria-sort="ascending"><button type="button" data-sort="name">Name</button></th>
<th scope="col" class="num"><button type="button" data-sort="size">Size</button></th>
<th scope="col"><button type="button" data-sort="mtime">Modified</button></th>
<th scope="col">Digest</th>
</tr></thead>
<tbody>
${folder === '' ? '' : `<tr class="up" data-kind="up"><td colspan="4"><a href="${escapeHtml(pathOf(parts.slice(0, -1).join('/'), true))}">↑ Parent folder</a></td></tr>\n`}`;
}

export function pageRow(entry: StoredEntry, leaf: string, digest: string): string {
  const folder = entry.kind === 'folder';
  const href = escapeHtml(pathOf(entry.name, folder));
  const name = escapeHtml(leaf);
  if (folder) {
    return `<tr data-kind="folder" data-name="${name}" data-size="-1" data-mtime="0"><td><a class="folder" href="${href}">${name}/</a></td><td class="num">—</td><td></td><td></td></tr>\n`;
  }
  const iso = new Date(entry.mtimeMs).toISOString();
  return (
    `<tr data-kind="file" data-name="${name}" data-size="${entry.size}" data-mtime="${entry.mtimeMs}" data-digest="${escapeHtml(digest)}">` +
    `<td><a class="file" href="${href}">${name}</a></td>` +
    `<td class="num">${humanSize(entry.size)}</td>` +
    `<td><time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time></td>` +
    `<td><button type="button" class="show-digest" aria-label="Show the digest of ${name}">Show</button></td></tr>\n`
  );
}

export function pageEnd(folder: string): string {
  return `</tbody>
</table>
<p class="folder-actions"><a class="button" href="${escapeHtml(pathOf(folder, true))}?download=tar" download>Download ${folder === '' ? 'everything' : 'this folder'} (.tar)</a></p>
</main>
<footer><p>ferry: every upload is checked against its SHA-256 before it is stored.</p></footer>
</body>
</html>
`;
}

/* global document, window, location, prompt */
// The web page's script (bundled with tus-js-client by scripts/build.mjs into dist/web/app.js).
// The server renders the listing; this adds sorting, local dates, digests on demand, uploads
// (verified, resumable) and new folders. Everything is reachable with the keyboard.
import { Upload } from 'tus-js-client';
import { humanSize } from '../size-text.ts';
import { Sha256, toBase64, toHex } from './sha256.js';

const body = document.body;
const folder = body.dataset.folder ?? '';
const tokensRequired = body.dataset.tokens === 'required';
/** Files up to this size are hashed by the browser's own SHA-256 in one go; larger ones in slices. */
const WHOLE_HASH_LIMIT = 256 * 1024 * 1024;
const HASH_SLICE = 4 * 1024 * 1024;
/** tus PATCH size: a proxy's per-request limit is rarely below this, and each one is a resume point. */
const CHUNK = 16 * 1024 * 1024;

const pathOf = (name, isFolder = false) => '/' + name.split('/').map(encodeURIComponent).join('/') + (isFolder ? '/' : '');
const join = (a, b) => (a === '' ? b : `${a}/${b}`);

// ---- token (only when the server asks for one) --------------------------------------------
function token() {
  return localStorage.getItem('ferry-token') ?? '';
}
function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}
function setupAccount() {
  const box = document.getElementById('account');
  if (!box || !tokensRequired) return;
  const label = document.createElement('label');
  label.textContent = 'Token ';
  const input = document.createElement('input');
  input.type = 'password';
  input.autocomplete = 'current-password';
  input.value = token();
  input.id = 'token';
  label.append(input);
  const save = document.createElement('button');
  save.type = 'button';
  save.textContent = 'Use token';
  save.addEventListener('click', () => {
    localStorage.setItem('ferry-token', input.value.trim());
    // Reads (links, downloads) carry it as a cookie; changes only ever in the header.
    document.cookie = `ferry-token=${encodeURIComponent(input.value.trim())}; path=/; SameSite=Strict${location.protocol === 'https:' ? '; Secure' : ''}`;
    location.reload();
  });
  box.append(label, save);
}

// ---- listing: dates, sizes, sorting, digests -----------------------------------------------

function localDates(root) {
  for (const time of root.querySelectorAll('time[datetime]')) {
    const date = new Date(time.getAttribute('datetime'));
    time.textContent = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    time.title = date.toISOString();
  }
}

let sortKey = 'name';
let sortAscending = true;

function sortRows() {
  const tbody = document.querySelector('#listing tbody');
  if (!tbody) return;
  const rows = [...tbody.querySelectorAll('tr')];
  const up = rows.filter((r) => r.dataset.kind === 'up');
  const others = rows.filter((r) => r.dataset.kind !== 'up');
  const value = (r) => (sortKey === 'name' ? r.dataset.name ?? '' : Number(r.dataset[sortKey] ?? 0));
  others.sort((a, b) => {
    if (a.dataset.kind !== b.dataset.kind) return a.dataset.kind === 'folder' ? -1 : 1;
    const x = value(a);
    const y = value(b);
    const order = typeof x === 'string' ? x.localeCompare(y, undefined, { numeric: true }) : x - y;
    return sortAscending ? order : -order;
  });
  tbody.replaceChildren(...up, ...others);
  for (const th of document.querySelectorAll('#listing th')) {
    const button = th.querySelector('button[data-sort]');
    if (!button) continue;
    if (button.dataset.sort === sortKey) th.setAttribute('aria-sort', sortAscending ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

function setupListing() {
  for (const button of document.querySelectorAll('#listing button[data-sort]')) {
    button.addEventListener('click', () => {
      if (sortKey === button.dataset.sort) sortAscending = !sortAscending;
      else {
        sortKey = button.dataset.sort;
        sortAscending = sortKey === 'name';
      }
      sortRows();
    });
  }
  document.querySelector('#listing tbody')?.addEventListener('click', (event) => {
    const button = event.target.closest('button.show-digest');
    if (!button) return;
    const row = button.closest('tr');
    const code = document.createElement('code');
    code.className = 'digest';
    code.textContent = row.dataset.digest ?? '';
    button.replaceWith(code);
  });
  localDates(document);
}

/** Re-reads the folder (JSON) and redraws the rows, keeping the sort. */
async function refresh() {
  const res = await fetch(pathOf(folder, true).replace(/\/\/$/, '/'), { headers: { Accept: 'application/json', ...authHeaders() } });
  if (!res.ok) return;
  const entries = await res.json();
  const tbody = document.querySelector('#listing tbody');
  const up = tbody.querySelector('tr[data-kind="up"]');
  const rows = entries.map((e) => {
    const tr = document.createElement('tr');
    tr.dataset.kind = e.kind;
    tr.dataset.name = e.name;
    tr.dataset.size = String(e.size ?? -1);
    tr.dataset.mtime = String(e.mtime ? Date.parse(e.mtime) : 0);
    const cells = [0, 1, 2, 3].map(() => document.createElement('td'));
    const link = document.createElement('a');
    link.href = pathOf(e.path, e.kind === 'folder');
    link.textContent = e.kind === 'folder' ? `${e.name}/` : e.name;
    link.className = e.kind;
    cells[0].append(link);
    cells[1].className = 'num';
    cells[1].textContent = e.kind === 'folder' ? '—' : humanSize(e.size);
    if (e.kind === 'file') {
      tr.dataset.digest = e.digest;
      const time = document.createElement('time');
      time.setAttribute('datetime', e.mtime);
      cells[2].append(time);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'show-digest';
      button.textContent = 'Show';
      button.setAttribute('aria-label', `Show the digest of ${e.name}`);
      cells[3].append(button);
    }
    tr.append(...cells);
    return tr;
  });
  tbody.replaceChildren(...(up ? [up] : []), ...rows);
  localDates(tbody);
  sortRows();
}

// ---- uploads ---------------------------------------------------------------------------------
async function sha256Of(file, onProgress) {
  if (file.size <= WHOLE_HASH_LIMIT && window.crypto?.subtle) {
    const digest = new Uint8Array(await window.crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
    onProgress(file.size);
    return digest;
  }
  const hash = new Sha256();
  for (let at = 0; at < file.size; at += HASH_SLICE) {
    hash.update(new Uint8Array(await file.slice(at, at + HASH_SLICE).arrayBuffer()));
    onProgress(Math.min(file.size, at + HASH_SLICE));
  }
  return hash.digest();
}

function transferRow(name) {
  const li = document.createElement('li');
  li.className = 'transfer';
  const label = document.createElement('span');
  label.className = 'transfer-name';
  label.textContent = name;
  const bar = document.createElement('progress');
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute('aria-label', `Progress of ${name}`);
  const status = document.createElement('span');
  status.className = 'transfer-status';
  status.setAttribute('role', 'status');
  status.textContent = 'waiting';
  li.append(label, bar, status);
  document.getElementById('transfers').append(li);
  return {
    progress(fraction, text) {
      bar.value = fraction;
      status.textContent = text;
    },
    done(text) {
      bar.value = 1;
      li.classList.add('ok');
      status.textContent = text;
    },
    fail(text) {
      li.classList.add('failed');
      status.textContent = text;
    },
  };
}

async function uploadOne(file, name, row) {
  const replace = document.getElementById('replace')?.checked === true;
  row.progress(0, 'computing SHA-256…');
  const digest = await sha256Of(file, (n) => row.progress(file.size ? (n / file.size) * 0.1 : 0.1, 'computing SHA-256…'));
  const hex = toHex(digest);
  await new Promise((resolve, reject) => {
    const upload = new Upload(file, {
      endpoint: '/.ferry/tus/',
      chunkSize: CHUNK,
      retryDelays: [0, 500, 1000, 3000, 5000, 10000],
      headers: authHeaders(),
      metadata: { name, sha256: hex, ...(replace ? { overwrite: '1' } : {}) },
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => row.progress(0.1 + (total ? (sent / total) * 0.9 : 0.9), `${humanSize(sent)} of ${humanSize(total)}`),
      onSuccess: resolve,
      onError: (error) => reject(error),
    });
    // A page reloaded mid-upload continues where the server stopped.
    upload.findPreviousUploads().then((previous) => {
      if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    }, reject);
  });
  // Verified end to end: the server checked our SHA-256 before storing; ask what it stored.
  const head = await fetch(pathOf(name), { method: 'HEAD', headers: authHeaders() });
  const stored = head.headers.get('repr-digest') ?? '';
  if (stored !== `sha-256=:${toBase64(digest)}:`) throw new Error(`the stored file's digest (${stored || 'none'}) differs from the file's`);
  row.done(`verified ✓ sha256 ${hex.slice(0, 12)}…`);
}

function explain(error) {
  const response = error?.originalResponse;
  if (response) {
    const text = (response.getBody?.() ?? '').trim();
    const code = response.getHeader?.('Ferry-Error');
    return `failed: ${text || `HTTP ${response.getStatus()}`}${code ? ` (${code})` : ''}`;
  }
  return `failed: ${error?.message ?? error}`;
}

let queue = Promise.resolve();

/** Uploads [{file, path}] one after another (each with its own row), then redraws the listing. */
function uploadAll(items) {
  const rows = items.map((item) => ({ ...item, row: transferRow(item.path) }));
  queue = queue.then(async () => {
    for (const { file, path, row } of rows) {
      try {
        await uploadOne(file, join(folder, path.normalize('NFC')), row);
      } catch (error) {
        row.fail(explain(error));
      }
    }
    await refresh();
  });
}

/** Every file under a dropped folder entry, with its path relative to the drop. */
async function filesOfEntry(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: prefix + entry.name });
    return;
  }
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await filesOfEntry(child, `${prefix}${entry.name}/`, out);
  }
}

function setupUploads() {
  const drop = document.getElementById('drop');
  const files = document.getElementById('pick-files');
  const folderPicker = document.getElementById('pick-folder');
  files?.addEventListener('change', () => {
    uploadAll([...files.files].map((file) => ({ file, path: file.name })));
    files.value = '';
  });
  folderPicker?.addEventListener('change', () => {
    uploadAll([...folderPicker.files].map((file) => ({ file, path: file.webkitRelativePath || file.name })));
    folderPicker.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    document.addEventListener(type, (event) => {
      event.preventDefault();
      drop?.classList.add('active');
    });
  }
  document.addEventListener('dragleave', (event) => {
    if (event.relatedTarget === null) drop?.classList.remove('active');
  });
  document.addEventListener('drop', async (event) => {
    event.preventDefault();
    drop?.classList.remove('active');
    const items = [...(event.dataTransfer?.items ?? [])];
    const entries = items.map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
    const out = [];
    if (entries.length > 0) for (const entry of entries) await filesOfEntry(entry, '', out);
    else for (const file of event.dataTransfer?.files ?? []) out.push({ file, path: file.name });
    uploadAll(out);
  });
  document.getElementById('new-folder')?.addEventListener('click', async () => {
    const name = prompt('Name of the new folder');
    if (!name) return;
    const res = await fetch(pathOf(join(folder, name.normalize('NFC'))), { method: 'MKCOL', headers: authHeaders() });
    if (!res.ok) {
      transferRow(name).fail(`failed: ${(await res.text()).trim()}`);
      return;
    }
    await refresh();
  });
}

setupAccount();
setupListing();
setupUploads();
window.ferryPage = { refresh, sha256: (bytes) => toHex(new Sha256().update(bytes).digest()) };

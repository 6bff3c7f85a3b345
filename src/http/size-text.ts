/**
 * 1.5 KB, 12 MB … (powers of 1000, as file managers show them). Shared by the server-rendered
 * listing and the page's script (esbuild bundles this file into dist/web/app.js).
 */
export function humanSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

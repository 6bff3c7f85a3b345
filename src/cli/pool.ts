/**
 * Runs `work` over `items` with at most `limit` at once, in order of start. Failures do not stop
 * the others; each item's outcome is returned in input order.
 */
export async function runPool<T, R>(items: T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  async function lane(): Promise<void> {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = { status: 'fulfilled', value: await work(items[index]!, index) };
      } catch (reason) {
        results[index] = { status: 'rejected', reason };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return results;
}

/** Splits items into `count` groups of roughly equal total weight (largest first). */
export function balance<T>(items: T[], count: number, weight: (item: T) => number): T[][] {
  const groups = Array.from({ length: Math.max(1, count) }, () => ({ items: [] as T[], total: 0 }));
  const sorted = [...items].sort((a, b) => weight(b) - weight(a));
  for (const item of sorted) {
    const lightest = groups.reduce((min, g) => (g.total < min.total ? g : min));
    lightest.items.push(item);
    lightest.total += weight(item) + 1;
  }
  return groups.map((g) => g.items).filter((g) => g.length > 0);
}

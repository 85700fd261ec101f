/** What the CLI prints for people: counts with thousands separators, and tables in aligned columns. */

const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** A count or rate as a whole number with thousands separators: `157,859`. */
export function count(n: number): string {
  return Number.isFinite(n) ? COUNT.format(n) : String(n);
}

/** Bytes in MB with one decimal. */
export function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

/**
 * Rows in columns two spaces apart, the first row a header. Columns listed
 * in `right` are right-aligned (numbers); the last column is not padded.
 */
export function table(rows: readonly (readonly string[])[], right: readonly number[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]!) : i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

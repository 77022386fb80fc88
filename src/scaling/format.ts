// Number formatting shared by the terminal table and the figure's annotations.

const BIG: ReadonlyArray<[number, string]> = [
  [1e12, 'trillion'],
  [1e9, 'billion'],
  [1e6, 'million'],
];

/** Two significant digits, never in exponent form: 4.3, 17, 140. */
function twoDigits(v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(2)));
}

/** A count of years for people: "8.5 years", "29,188 years", "4.3 million years", "10^21 years". */
export function formatYears(years: number | null): string {
  if (years === null || !Number.isFinite(years)) return 'never';
  if (years >= 1e15) return `10^${Math.log10(years).toFixed(1)} years`;
  for (const [v, name] of BIG) if (years >= v) return `${twoDigits(years / v)} ${name} years`;
  if (years >= 100) return `${Math.round(years).toLocaleString('en-US')} years`;
  if (years >= 1) return `${twoDigits(years)} years`;
  const days = years * 365.25;
  return days >= 1 ? `${twoDigits(days)} days` : `${twoDigits(days * 24)} hours`;
}

/** Hours in scientific form for tables: "3.8e10". */
export function formatHours(hours: number | null): string {
  if (hours === null || !Number.isFinite(hours)) return 'never';
  if (hours < 1e4) return hours.toPrecision(3);
  return hours.toExponential(1).replace('e+', 'e');
}

export function fixed(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

const SUP = '⁰¹²³⁴⁵⁶⁷⁸⁹';
/** 10 to an integer power with superscript digits: 10⁴, 10⁻². */
export function powerOfTen(exp: number): string {
  const s = String(Math.round(exp));
  return '10' + [...s].map((ch) => (ch === '-' ? '⁻' : SUP[Number(ch)])).join('');
}

/** A plain-text table with aligned columns (numbers right-aligned). */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+−]?[\d.,e—]+%?$|^—$|^never$/.test(r[i] ?? '')));
  const line = (cells: readonly string[], head: boolean): string =>
    cells.map((c, i) => (numeric[i] && !head ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header, true), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map((r) => line(r, false))].join('\n');
}

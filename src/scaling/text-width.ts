// Text widths for laying out figures. Vega, headless (no canvas), estimates every string as
// 0.8 x font size per character, about 40% wider than DejaVu Sans (the font the figures name and
// resvg draws them with): a long title made the SVG far wider than what was drawn (a figure with an
// empty right half). These are DejaVu Sans's own advance widths (regular and bold, in em, from the
// fonts' hmtx tables) for the characters the figures use; any other character counts 0.6 em.

/** The characters measured, in the order of the width tables. */
const CHARS = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~×²³¹⁰⁴⁵⁶⁷⁸⁹⁻–—±…·°≈≤≥µ−’‘“”é";

const REGULAR = [
  0.3179, 0.4009, 0.46, 0.8379, 0.6362, 0.9502, 0.7798, 0.2749, 0.3901, 0.3901, 0.5, 0.8379, 0.3179, 0.3608,
  0.3179, 0.3369, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.6362, 0.3369,
  0.3369, 0.8379, 0.8379, 0.8379, 0.5308, 1, 0.6841, 0.686, 0.6982, 0.77, 0.6318, 0.5752, 0.7749, 0.752,
  0.2949, 0.2949, 0.6558, 0.5571, 0.8628, 0.748, 0.7871, 0.603, 0.7871, 0.6948, 0.6348, 0.6108, 0.7319, 0.6841,
  0.9888, 0.6851, 0.6108, 0.6851, 0.3901, 0.3369, 0.3901, 0.8379, 0.5, 0.5, 0.6128, 0.6348, 0.5498, 0.6348,
  0.6152, 0.3521, 0.6348, 0.6338, 0.2778, 0.2778, 0.5791, 0.2778, 0.9741, 0.6338, 0.6118, 0.6348, 0.6348,
  0.4111, 0.521, 0.3921, 0.6338, 0.5918, 0.8179, 0.5918, 0.5918, 0.5249, 0.6362, 0.3369, 0.6362, 0.8379,
  0.8379, 0.4009, 0.4009, 0.4009, 0.4009, 0.4009, 0.4009, 0.4009, 0.4009, 0.4009, 0.4009, 0.5278, 0.5, 1,
  0.8379, 1, 0.3179, 0.5, 0.8379, 0.8379, 0.8379, 0.6362, 0.8379, 0.3179, 0.3179, 0.5181, 0.5181, 0.6152,
];

const BOLD = [
  0.3481, 0.4561, 0.521, 0.8379, 0.6958, 1.002, 0.8721, 0.3062, 0.457, 0.457, 0.5229, 0.8379, 0.3799, 0.415,
  0.3799, 0.3652, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.6958, 0.3999,
  0.3999, 0.8379, 0.8379, 0.8379, 0.5801, 1, 0.7739, 0.7622, 0.7339, 0.8301, 0.6831, 0.6831, 0.8208, 0.8369,
  0.3721, 0.3721, 0.7749, 0.6372, 0.9951, 0.8369, 0.8501, 0.7329, 0.8501, 0.77, 0.7202, 0.6821, 0.812, 0.7739,
  1.103, 0.771, 0.7241, 0.7251, 0.457, 0.3652, 0.457, 0.8379, 0.5, 0.5, 0.6748, 0.7158, 0.5928, 0.7158, 0.6782,
  0.4351, 0.7158, 0.7119, 0.3428, 0.3428, 0.665, 0.3428, 1.042, 0.7119, 0.687, 0.7158, 0.7158, 0.4932, 0.5952,
  0.478, 0.7119, 0.6519, 0.9238, 0.645, 0.6519, 0.582, 0.7119, 0.3652, 0.7119, 0.8379, 0.8379, 0.438, 0.438,
  0.438, 0.438, 0.438, 0.438, 0.438, 0.438, 0.438, 0.438, 0.5278, 0.5, 1, 0.8379, 1, 0.3799, 0.5, 0.8379,
  0.8379, 0.8379, 0.7358, 0.8379, 0.3799, 0.3799, 0.6572, 0.6572, 0.6782,
];

const INDEX = new Map<string, number>([...CHARS].map((c, i) => [c, i]));
const OTHER_EM = 0.6;

function isBold(weight: unknown): boolean {
  if (typeof weight === 'number') return weight >= 600;
  return typeof weight === 'string' && (weight === 'bold' || weight === 'bolder' || Number(weight) >= 600);
}

/** Width in px of `text` in DejaVu Sans at `fontSize` px (kerning ignored). */
export function dejaVuWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? BOLD : REGULAR;
  let em = 0;
  for (const ch of text) {
    const i = INDEX.get(ch);
    em += i === undefined ? OTHER_EM : table[i]!;
  }
  return em * fontSize;
}

/** A text mark as Vega passes it to textMetrics.width. */
export interface VegaTextItem {
  fontSize?: number | string;
  fontWeight?: number | string;
  limit?: number;
}

/** Vega's textMetrics.width: the width of one line of `item`'s text (at most its limit, as Vega truncates to it). */
export function vegaTextWidth(item: VegaTextItem, text: unknown): number {
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  const line = text == null ? '' : String(text).trim();
  if (size <= 0 || line === '') return 0;
  const w = dejaVuWidth(line, size, isBold(item.fontWeight));
  return item.limit !== undefined && item.limit > 0 ? Math.min(w, item.limit) : w;
}

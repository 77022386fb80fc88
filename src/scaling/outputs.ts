// Writing the Figure 1 outputs: figure1.json (every number), figure1.svg and figure1.png.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDataAtomic } from '../io/atomic.js';
import type { Figure1Analysis } from './analysis.js';
import type { PlotOptions } from './plot.js';

export interface Figure1Outputs {
  json: string;
  svg: string;
  png: string;
  /** PNG size in px */
  pngWidth: number;
  pngHeight: number;
}

/** Renders and writes the three files into `outDir` (created if needed). */
export async function writeFigure1(
  analysis: Figure1Analysis,
  outDir: string,
  options: PlotOptions & { scale?: number } = {},
): Promise<Figure1Outputs> {
  await mkdir(outDir, { recursive: true });
  const scale = options.scale ?? 2;
  // vega, vega-lite and resvg load only when a figure is drawn
  const { renderSvg, svgToPng } = await import('./plot.js');
  const fig = await renderSvg(analysis, options);
  const png = svgToPng(fig.svg, fig.width, scale);
  const out: Figure1Outputs = {
    json: join(outDir, 'figure1.json'),
    svg: join(outDir, 'figure1.svg'),
    png: join(outDir, 'figure1.png'),
    pngWidth: Math.round(fig.width * scale),
    pngHeight: png.readUInt32BE(20),
  };
  await writeDataAtomic(out.json, JSON.stringify({ ...analysis, figure: { svg: 'figure1.svg', png: 'figure1.png', vegaLite: fig.spec } }, null, 2) + '\n');
  await writeDataAtomic(out.svg, fig.svg);
  await writeDataAtomic(out.png, png);
  return out;
}

// Test helper: open an HTML file from disk in Debian's headless Chromium (through playwright-core,
// which drives the system browser; nothing is downloaded) and read back what rendered.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function hasChromium(): boolean {
  return existsSync(CHROMIUM);
}

export interface RenderedImage { id: string; naturalWidth: number; naturalHeight: number; expectedWidth: number; expectedHeight: number; complete: boolean }

export interface PageReport {
  title: string;
  images: RenderedImage[];
  /** text of every cell, per table id */
  tables: Record<string, string[][]>;
  /** requests the page made to anything but its own file or data: URIs */
  externalRequests: string[];
  consoleErrors: string[];
}

/** Loads `file` in a fresh headless Chromium profile; optionally writes a full-page screenshot. */
export async function inspectPage(file: string, o: { screenshot?: string; width?: number } = {}): Promise<PageReport> {
  const profile = mkdtempSync(join(tmpdir(), 'awty-chromium-'));
  // a fresh profile folder (playwright passes it to Chromium as --user-data-dir)
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: o.width ?? 1200, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const url = pathToFileURL(file).href;
    const externalRequests: string[] = [];
    const consoleErrors: string[] = [];
    page.on('request', (r) => { const u = r.url(); if (u !== url && !u.startsWith('data:')) externalRequests.push(u); });
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    await page.goto(url, { waitUntil: 'load' });
    // evaluated in the page (a string, so that this file needs no DOM types)
    const got = await page.evaluate(`(() => {
      const images = [...document.querySelectorAll('img')].map((i) => ({
        id: i.id, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight, complete: i.complete,
        expectedWidth: Number(i.dataset.width), expectedHeight: Number(i.dataset.height),
      }));
      const tables = {};
      for (const t of document.querySelectorAll('table')) {
        tables[t.id] = [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent || ''));
      }
      return { title: document.title, images, tables };
    })()`) as Pick<PageReport, 'title' | 'images' | 'tables'>;
    if (o.screenshot) await page.screenshot({ path: o.screenshot, fullPage: true });
    return { ...got, externalRequests, consoleErrors };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

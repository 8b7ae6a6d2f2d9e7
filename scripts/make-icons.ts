// Draws the app's icons. The app icon (build/icon.png, 1024 px: electron-builder makes the macOS
// .icns and the Linux sizes from it) shows the pipeline: three stages, the one this computer holds
// lit. The tray icons (build/tray/): one per tray state, in colour for Linux and Windows and as
// black-and-alpha "Template" images that macOS recolours for light and dark menu bars; each at
// 1x and 2x. Run again after changing a shape: `node --import tsx scripts/make-icons.ts`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

type Shape = (x: number, y: number) => number; // coverage 0–1 at a point of the unit square

const circle = (cx: number, cy: number, r: number): Shape => (x, y) => (Math.hypot(x - cx, y - cy) <= r ? 1 : 0);
const ring = (r: number, w: number): Shape => (x, y) => (Math.abs(Math.hypot(x - 0.5, y - 0.5) - r) <= w / 2 ? 1 : 0);
const rect = (x0: number, y0: number, x1: number, y1: number): Shape => (x, y) => (x >= x0 && x <= x1 && y >= y0 && y <= y1 ? 1 : 0);
const union = (...s: Shape[]): Shape => (x, y) => Math.max(...s.map((f) => f(x, y)));

const SHAPES: Record<string, { shape: Shape; rgb: [number, number, number] }> = {
  idle: { shape: ring(0.36, 0.12), rgb: [140, 146, 156] },
  training: { shape: union(ring(0.4, 0.08), circle(0.5, 0.5, 0.24)), rgb: [46, 160, 90] },
  paused: { shape: union(rect(0.3, 0.22, 0.42, 0.78), rect(0.58, 0.22, 0.7, 0.78)), rgb: [220, 160, 40] },
  error: { shape: union(rect(0.44, 0.14, 0.56, 0.62), circle(0.5, 0.8, 0.075)), rgb: [214, 64, 64] },
};

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

type Layer = { shape: Shape; rgb: [number, number, number] };

/** An RGBA PNG of `size` pixels: the layers painted in order, each pixel 4×4-supersampled for smooth edges. */
function png(size: number, ...layers: Layer[]): Buffer {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // no filter
    for (let x = 0; x < size; x++) {
      // Straight (not premultiplied) colour, composited "over" layer by layer.
      let [r, g, b, a] = [0, 0, 0, 0];
      for (const { shape, rgb } of layers) {
        let cover = 0;
        for (let sy = 0; sy < 4; sy++) for (let sx = 0; sx < 4; sx++) cover += shape((x + (sx + 0.5) / 4) / size, (y + (sy + 0.5) / 4) / size);
        const ca = cover / 16;
        if (ca === 0) continue;
        const na = ca + a * (1 - ca);
        [r, g, b] = [0, 1, 2].map((i) => (rgb[i] * ca + [r, g, b][i] * a * (1 - ca)) / na);
        a = na;
      }
      const o = y * (size * 4 + 1) + 1 + x * 4;
      raw.set([Math.round(r), Math.round(g), Math.round(b), Math.round(a * 255)], o);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** A square with rounded corners (radius r) inside [x0, x1] × [y0, y1]. */
const rounded = (x0: number, y0: number, x1: number, y1: number, r: number): Shape => (x, y) => {
  const dx = Math.max(x0 + r - x, 0, x - (x1 - r));
  const dy = Math.max(y0 + r - y, 0, y - (y1 - r));
  return x >= x0 && x <= x1 && y >= y0 && y <= y1 && Math.hypot(dx, dy) <= r ? 1 : 0;
};
const stage = (i: number): Shape => rounded(0.16 + i * 0.25, 0.36, 0.34 + i * 0.25, 0.64, 0.04);
const link = (i: number): Shape => rect(0.34 + i * 0.25, 0.485, 0.41 + i * 0.25, 0.515);
const APP_ICON: Layer[] = [
  { shape: rounded(0.04, 0.04, 0.96, 0.96, 0.2), rgb: [24, 92, 196] },
  { shape: union(stage(0), stage(2), link(0), link(1)), rgb: [255, 255, 255] },
  { shape: stage(1), rgb: [80, 214, 130] },
];

const build = new URL('../build/', import.meta.url).pathname;
writeFileSync(join(build, 'icon.png'), png(1024, ...APP_ICON));
const tray = join(build, 'tray');
for (const [name, { shape, rgb }] of Object.entries(SHAPES)) {
  for (const [suffix, size] of [['', 16], ['@2x', 32]] as const) {
    writeFileSync(join(tray, `${name}${suffix}.png`), png(size, { shape, rgb }));
    writeFileSync(join(tray, `${name}Template${suffix}.png`), png(size, { shape, rgb: [0, 0, 0] }));
  }
}
console.log(`app icon and tray icons written to ${build}`);

// Draws the tray icons (build/tray/): one per tray state, in colour for Linux and Windows and as
// black-and-alpha "Template" images that macOS recolours for light and dark menu bars; each at
// 1x and 2x. Run again after changing a shape: `node --import tsx scripts/make-tray-icons.ts`.
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

/** An RGBA PNG of `size` pixels, each 4×4-supersampled for smooth edges. */
function png(size: number, shape: Shape, rgb: [number, number, number]): Buffer {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // no filter
    for (let x = 0; x < size; x++) {
      let cover = 0;
      for (let sy = 0; sy < 4; sy++) for (let sx = 0; sx < 4; sx++) cover += shape((x + (sx + 0.5) / 4) / size, (y + (sy + 0.5) / 4) / size);
      const o = y * (size * 4 + 1) + 1 + x * 4;
      raw.set([...rgb, Math.round((cover / 16) * 255)], o);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const out = new URL('../build/tray/', import.meta.url).pathname;
for (const [name, { shape, rgb }] of Object.entries(SHAPES)) {
  for (const [suffix, size] of [['', 16], ['@2x', 32]] as const) {
    writeFileSync(join(out, `${name}${suffix}.png`), png(size, shape, rgb));
    writeFileSync(join(out, `${name}Template${suffix}.png`), png(size, shape, [0, 0, 0]));
  }
}
console.log(`tray icons written to ${out}`);

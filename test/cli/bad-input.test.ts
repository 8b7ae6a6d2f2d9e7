// Bad input to `tah`: each case exits non-zero with exactly one `tah: error:` line naming the
// problem, ends --json output with {"summary": true, "ok": false, "error": ...}, and leaves
// nothing behind.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { decodeSafetensors, encodeSafetensors, type TensorIn } from '../../worker/checkpoint/safetensors.ts';
import { probeDevices } from '../../worker/engine/session.ts';
import { type TahRun, assertFailsOnStderr, assertJsonFailure, jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
/** A real tiny checkpoint (5 steps) to damage. */
let checkpoint = '';
let checkpointBytes: Buffer;

const TINY = { vocab_size: 256, d_model: 64, n_layers: 4, n_heads: 4, n_kv_heads: 2, ffn_hidden: 176, seq_len: 64, batch_size: 8, rope_theta: 10000, norm_eps: 1e-5 };

before(async () => {
  ({ dir, cleanup } = await tempDir('bad'));
  checkpoint = join(dir, 'good.safetensors');
  const r = await runTah(['train', '--preset', 'tiny', '--steps', '2', '--eval-batches', '1', '--checkpoint', checkpoint, '--json'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  checkpointBytes = await readFile(checkpoint);
});
after(() => cleanup());

/** Runs tah in a fresh empty folder (so anything left behind shows), expecting failure. */
async function fails(t: TestContext, args: string[], problem: RegExp, opts: { setup?: (cwd: string) => Promise<void> } = {}): Promise<{ run: TahRun; cwd: string }> {
  const cwd = join(dir, `case-${Math.random().toString(36).slice(2)}`);
  await mkdir(cwd);
  await opts.setup?.(cwd);
  const run = await runTah(args, { cwd });
  t.diagnostic(run.stderr.split('\n')[0]);
  assertFailsOnStderr(run, problem);
  if (args.includes('--json')) assertJsonFailure(run, problem);
  return { run, cwd };
}

/** Failures that commander reports while parsing the arguments. */
async function failsParsing(t: TestContext, args: string[], problem: RegExp): Promise<void> {
  const cwd = join(dir, `case-${Math.random().toString(36).slice(2)}`);
  await mkdir(cwd);
  const run = await runTah([...args, '--json'], { cwd });
  t.diagnostic(run.stderr.split('\n')[0]);
  assertFailsOnStderr(run, problem);
  assert.deepEqual(await readdir(cwd), [], 'a rejected command line must not create anything');
  assertJsonFailure(run, problem);
}

const presetFile = (name: string, text: string) => async (cwd: string) => writeFile(join(cwd, name), text);

test('a preset file that is not JSON', async (t) => {
  await fails(t, ['train', '--preset', 'broken.json', '--steps', '1', '--json'], /preset broken\.json: not valid JSON/, { setup: presetFile('broken.json', '{"vocab_size": 256, "d_model": ') });
});

test('a preset file with a missing key', async (t) => {
  const { n_layers: _, ...missing } = TINY;
  await fails(t, ['train', '--preset', 'missing.json', '--steps', '1', '--json'], /invalid preset missing\.json: n_layers\b/, { setup: presetFile('missing.json', JSON.stringify(missing)) });
});

test('a preset file whose d_model is not divisible by n_heads', async (t) => {
  await fails(t, ['train', '--preset', 'heads.json', '--steps', '1', '--json'], /invalid preset heads\.json: .*d_model 66 is not divisible by n_heads 4/, {
    setup: presetFile('heads.json', JSON.stringify({ ...TINY, d_model: 66 })),
  });
});

test('a preset file with a negative value', async (t) => {
  await fails(t, ['train', '--preset', 'negative.json', '--steps', '1', '--json'], /invalid preset negative\.json: ffn_hidden\b/, {
    setup: presetFile('negative.json', JSON.stringify({ ...TINY, ffn_hidden: -176 })),
  });
});

test('a preset that is neither bundled nor a file', async (t) => {
  const { cwd } = await fails(t, ['train', '--preset', 'huge', '--steps', '1', '--json'], /preset huge: not one of tiny, small, demo, medium, iota-1.5b and not a readable file/);
  assert.deepEqual(await readdir(cwd), []);
});

test('--device banana is not a device', async (t) => {
  await failsParsing(t, ['train', '--device', 'banana'], /'--device <device>' argument 'banana' is invalid.*auto, cpu, cuda/);
});

test('--device cuda where CUDA is not available says so and why', async (t) => {
  const world = probeDevices();
  if (world.providers.has('cuda')) return t.skip('the CUDA provider is installed on this machine');
  const why = world.platform === 'linux' && world.arch === 'x64' ? /provider library is not installed \(run npx tah setup cuda/ : /CUDA on Linux x64 only/;
  const { run, cwd } = await fails(t, ['train', '--device', 'cuda', '--steps', '1', '--json'], /device cuda is not available: \S/);
  assert.match(run.stderr, why);
  assert.equal(jsonLines(run.stdout).filter((l) => l.event === 'step').length, 0, 'no training');
  assert.deepEqual(await readdir(cwd), []);
});

test('--steps 0', async (t) => {
  await failsParsing(t, ['train', '--steps', '0'], /'--steps <n>' argument '0' is invalid/);
});

test('--steps abc', async (t) => {
  await failsParsing(t, ['train', '--steps', 'abc'], /'--steps <n>' argument 'abc' is invalid/);
});

test('--lr -1', async (t) => {
  await failsParsing(t, ['train', '--lr', '-1'], /'--lr <x>' argument '-1' is invalid.*positive/);
});

/** `tah export` of a damaged checkpoint: a clear message and nothing left in the output's parent. */
async function exportFails(t: TestContext, bytes: Buffer | undefined, problem: RegExp): Promise<void> {
  const { cwd } = await fails(t, ['export', 'ckpt.safetensors', '--hf', join('out', 'hf'), '--json'], problem, {
    setup: async (c) => {
      if (bytes) await writeFile(join(c, 'ckpt.safetensors'), bytes);
      await mkdir(join(c, 'out'));
    },
  });
  assert.deepEqual(await readdir(join(cwd, 'out')), [], 'export left something in the output folder\'s parent');
  assert.deepEqual((await readdir(cwd)).sort(), bytes ? ['ckpt.safetensors', 'out'] : ['out']);
}

test('tah export of a truncated checkpoint', async (t) => {
  await exportFails(t, checkpointBytes.subarray(0, Math.floor(checkpointBytes.length / 2)), /checkpoint ckpt\.safetensors: truncated/);
});

test('tah export of a checkpoint with a corrupted header', async (t) => {
  const bytes = Buffer.from(checkpointBytes);
  bytes.write('#', 8); // the header's opening brace
  await exportFails(t, bytes, /checkpoint ckpt\.safetensors: corrupt: header is not valid JSON/);
  const huge = Buffer.from(checkpointBytes);
  huge.writeBigUInt64LE(0xffff_ffff_ffffn, 0); // the header length
  await exportFails(t, huge, /checkpoint ckpt\.safetensors: corrupt: header length \d+ is over/);
});

test('tah export of a missing file', async (t) => {
  await exportFails(t, undefined, /checkpoint ckpt\.safetensors: cannot read \(ENOENT\)/);
});

test('tah export of a checkpoint whose tensor shape does not match its config', async (t) => {
  const { tensors, metadata } = decodeSafetensors(checkpointBytes);
  const out: Record<string, TensorIn> = {};
  for (const [name, v] of tensors) out[name] = { dtype: v.dtype, shape: v.shape, data: v.bytes };
  const norm = out['model.norm.weight'];
  assert.deepEqual(norm.shape, [64]);
  out['model.norm.weight'] = { ...norm, shape: [2, 32] };
  await exportFails(t, encodeSafetensors(out, metadata), /checkpoint ckpt\.safetensors: shape mismatch for model\.norm\.weight: expected \[64\] got \[2, 32\]/);
});

test('tah train --checkpoint under a regular file fails before training and leaves nothing behind', async (t) => {
  for (const target of [join('blocker', 'ckpt.safetensors'), join('blocker', 'sub', 'ckpt.safetensors')]) {
    const { run, cwd } = await fails(t, ['train', '--steps', '1', '--checkpoint', target, '--json'], /cannot create the folder for checkpoint blocker[\\/](sub[\\/])?ckpt\.safetensors/, {
      setup: presetFile('blocker', 'a regular file\n'),
    });
    const events = jsonLines(run.stdout).map((l) => l.event);
    for (const e of ['start', 'step', 'eval']) assert.ok(!events.includes(e), `a '${e}' event: it trained before failing\n${show(run)}`);
    assert.deepEqual(await readdir(cwd), ['blocker']);
    assert.ok((await stat(join(cwd, 'blocker'))).isFile());
    assert.equal(await readFile(join(cwd, 'blocker'), 'utf8'), 'a regular file\n');
  }
});

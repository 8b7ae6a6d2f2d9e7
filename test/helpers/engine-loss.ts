// What the cross-checks against PyTorch and Hugging Face compare: our engine's loss of a
// whole-model checkpoint on fixed tokens, and held-out-like English tokens to compute it on.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { loadCheckpoint, wholeModel } from '../../worker/checkpoint/checkpoint.ts';
import { ParamLayout } from '../../worker/model/params.ts';
import { Stage } from '../../worker/model/stage.ts';

export interface Tokens {
  inputs: number[][];
  targets: number[][];
}

/** `batch` held-out-like windows of English bytes: inputs [batch, seqLen] and the next-byte targets. */
export function heldoutLikeTokens(batch: number, seqLen: number): Tokens {
  const text =
    'The committee met on Tuesday to consider the report, which had been delayed for several weeks. ' +
    'Members of the board said that the city would need new schools, roads and a larger water supply ' +
    'before the end of the decade. "We cannot wait much longer," one of them told the press. In the ' +
    'afternoon the discussion turned to the budget, and it was agreed that the figures should be ' +
    'published as soon as the auditors had finished their work on the accounts of the previous year.';
  const bytes = [...Buffer.from(text, 'utf8')];
  const windows = Array.from({ length: batch }, (_, b) => bytes.slice(b * 53, b * 53 + seqLen + 1));
  for (const w of windows) assert.equal(w.length, seqLen + 1, 'text too short for the windows');
  return { inputs: windows.map((w) => w.slice(0, -1)), targets: windows.map((w) => w.slice(1)) };
}

/** Writes tokens as torch_llama.py's --tokens file ({"inputs": [[..]], "targets": [[..]]}). */
export const writeTokens = (path: string, tokens: Tokens): Promise<void> => writeFile(path, JSON.stringify(tokens));

/** The engine's mean cross-entropy of a whole-model checkpoint on the tokens (one forward pass). */
export async function engineLoss(checkpointPath: string, { inputs, targets }: Tokens): Promise<number> {
  const ckpt = await loadCheckpoint(checkpointPath);
  const config = ckpt.config;
  const layout = new ParamLayout(config, wholeModel(config));
  const params = new Float32Array(layout.size);
  for (const [name, w] of ckpt.weights) layout.view(params, name).set(w.data);
  const stage = await Stage.create(config, wholeModel(config));
  try {
    const flat = (rows: number[][]): BigInt64Array => BigInt64Array.from(rows.flat(), (x) => BigInt(x));
    return (await stage.forward(params, flat(inputs), flat(targets))).loss!;
  } finally {
    await stage.dispose();
  }
}

/** |a - b| / |b|, for float32 agreement checks. */
export const relativeError = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

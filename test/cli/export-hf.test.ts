// A `tah export --hf` folder is a model that Hugging Face transformers loads: from_pretrained
// into LlamaForCausalLM (scripts/torch_llama.py hf-loss), and its loss on fixed English tokens is
// our engine's to float32 precision. test/cli/export.test.ts checks the names and the bytes.
// Skips, naming the install command, where the peer python cannot import transformers.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadPreset } from '../../worker/model/config.ts';
import { engineLoss, heldoutLikeTokens, relativeError, writeTokens } from '../helpers/engine-loss.ts';
import { runTorchScript, transformersSkip } from '../helpers/torch.ts';
import { runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('export-hf'));
});
after(() => cleanup());

test('transformers loads the exported folder and computes the engine loss', { skip: transformersSkip() }, async (t) => {
  // Trained a little, so that attention, RoPE and the norms matter to the loss.
  const checkpoint = join(dir, 'tiny.safetensors');
  const trained = await runTah(['train', '--preset', 'tiny', '--steps', '60', '--eval-batches', '1', '--checkpoint', checkpoint, '--json'], { cwd: dir });
  assert.equal(trained.code, 0, show(trained));
  const hf = join(dir, 'hf');
  const exported = await runTah(['export', checkpoint, '--hf', hf], { cwd: dir });
  assert.equal(exported.code, 0, show(exported));

  const config = loadPreset('tiny');
  const tokens = heldoutLikeTokens(config.batch_size, config.seq_len);
  const tokensFile = join(dir, 'tokens.json');
  await writeTokens(tokensFile, tokens);
  const r = (await runTorchScript(['hf-loss', '--model', hf, '--tokens', tokensFile])) as { loss: number; params: number; impl: string; class: string };
  const engine = await engineLoss(checkpoint, tokens);
  const rel = relativeError(engine, r.loss);
  t.diagnostic(`${r.impl} ${r.class}: loss ${r.loss}; engine ${engine}; relative error ${rel.toExponential(2)}`);
  assert.equal(r.class, 'LlamaForCausalLM');
  assert.ok(engine < Math.log(config.vocab_size) - 0.5, `the checkpoint should have learned something: loss ${engine}`);
  // float32 agreement is ~1e-7 here; 1e-5 still notices a misread rope_theta (10,000 read as 500,000: 2.6e-5).
  assert.ok(rel <= 1e-5, `transformers loss ${r.loss} vs engine ${engine}: relative error ${rel}`);
});

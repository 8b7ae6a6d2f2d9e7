// collectGarbage frees what nothing references any more, there and then: the step's outputs of
// the last run are gone before the next run allocates its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { collectGarbage } from '../../../worker/engine/collect.ts';

test('collectGarbage frees an unreferenced 64 MB buffer at once, and keeps one still referenced', async () => {
  const kept = new Float32Array(16 * 2 ** 20);
  const keptRef = new WeakRef(kept);
  // Made and dropped inside a function: nothing here holds it after the call.
  const droppedRef = ((): WeakRef<Float32Array> => new WeakRef(new Float32Array(16 * 2 ** 20)))();
  // A WeakRef's target stays alive until the job that made it ends.
  await tick();
  collectGarbage();
  assert.equal(droppedRef.deref(), undefined, 'the dropped buffer was collected');
  assert.equal(keptRef.deref(), kept, 'the referenced one was not');
  collectGarbage();
  assert.equal(keptRef.deref()?.length, 16 * 2 ** 20);
});

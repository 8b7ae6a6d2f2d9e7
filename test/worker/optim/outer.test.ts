// The outer step of local-steps training against PyTorch's own: torch.optim.SGD(momentum=μ,
// nesterov=True) with the pseudo-gradient as the gradient, over several merges.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { outerNesterovStep, pseudoGradient } from '../../../worker/optim/outer.ts';
import { PYTHON, torchSkip } from '../../helpers/torch.ts';

const TORCH_SGD = `
import json, sys, torch
d = json.load(sys.stdin)
p = torch.nn.Parameter(torch.tensor(d["theta"], dtype=torch.float32))
opt = torch.optim.SGD([p], lr=d["lr"], momentum=d["mu"], nesterov=True)
for delta in d["deltas"]:
    opt.zero_grad()
    p.grad = torch.tensor(delta, dtype=torch.float32)
    opt.step()
print(json.dumps(p.detach().tolist()))
`;

test('outerNesterovStep matches torch.optim.SGD(nesterov=True) over three merges', { skip: torchSkip }, () => {
  const n = 257;
  let x = 7;
  const rand = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const theta = Float32Array.from({ length: n }, rand);
  const deltas = Array.from({ length: 3 }, () => Float32Array.from({ length: n }, () => 0.01 * rand()));
  const [lr, mu] = [0.7, 0.9];
  const run = spawnSync(PYTHON, ['-c', TORCH_SGD], { input: JSON.stringify({ theta: [...theta], deltas: deltas.map((d) => [...d]), lr, mu }), encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const expected = JSON.parse(run.stdout) as number[];
  const anchor = theta.slice();
  const u = new Float32Array(n);
  for (const d of deltas) outerNesterovStep(anchor, u, d, lr, mu);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(anchor[i] - expected[i]) <= 1e-6 * (1 + Math.abs(expected[i])), `element ${i}: ${anchor[i]} vs torch ${expected[i]}`);
});

test('with no momentum and step 1 the outer step lands on the mean of the replicas (parameter averaging)', () => {
  const anchor = Float32Array.from([1, 2, 3]);
  const replicas = [Float32Array.from([0.5, 2.5, 3]), Float32Array.from([1.5, 1.5, 2])];
  const mean = new Float32Array(3);
  for (const r of replicas) {
    const d = pseudoGradient(anchor, r, new Float32Array(3));
    for (let i = 0; i < 3; i++) mean[i] += d[i] / replicas.length;
  }
  outerNesterovStep(anchor, new Float32Array(3), mean, 1, 0);
  assert.deepEqual([...anchor], [1, 2, 2.5]);
  assert.throws(() => outerNesterovStep(anchor, new Float32Array(2), mean, 1, 0), /3 weights, 2 momenta, 3 deltas/);
});

// Which python runs the PyTorch peer (cli/peer-python.ts): a pure function of what exists and
// what imports torch, so every case is checked here without installing anything.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { INSTALL_HINT, type PythonWorld, REPO_ROOT, SYSTEM_PYTHON, TORCH_SCRIPT, choosePeerPython, venvPython, weakPeerNote } from '../../cli/peer-python.ts';

const ROOT = '/repo';
const VENV = '/repo/.venv-torch/bin/python';

/** A machine where `present` exist and `withTorch` import torch. */
function world(present: string[], withTorch: string[], env: NodeJS.ProcessEnv = {}, platform: NodeJS.Platform = 'linux'): PythonWorld {
  return { root: ROOT, env, platform, exists: (p) => present.includes(p), imports: (p, m) => m === 'torch' && withTorch.includes(p) };
}

test('the repository venv wins when it imports torch, then /usr/bin/python3, then nothing', () => {
  assert.deepEqual(choosePeerPython(world([VENV, SYSTEM_PYTHON], [VENV, SYSTEM_PYTHON])), { ok: true, python: VENV, source: 'venv' });
  assert.deepEqual(choosePeerPython(world([VENV, SYSTEM_PYTHON], [SYSTEM_PYTHON])), { ok: true, python: SYSTEM_PYTHON, source: 'system' }, 'a venv without torch');
  assert.deepEqual(choosePeerPython(world([SYSTEM_PYTHON], [SYSTEM_PYTHON])), { ok: true, python: SYSTEM_PYTHON, source: 'system' }, 'no venv');
  assert.deepEqual(choosePeerPython(world([VENV], [VENV])), { ok: true, python: VENV, source: 'venv' }, 'no system python');
});

test('with no python that imports torch, the reason names both places and the install command', () => {
  for (const [present, why] of [
    [[], 'does not exist'],
    [[VENV, SYSTEM_PYTHON], 'cannot import torch'],
  ] as const) {
    const r = choosePeerPython(world([...present], []));
    assert.equal(r.ok, false);
    if (r.ok) continue;
    assert.ok(r.reason.includes(`${VENV} ${why}`), r.reason);
    assert.ok(r.reason.includes(`${SYSTEM_PYTHON} cannot import torch`), r.reason);
    assert.ok(r.reason.includes(INSTALL_HINT) && r.reason.includes(ROOT), r.reason);
  }
  assert.equal(INSTALL_HINT, 'python3 -m venv .venv-torch && .venv-torch/bin/pip install torch transformers');
});

test('TAH_PYTHON, when set, is the only python tried', () => {
  const env = { TAH_PYTHON: '/opt/py/bin/python' };
  assert.deepEqual(choosePeerPython(world([VENV], [VENV, env.TAH_PYTHON], env)), { ok: true, python: env.TAH_PYTHON, source: 'env' });
  const r = choosePeerPython(world([VENV], [VENV], env));
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /^TAH_PYTHON=\/opt\/py\/bin\/python cannot import torch \(.*pip install torch transformers.*unset TAH_PYTHON\)$/);
  assert.deepEqual(choosePeerPython(world([VENV], [VENV], { TAH_PYTHON: '' })), { ok: true, python: VENV, source: 'venv' }, 'an empty TAH_PYTHON is unset');
});

test("the venv's python on Windows, and the note for Debian's old PyTorch", () => {
  assert.equal(venvPython('C:\\repo', 'win32'), join('C:\\repo', '.venv-torch', 'Scripts', 'python.exe'));
  assert.equal(venvPython(ROOT, 'darwin'), VENV);
  assert.match(weakPeerNote({ ok: true, python: SYSTEM_PYTHON, source: 'system' }) ?? '', /Debian.*pip install torch transformers/);
  assert.equal(weakPeerNote({ ok: true, python: VENV, source: 'venv' }), undefined);
  assert.equal(weakPeerNote({ ok: false, reason: 'none' }), undefined);
});

test('the repository root is found from the module, where the reference script lies', () => {
  assert.ok(existsSync(join(REPO_ROOT, 'package.json')), REPO_ROOT);
  assert.ok(existsSync(TORCH_SCRIPT), TORCH_SCRIPT);
});

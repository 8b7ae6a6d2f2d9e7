// The front door's check on its own (orchestrator/request-target.ts): each kind of request target
// it refuses, with the message that names it, and what it lets through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROUTES } from '../../orchestrator-client/routes.ts';
import { requestTargetCheck } from '../../orchestrator/request-target.ts';

// The routes the server hands it: the table's, less the interface's catch-all (static files of any name).
const check = requestTargetCheck(Object.values(ROUTES).filter((r) => r.path !== '/' && r.path !== '/*'));

const REFUSED: [string, string[], RegExp][] = [
  ['asterisk form', ['*'], /asterisk-form/],
  ['absolute form', ['http://127.0.0.1:8080/v1/health', 'https://evil.example/v1/runs/run1', 'HTTP://x/v1/health', 'ws://x/v1/health'], /absolute-form/],
  ['authority form or no leading slash', ['127.0.0.1:8080', 'evil.example:443', 'v1/health', ''], /authority-form/],
  ['a fragment', ['/v1/health#', '/v1/health#x', '/v1/health?x=1#y', '/v1#/health', '/#'], /fragment/],
  ['a doubled slash', ['//v1/health', '/v1//health', '/v1/health//', '//'], /doubled slash/],
  ['a backslash', ['/v1/health\\', '/v1\\health', '/\\'], /backslash/],
  ['bad percent-encoding', ['/v1/%zz', '/v1/runs/%', '/v1/runs/%c0%af', '/v1/runs/%ed%a0%80'], /not valid percent-encoding/],
  ['a dot segment', ['/./v1/health', '/v1/./health', '/v1/zz/../health', '/v1/%2e/health', '/v1/zz/%2E%2E/health', '/v1/zz/.%2e', '/..', '/%2e'], /dot segment/],
  ['an encoded separator', ['/v1%2Fhealth', '/v1%2fhealth', '/v1/runs/a%2Fb', '/v1%5Chealth', '/v1/runs/a%5cb'], /encoded separator/],
  ['a control character', ['/v1/health%00', '/v1/runs/run1%0A', '/v1/runs/%09', '/v1/runs/run1%1F', '/v1/runs/run1%7F'], /control character/],
  ['the prefix in other case', ['/V1/health', '/V1/runs/run1', '/%56%31/health', '/V1/nothing-here'], /case-sensitive: the API is under \/v1\//],
  ['the prefix percent-encoded', ['/%761/health', '/%76%31/runs/run1', '/v%31/nothing-here'], /prefix \/v1 is written plainly, not percent-encoded/],
  ['a route word in other case', ['/v1/Health', '/v1/HEALTH', '/Metrics', '/v1/runs/run1/STATUS', '/v1/Admin/runs', '/v1/BLOBS/runs/run1/x.bin', '/v1/runs/run1/%53tatus'], /case-sensitive: this path names a route only in another letter case/],
  ['a route word percent-encoded', ['/v1/%68ealth', '/v1/%68%65%61%6c%74%68', '/%6detrics', '/v1/le%61ses/next', '/v1/runs/run1/%73tatus', '/v1/%62lobs/runs/run1/x.bin', '/v1/admin/runs/run1/v%65rsions/0'], /percent-encodes a route's own words/],
];

for (const [what, targets, says] of REFUSED) {
  test(`refused: ${what}`, () => {
    for (const target of targets) {
      const problem = check(target);
      assert.ok(problem !== null, `${JSON.stringify(target)} is let through`);
      assert.match(problem, says, `${JSON.stringify(target)}: ${problem}`);
    }
  });
}

test('let through: canonical paths, with or without a query, parameters in any case or percent-encoded, paths that name no route', () => {
  const ok = [
    '/',
    '/index.html',
    '/assets/app.js',
    '/runs/demo.v2',
    '/metrics',
    '/v1/health',
    '/v1/health?',
    '/v1/health?x=1&y=%2F..%2F',
    '/v1/runs/run1',
    '/v1/runs/RUN1/status',
    '/v1/runs/%72un1/status',
    '/v1/runs/run1/samples/r0-s0',
    '/v1/runs/run1/attribution?from=0&to=3',
    '/v1/runs/status',
    '/v1/runs/%73tatus',
    '/v1/admin/runs/run1/versions/12',
    '/v1/blobs/runs/run1/samples/r0-s0/0-forward-x.safetensors?op=get&exp=1&sig=ab',
    '/v1/blobs/%41',
    '/v1/runs/caf%C3%A9',
    '/v1/no-such-route',
    '/nothing/here',
  ];
  for (const target of ok) assert.equal(check(target), null, target);
});

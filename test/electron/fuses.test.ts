// The fuses the packaged app is built with: each switch a shipped app must have off is off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { config } from '../../electron-builder.config.ts';

test('the packaging config burns the hardening fuses', () => {
  assert.deepEqual(config.electronFuses, {
    runAsNode: false,
    enableCookieEncryption: true,
    enableNodeOptionsEnvironmentVariable: false,
    enableNodeCliInspectArguments: false,
    enableEmbeddedAsarIntegrityValidation: true,
    onlyLoadAppFromAsar: true,
    grantFileProtocolExtraPrivileges: false,
  });
});

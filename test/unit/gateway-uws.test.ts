import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadUws, NativeUwsError, nativeBinaryPath } from '../../src/gateway/uws.js';

describe('native uWebSockets.js loader', () => {
  it('loads the native build for this Node ABI', () => {
    assert.match(
      nativeBinaryPath(),
      new RegExp(`uws_${process.platform}_${process.arch}_${process.versions.modules}\\.node$`),
    );
    assert.equal(typeof loadUws().App, 'function');
  });

  it('refuses to fall back to the pure-JS copy when the binary does not load', () => {
    assert.throws(
      () => loadUws('uWebSockets.js/binaries/uws_linux_x64_1.node'),
      (err: unknown) =>
        err instanceof NativeUwsError &&
        /uws_linux_x64_1\.node did not load/.test(err.message) &&
        /refuses/.test(err.message),
    );
  });
});

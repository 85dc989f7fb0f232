import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));

test('the type declarations compile against a TypeScript program that uses every call', async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [tsc, '-p', join(here, 'types')], { timeout: 120_000 }).catch((e) => e);
  assert.equal(`${stdout ?? ''}${stderr ?? ''}`.trim(), '', 'tsc reported errors');
});

test('the package exports what its declarations name', async () => {
  const root = await import('holdfast');
  for (const name of ['createBotManager', 'createClient', 'HoldfastClient', 'HoldfastError', 'NotFoundError', 'ConflictError', 'InvalidRequestError', 'AuthenticationError', 'GoneError', 'RateLimitedError', 'ServerError', 'ConnectionError']) {
    assert.equal(typeof root[name], 'function', name);
  }
  const whatsapp = await import('holdfast/whatsapp-web');
  assert.equal(typeof whatsapp.HoldfastRemoteAuthStore, 'function');
  const baileys = await import('holdfast/baileys');
  assert.equal(typeof baileys.useHoldfastAuthState, 'function');
});

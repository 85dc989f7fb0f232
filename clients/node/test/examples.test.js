import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');

test('every example parses (running them needs a phone to pair)', async () => {
  const files = (await readdir(examples)).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 2);
  for (const file of files) {
    await promisify(execFile)(process.execPath, ['--check', join(examples, file)]);
  }
});

import { readFile } from 'node:fs/promises';

/** The SQLite database file and its WAL, concatenated: what a thief of the data directory would have. */
export async function databaseBytes(server) {
  const parts = [];
  for (const suffix of ['', '-wal']) {
    try {
      parts.push(await readFile(server.databaseFile + suffix));
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
    }
  }
  return Buffer.concat(parts);
}

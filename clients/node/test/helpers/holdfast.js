// Starts a real `holdfast serve` (the built src/Holdfast.Cli) on a free loopback port over a temporary data
// directory, with API keys made before it starts, so the tests talk to the real thing. HOLDFAST_CLI_DLL names the
// built Holdfast.Cli.dll (the xunit runner sets it); without it the Release build in the repository is used.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, access } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = resolve(here, '../../../..');
const run = promisify(execFile);

export function cliDll() {
  return process.env.HOLDFAST_CLI_DLL ?? join(repositoryRoot, 'src/Holdfast.Cli/bin/Release/net10.0/Holdfast.Cli.dll');
}

function dotnet() {
  return process.env.DOTNET_HOST_PATH ?? 'dotnet';
}

export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Runs a holdfast CLI command over `dataDir` and returns its stdout. */
export async function holdfastCli(dataDir, args, env = {}) {
  const { stdout } = await run(dotnet(), [cliDll(), ...args], {
    env: { ...process.env, HOLDFAST_DATA: dataDir, ...env },
    timeout: 120_000,
  });
  return stdout;
}

/**
 * A Holdfast server for one test file. `users` get API keys (made before the server starts, on the database file).
 * `start()` and `kill()` (SIGKILL) may be called again: it restarts on the same port and data directory.
 */
export class Holdfast {
  constructor({ users = ['alice'], env = {} } = {}) {
    this.users = users;
    this.env = env;
    this.keys = {};
    this.output = '';
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  async setup() {
    await access(cliDll()).catch(() => {
      throw new Error(`The Holdfast CLI is not built at ${cliDll()}: run 'dotnet build -c Release src/Holdfast.Cli' (or set HOLDFAST_CLI_DLL).`);
    });
    this.dataDir = await mkdtemp(join(tmpdir(), 'holdfast-node-'));
    for (const user of this.users) {
      const out = await holdfastCli(this.dataDir, ['keys', 'create', '--user', user, '--json'], this.env);
      this.keys[user] = JSON.parse(out).key;
    }
    this.port = await freePort();
    await this.start();
    return this;
  }

  async start() {
    this.output = '';
    const child = spawn(dotnet(), [cliDll(), 'serve', '--urls', this.baseUrl, '--backend', 'scripted', '--socket', 'none'], {
      env: { ...process.env, HOLDFAST_DATA: this.dataDir, Server__RateLimitPerSecond: '10000', Server__RateLimitBurst: '10000', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout.on('data', (d) => (this.output += d));
    child.stderr.on('data', (d) => (this.output += d));
    const exited = new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
    this.exited = exited;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`holdfast serve exited (${child.exitCode ?? child.signalCode}):\n${this.output}`);
      }
      try {
        const response = await fetch(`${this.baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) return this;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`holdfast serve did not answer /readyz within 90 s:\n${this.output}`);
  }

  /** SIGKILL: no shutdown code runs, like a crash. Resolves once the process is gone. */
  async kill() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop() {
    await this.kill();
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  /** Path of the SQLite database file. */
  get databaseFile() {
    return join(this.dataDir, 'holdfast.db');
  }
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws naming `what`). */
export async function until(check, what, timeoutMs = 10_000, intervalMs = 25) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

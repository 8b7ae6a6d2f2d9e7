// A throwaway PostgreSQL cluster for tests, from Debian's binaries (apt-get install postgresql):
// initdb in a temporary directory, a server on a free port of 127.0.0.1 with its unix socket in
// that directory, no fsync, trust authentication. As root, the server runs as the 'postgres' user
// (it refuses to run as root). Where PostgreSQL is not installed, or TAH_TEST_POSTGRES=off, the
// PostgreSQL tests skip.
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** The cluster's 'postgres' database, as superuser 'postgres'. */
  url: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** Why startPostgres() returns null here, or null when it can start a cluster. */
export function postgresMissing(): string | null {
  if (process.env.TAH_TEST_POSTGRES === 'off') return 'TAH_TEST_POSTGRES=off';
  if (!pgBinDir()) return 'PostgreSQL is not installed (apt-get install postgresql)';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status !== 0) {
    return "running as root and there is no 'postgres' user to run the server";
  }
  return null;
}

/** The newest /usr/lib/postgresql/VERSION/bin with initdb and pg_ctl, or null. */
function pgBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0], 'bin') : null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Runs a PostgreSQL binary, as 'postgres' when we are root; rejects with its output. */
function runPg(bin: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const [file, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: timeoutMs, cwd: '/' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin.split('/').pop()} failed: ${(stderr || stdout || err.message).trim()}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

let databases = 0;

/**
 * Starts a cluster, or returns null when PostgreSQL is not installed (postgresMissing() says
 * why). Rejects when it is installed but does not start. Stop it with stop(); a test process that
 * exits without doing so still stops it. `durable` keeps PostgreSQL's defaults for fsync,
 * synchronous_commit and full_page_writes (for measuring what commits cost; tests leave them off).
 */
export async function startPostgres(opts: { durable?: boolean } = {}): Promise<TestPostgres | null> {
  if (postgresMissing() !== null) return null;
  const bin = pgBinDir()!;
  // As root the server runs as 'postgres', which may not reach a private TMPDIR; and the unix
  // socket's path must stay under ~100 bytes.
  const base = process.getuid?.() === 0 || tmpdir().length > 60 ? '/tmp' : tmpdir();
  const dir = mkdtempSync(join(base, 'tah-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  if (process.getuid?.() === 0) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const stopSync = (): void => {
    spawnSync(process.getuid?.() === 0 ? 'runuser' : join(bin, 'pg_ctl'), [
      ...(process.getuid?.() === 0 ? ['-u', 'postgres', '--', join(bin, 'pg_ctl')] : []),
      '-D', data, '-m', 'immediate', '-s', 'stop',
    ], { stdio: 'ignore', cwd: '/' });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopSync);
  try {
    await runPg(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions']);
    const port = await freePort();
    const serverOptions = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      ...(opts.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
      '-c max_connections=200',
    ].join(' ');
    await runPg(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-o', serverOptions, '-w', '-t', '30', '-s', 'start']).catch((err: Error) => {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-5).join(' | ') : '';
      throw new Error(`${err.message}${tail ? ` (log: ${tail})` : ''}`, { cause: err });
    });
    const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
    let stopped = false;
    return {
      url,
      async createDatabase() {
        const name = `test_${process.pid}_${++databases}`;
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`create database ${name}`);
        } finally {
          await client.end();
        }
        return `postgresql://postgres@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', stopSync);
        try {
          await runPg(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-s', 'stop']);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    process.removeListener('exit', stopSync);
    stopSync();
    throw err;
  }
}

/**
 * Test harness: Redis servers of a test's own (the local `redis-server` binary) on free ports, in
 * their own directories, so a test may stop, restart or cluster them without touching the shared Redis.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Why the local redis-server cannot be used, or undefined when it can. */
export function redisServerMissing(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'redis-server is not installed (apt-get install redis-server)';
}

/** A TCP port nothing listens on right now (and, with `bus`, port + 10000 too: a cluster's bus port). */
export async function freePort(bus = false): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
      s.on('error', reject);
    });
    if (!bus) return port;
    if (port + 10000 < 65536 && (await portFree(port + 10000))) return port;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    s.on('error', () => resolve(false));
  });
}

/** One RESP command over a raw socket, without a client library: the reply's first line. */
export function rawCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    sock.setTimeout(1000, () => sock.destroy(new Error('timeout')));
    sock.on('connect', () =>
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`),
    );
    sock.on('data', (d) => {
      out += d.toString();
      if (out.includes('\r\n')) {
        sock.end();
        resolve(out);
      }
    });
    sock.on('error', reject);
  });
}

/** Signals a server's whole process group (it was spawned detached, as its group's leader). */
function killGroup(p: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-p.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** Output of the current process (Redis's log goes to stdout). */
  output(): string;
  /** Starts the process (a no-op while it runs); resolves when it answers PING. */
  start(): Promise<void>;
  /** SIGTERM (Redis saves and fsyncs the AOF, then exits) or SIGKILL; resolves when it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the process: a Redis that accepts connections but never answers. */
  freeze(frozen: boolean): void;
  /** Stops it and deletes its directory. */
  remove(): Promise<void>;
}

/**
 * Starts `redis-server` with its own directory on a free port (or `opts.port`); `args` are extra
 * config (`--appendonly yes`). With `opts.started: false` it is only prepared: call start().
 */
export async function startRedisServer(
  args: string[] = [],
  opts: { bus?: boolean; port?: number; started?: boolean } = {},
): Promise<RedisServer> {
  const port = opts.port ?? (await freePort(opts.bus));
  const dir = await mkdtemp(path.join(os.tmpdir(), `mlq-redis-${port}-`));
  let proc: ChildProcess | undefined;
  let out = '';
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    output: () => out,
    async start() {
      // Already running: a second process would fail to bind, and the first would be lost (leaked).
      if (proc && proc.exitCode === null && proc.signalCode === null) return;
      out = '';
      proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...args],
        // Its own process group: a kill reaches the children it forks (AOF rewrites, saves) too.
        { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
      );
      // A test file that ends without calling remove() (a timeout, a crash) must not leave it running.
      const child = proc;
      const reap = () => killGroup(child, 'SIGKILL');
      process.once('exit', reap);
      child.once('exit', () => process.off('exit', reap));
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const until = Date.now() + 15_000;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`redis-server on ${port} exited:\n${out}`);
        const pong = await rawCommand(port, 'PING').catch(() => '');
        if (pong.startsWith('+PONG')) return;
        if (Date.now() > until) throw new Error(`redis-server on ${port} does not answer:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(signal = 'SIGTERM') {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      killGroup(p, signal);
      await exited;
    },
    freeze(frozen) {
      if (proc) killGroup(proc, frozen ? 'SIGSTOP' : 'SIGCONT');
    },
    async remove() {
      if (proc) killGroup(proc, 'SIGCONT');
      await server.stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (opts.started !== false) await server.start();
  return server;
}

export interface RedisCluster {
  servers: RedisServer[];
  /** REDIS_CLUSTER_NODES for it. */
  nodes: string;
  remove(): Promise<void>;
}

/** A cluster of `masters` local servers, no replicas: `redis-cli --cluster create … --cluster-yes`. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  for (let i = 0; i < masters; i++) {
    servers.push(
      await startRedisServer(
        ['--cluster-enabled', 'yes', '--cluster-node-timeout', '5000', '--appendonly', 'no'],
        {
          bus: true,
        },
      ),
    );
  }
  const addrs = servers.map((s) => `127.0.0.1:${s.port}`);
  const create = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'],
    {
      encoding: 'utf8',
    },
  );
  if (create.status !== 0)
    throw new Error(`redis-cli --cluster create failed:\n${create.stdout}${create.stderr}`);
  const until = Date.now() + 20_000;
  for (const s of servers) {
    for (;;) {
      const info = await new Promise<string>((resolve) => {
        const r = spawnSync('redis-cli', ['-p', String(s.port), 'cluster', 'info'], { encoding: 'utf8' });
        resolve(r.stdout);
      });
      if (info.includes('cluster_state:ok')) break;
      if (Date.now() > until) throw new Error(`cluster node ${s.port} not ok:\n${info}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    servers,
    nodes: addrs.join(','),
    async remove() {
      await Promise.all(servers.map((s) => s.remove()));
    },
  };
}

/**
 * An S3-compatible server for tests: s3rver (pure JS, from npm) as its own process on 127.0.0.1 with an
 * ephemeral port, a temp directory and one bucket. Its only key pair is S3RVER / S3RVER.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { repoRoot } from './stack.ts';

export interface S3rver {
  proc: ChildProcess;
  endpoint: string;
  /** The env an mlq process needs to reach it through the AWS SDK's standard chain. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3rver(dir: string, bucket: string): Promise<S3rver> {
  // s3rver is a dev dependency of @mlq/core: resolve it from there.
  const req = createRequire(path.join(repoRoot, 'packages/core/package.json'));
  const bin = path.join(path.dirname(req.resolve('s3rver/package.json')), 'bin/s3rver.js');
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy provider.
  const args = ['--openssl-legacy-provider', bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '-s'];
  const proc = spawn(process.execPath, [...args, '--configure-bucket', bucket], { stdio: 'pipe' });
  let out = '';
  const port = await new Promise<string>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /listening on [\d.]+:(\d+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`s3rver exited (${code}): ${out}`)));
    setTimeout(() => reject(new Error(`s3rver did not start: ${out}`)), 20_000).unref();
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise((r) => proc.once('exit', r));
  return {
    proc,
    endpoint,
    env: {
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: endpoint,
    },
    async stop() {
      proc.kill();
      await exited;
    },
  };
}

/** Where an install keeps its id: `<root>:install` in its own Redis (see packages/core/src/storage/install-claim.ts). */
import type { RedisKeys } from '@mlq/contract';
import type { RedisClient } from './connection.ts';

/** The install id's record in Redis: `get` (null when none), `setIfAbsent` (SET NX). */
export function installIdRecord(
  connection: RedisClient,
  keys: RedisKeys,
): { get(): Promise<string | null>; setIfAbsent(id: string): Promise<void> } {
  return {
    get: () => connection.get(keys.install),
    async setIfAbsent(id) {
      await connection.set(keys.install, id, 'NX');
    },
  };
}

import type { RedisCommands } from './hold';
import { memoryForward, type ForwardBackend } from './forward-store';

/** The journal in Redis, shared by replicas. (Placeholder: process-local until the Redis scripts land.) */
export function redisForward(client: RedisCommands): ForwardBackend {
  void client;
  return { ...memoryForward(), kind: 'redis' };
}

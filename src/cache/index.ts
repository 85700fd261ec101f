/**
 * The tenant cache: one Keyv-backed store per process (memory, SQLite or
 * Redis), per-tenant namespaces, quotas and expiry sweeping.
 */
export { CacheStore, type CacheStoreOptions } from './store';
export { TenantCache, type TenantCacheLimits } from './tenant-cache';
export { MAX_KEY_LENGTH } from './keys';
export { SQLITE_PRAGMAS, memoryLeases, type LeaseStore } from './backend';
export { memoryHolds, type HoldStore, type HeldItem } from './hold';
export { POLICY_HISTORY, memoryPolicies, type PolicyStore, type PolicyVersion } from './policy-store';
export { benchCache, type CacheBenchResult } from './bench-cache';

/**
 * The core's answers to host calls (what a policy's `smpp.*`, `cache.*` and
 * timer calls become, typed in sandbox-protocol/host-calls.ts): each op
 * served strictly within the calling tenant, through the gateway's send
 * paths, the tenant's own cache and its policy timers.
 */
import type { TenantCache } from '../cache';
import { SluiceError } from '../errors';
import type { Gateway } from '../gateway';
import { readHostCall, runHostCall, type HostCall, type HostCallHandlers } from '../sandbox-protocol/host-calls';
import type { PolicyTimers } from '../tenants/policy-timers';

/** What the handlers reach: the gateway once attached, a tenant of the pool (undefined: none of that id) with its cache as it is now, the policy timers. */
export interface HostServices {
  gateway(): Gateway | undefined;
  tenant(id: string): { readonly cache: TenantCache } | undefined;
  timers: PolicyTimers;
}

export class HostCallServer {
  private readonly handlers: HostCallHandlers;

  constructor(private readonly services: HostServices) {
    this.handlers = handlers(services);
  }

  /** A policy's call into the host, always within its own tenant: read at the boundary, then one typed handler per op. */
  serve(tenant: string, op: string, args: unknown): Promise<unknown> {
    if (!this.services.tenant(tenant)) return Promise.reject(new SluiceError('UNKNOWN_TENANT'));
    let call: HostCall;
    try {
      call = readHostCall(op, args);
    } catch (err) {
      return Promise.reject(err);
    }
    return runHostCall(this.handlers, tenant, call);
  }
}

function handlers(services: HostServices): HostCallHandlers {
  return {
    sendVia: async (tenant, a) => {
      const gateway = services.gateway();
      if (!gateway) throw new SluiceError('BIND_DOWN', 'gateway not running');
      return gateway.sendVia(tenant, a.bind, a.command, a.fields);
    },
    sendTo: async (tenant, a) => {
      const gateway = services.gateway();
      if (!gateway) throw new SluiceError('UNKNOWN_SESSION', 'gateway not running');
      return gateway.sendTo(tenant, a.sessionId, a.command, a.fields);
    },
    cache: async (tenant, a) => {
      const cache = services.tenant(tenant)!.cache;
      switch (a.op) {
        case 'get':
          return (await cache.get(a.key)) ?? null;
        case 'set':
          await cache.set(a.key, a.json, a.ttlMs);
          return true;
        case 'delete':
          return cache.delete(a.key);
        case 'has':
          return cache.has(a.key);
      }
    },
    forward: async (tenant, a) => {
      const gateway = services.gateway();
      if (!gateway) throw new SluiceError('BIND_DOWN', 'gateway not running');
      return gateway.forward(tenant, a);
    },
    timer: async (tenant, a) => services.timers.call(tenant, a),
  };
}

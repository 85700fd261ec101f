/**
 * What a policy is told of its tenant's configuration at boot
 * (`smpp.config()`): computed by the core for the sandbox, and by the test
 * harness for a policy run in a tenant's own tests.
 */
import type { TenantConfig } from '../config/schema';

/** Public config view for a policy: no passwords, no tokens. */
export function publicConfig(t: TenantConfig): unknown {
  return {
    id: t.id,
    system_ids: t.system_ids,
    limits: t.limits,
    binds: t.binds.map((b) => ({ name: b.name, host: b.host, port: b.port, system_id: b.system_id, bind_type: b.bind_type, max_msg_per_sec: b.max_msg_per_sec, window: b.window })),
  };
}

/**
 * One tenant's state, said the same way by `GET /v1/tenants`, `GET
 * /v1/tenants/:id` and the status page (docs/operations.md, "Health"):
 * quarantined or penalised first (the core refuses its PDUs whatever its
 * sandbox says), then `failed` for a policy that never loaded (nothing
 * serves), else what its sandbox says. A tenant whose new version did not
 * load while an older one still serves stays `ready`; its `load_errors` say
 * why the new one did not.
 */
export function tenantState(pool: { quarantined?: boolean; penalised?: boolean; loadError?: readonly unknown[] } | undefined, sandboxState: string | undefined): string {
  if (pool?.quarantined) return 'quarantined';
  if (pool?.penalised) return 'penalised';
  const state = sandboxState ?? 'idle';
  if (pool?.loadError !== undefined && state === 'idle') return 'failed';
  return state;
}

import type { AccessLevel } from '../config/types.ts';

/** Who is calling, before anything about tenants is decided. */
export interface Principal {
  kind: 'api_key' | 'jwt';
  /** Key id or JWT subject: safe to log, never the secret. */
  id: string;
  role: string;
  access: AccessLevel;
  /** Tenants it may act for; empty for a platform principal (which may act for any). */
  tenants: string[];
}

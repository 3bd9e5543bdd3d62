/** What bench/peers.ts hands each peer server (as a JSON file): where to connect, and who each API key is. */
export interface PeerSpec {
  /** The gateway login's URL: it may SET ROLE to the read role, as the gateway does. */
  url: string;
  poolSize: number;
  /** API key → the tenant, its context HMAC, and the role its requests run as. */
  keys: Record<string, { tenant: string; mac: string; role: string }>;
  /** The gateway's compiled statement for the point query ($1 tenant, $2 id, $3 limit) and its limit. */
  sql: string;
  limit: number;
}

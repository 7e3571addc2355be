// What the egress gateway's parts share: an audited event and the caps.
/** One connection (CONNECT) or plain HTTP request, as audited. bytesIn came from the destination. */
export interface EgressEvent {
  groupFolder: string;
  method: string;
  host: string;
  port: number;
  path?: string;
  status?: number;
  address?: string;
  bytesIn: number;
  bytesOut: number;
  decision: 'allowed' | 'refused' | 'failed';
  reason?: string;
  /** Not on the group's list: what the owner answered when asked (once, always; a refusal is the reason). */
  ownerAnswer?: string;
  /** Read and sent on by the gateway, with these secrets added (each request audited by itself too). */
  secretsAdded?: string[];
}

export interface EgressLimits {
  /** New connections and plain requests per group per minute. */
  requestsPerMinute: number;
  /** Bytes both ways per group per day (UTC), in MiB; a transfer that passes it is cut. */
  megabytesPerDay: number;
}

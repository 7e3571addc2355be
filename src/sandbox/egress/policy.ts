// What the egress gateway lets through: a destination must be on its group's list (deny rules win, nothing listed is
// refused), and every address it connects to must be on the public internet, or a private one the owner named (--lan).
import net from 'node:net';
import os from 'node:os';
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';
import type { EgressRule } from '../../store/store.js';

const NAME =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * A host as rules compare it: lower case, IDN as punycode, no trailing dot, an address in its one canonical form
 * (so ::ffff:7f00:1 and [::FFFF:127.0.0.1] are one address); null when it is neither a name nor an address.
 */
export function normalizeHost(raw: string): string | null {
  const host = raw.trim().replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(host)) return ipaddr.process(host).toString();
  // The URL parser behind domainToASCII would drop a path or port rather than refuse it.
  if (!/^[^\s/\\?#@:%[\]]+$/.test(host)) return null;
  const ascii = domainToASCII(host.replace(/\.$/, '').toLowerCase());
  if (net.isIP(ascii)) return ascii; // 127.1 and 0x7f.0.0.1 come back as the address they are
  return NAME.test(ascii) ? ascii : null;
}

/** A rule's host as the owner typed it: a name, *.suffix or an address, normalized; null when malformed. */
export function parseRuleHost(text: string): string | null {
  if (!text.startsWith('*.')) return normalizeHost(text);
  const suffix = normalizeHost(text.slice(2));
  // *.com would open a whole top-level domain, and an address has no sub-names.
  return suffix?.includes('.') && !net.isIP(suffix) ? `*.${suffix}` : null;
}

const matches = (pattern: string, host: string) =>
  pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : pattern === host;

/** isDenied: a rule refuses it (not only: no rule allows it), so the owner is not asked about it either. */
export type Verdict =
  | { isAllowed: true; isLan: boolean }
  | { isAllowed: false; reason: string; isDenied: boolean };

/** A deny rule wins over every allow rule; of the allow rules, an exact one says whether the name may be private. */
export function decide(rules: readonly EgressRule[], host: string, port: number): Verdict {
  const matching = rules.filter((rule) => rule.port === port && matches(rule.host, host));
  const deny = matching.find((rule) => rule.action === 'deny');
  if (deny)
    return { isAllowed: false, reason: `${deny.host}:${port} is denied for this group`, isDenied: true };
  const allows = matching.filter((rule) => rule.action === 'allow');
  if (allows.length === 0) {
    return { isAllowed: false, reason: `${host}:${port} is not on this group's allowlist`, isDenied: false };
  }
  const exact = allows.find((rule) => rule.host === host);
  return { isAllowed: true, isLan: (exact ?? allows[0]).isLan };
}

/** Cloud metadata services: they hand out the machine's credentials, so no rule opens them. */
const METADATA = new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200']);
/** Ranges a --lan rule may reach: the owner's own network and this machine. Never multicast, broadcast, 0.0.0.0. */
const LAN_RANGES = new Set(['private', 'loopback', 'linkLocal', 'uniqueLocal', 'carrierGradeNat']);

/** This machine's own addresses, public ones too (a service on the host must be named with --lan). */
let own: { at: number; addresses: Set<string> } | null = null;
function ownAddresses(): Set<string> {
  // Asked of the kernel at most once a second: it costs more than the rest of a request's checks together.
  if (own && Date.now() - own.at < 1000) return own.addresses;
  const addresses = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const entry of list ?? [])
      addresses.add(ipaddr.process(entry.address.replace(/%.*$/, '')).toString());
  }
  own = { at: Date.now(), addresses };
  return addresses;
}

/**
 * Why the gateway must not connect to this address, or null. An IPv4-mapped IPv6 address is judged as the IPv4
 * address it is; every other special range (NAT64, 6to4, Teredo, documentation, reserved) is refused, since some
 * of them carry an IPv4 address the kernel could route to inside the network.
 */
export function refuseAddress(address: string, isLan: boolean): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return `${address} is not an address`;
  }
  const canonical = parsed.toString();
  if (METADATA.has(canonical)) return `${canonical} is a cloud metadata address`;
  const range = parsed.range();
  if (isLan && LAN_RANGES.has(range)) return null;
  if (range !== 'unicast') return `${canonical} is a ${range} address`;
  if (!isLan && ownAddresses().has(canonical)) return `${canonical} is this machine's own address`;
  return null;
}

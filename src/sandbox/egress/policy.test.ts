import { describe, expect, it } from 'vitest';
import type { EgressRule } from '../../store/store.js';
import { decide, normalizeHost, parseRuleHost, refuseAddress } from './policy.js';

const rule = (host: string, overrides: Partial<EgressRule> = {}): EgressRule => ({
  host,
  port: 443,
  action: 'allow',
  isLan: false,
  createdAt: 0,
  ...overrides,
});

describe('egress policy', () => {
  it('classifies IPv4 addresses, odd forms included', () => {
    for (const address of [
      '127.0.0.1',
      '127.1',
      '0x7f.0.0.1',
      '2130706433',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.1.1',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
    ]) {
      expect(refuseAddress(address, false), address).not.toBeNull();
    }
    expect(refuseAddress('169.254.169.254', false)).toMatch(/cloud metadata/);
    expect(refuseAddress('93.184.216.34', false)).toBeNull();
    expect(refuseAddress('8.8.8.8', false)).toBeNull();
  });

  it('classifies IPv6 addresses, IPv4-mapped and embedded ones too', () => {
    for (const address of [
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd00:ec2::254',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:1',
      '2002:a00:1::1',
      '2001::1',
      'not-an-address',
    ]) {
      expect(refuseAddress(address, false), address).not.toBeNull();
    }
    expect(refuseAddress('::ffff:169.254.169.254', true)).toMatch(/cloud metadata/);
    expect(refuseAddress('2606:4700:4700::1111', false)).toBeNull();
    expect(refuseAddress('::ffff:8.8.8.8', false)).toBeNull();
  });

  it('lets a --lan rule reach the owner network and this machine, never metadata, multicast or 0.0.0.0', () => {
    for (const address of ['10.1.2.3', '192.168.1.10', '127.0.0.1', '::1', 'fd12::1', '100.64.1.1']) {
      expect(refuseAddress(address, true), address).toBeNull();
    }
    for (const address of ['169.254.169.254', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::', 'ff02::1']) {
      expect(refuseAddress(address, true), address).not.toBeNull();
    }
  });

  it('normalizes hosts and rule patterns, and refuses what is neither', () => {
    expect(normalizeHost('API.Example.COM.')).toBe('api.example.com');
    expect(normalizeHost('bücher.example')).toBe('xn--bcher-kva.example');
    expect(normalizeHost('[::FFFF:127.0.0.1]')).toBe('127.0.0.1');
    expect(normalizeHost('a b.com')).toBeNull();
    expect(normalizeHost('evil.com/x')).toBeNull();
    expect(normalizeHost('evil.com:80')).toBeNull();
    expect(normalizeHost('user@evil.com')).toBeNull();
    expect(normalizeHost('0x7f.1')).toBe('127.0.0.1');
    expect(normalizeHost('')).toBeNull();
    expect(parseRuleHost('*.Example.com')).toBe('*.example.com');
    expect(parseRuleHost('*.com')).toBeNull();
    expect(parseRuleHost('*.10.0.0.1')).toBeNull();
    expect(parseRuleHost('*')).toBeNull();
    expect(parseRuleHost('api.*.com')).toBeNull();
  });

  it('matches exact hosts and *.suffix, port by port; deny wins; nothing listed is refused', () => {
    const rules = [
      rule('api.example.com'),
      rule('*.corp.example'),
      rule('secret.corp.example', { action: 'deny' }),
      rule('crm.lan', { port: 8080, isLan: true }),
    ];
    expect(decide(rules, 'api.example.com', 443)).toEqual({ isAllowed: true, isLan: false });
    expect(decide(rules, 'api.example.com', 80)).toMatchObject({ isAllowed: false });
    expect(decide(rules, 'example.com', 443)).toMatchObject({ isAllowed: false });
    expect(decide(rules, 'evilapi.example.com', 443)).toMatchObject({ isAllowed: false });
    expect(decide(rules, 'a.b.corp.example', 443)).toEqual({ isAllowed: true, isLan: false });
    expect(decide(rules, 'corp.example', 443)).toMatchObject({ isAllowed: false });
    expect(decide(rules, 'evilcorp.example', 443)).toMatchObject({ isAllowed: false });
    expect(decide(rules, 'secret.corp.example', 443)).toEqual({
      isAllowed: false,
      reason: 'secret.corp.example:443 is denied for this group',
      isDenied: true,
    });
    expect(decide(rules, 'crm.lan', 8080)).toEqual({ isAllowed: true, isLan: true });
    expect(decide([], 'api.example.com', 443)).toEqual({
      isAllowed: false,
      reason: "api.example.com:443 is not on this group's allowlist",
      isDenied: false,
    });
  });
});

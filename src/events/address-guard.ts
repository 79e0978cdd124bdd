/**
 * Where a webhook may point: not at the node itself or its private network (server-side
 * request forgery). A URL is refused when its host is, or resolves to, any address that is
 * loopback, private (RFC 1918, carrier-grade NAT, IPv6 unique-local), link-local (cloud
 * metadata services live at 169.254.169.254), multicast, unspecified or reserved, unless
 * the operator allows private targets (`WEBHOOK_ALLOW_PRIVATE=1`). The check is made when
 * the webhook is created and again at every connection (`guardedLookup`, used as the
 * HTTP client's DNS lookup), so a name that resolves elsewhere later (DNS rebinding) is
 * refused at delivery.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this" network, unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // old site-local
  ['ff00::', 8], // multicast
  ['2001:db8::', 32], // documentation
  ['100::', 64], // discard
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

/** IPv4 embedded in an IPv6 address (`::ffff:a.b.c.d`, `::a.b.c.d`, NAT64 `64:ff9b::/96`), or null. */
function embeddedIpv4(address: string): string | null {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1] as string;
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = Number.parseInt(hex[1] as string, 16);
    const lo = Number.parseInt(hex[2] as string, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

/** Whether `address` (an IP literal) is one a webhook may not reach without WEBHOOK_ALLOW_PRIVATE. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== null) return blocked.check(v4, 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return true; // not an address at all: refuse
}

/** The host of a URL without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/**
 * Resolves `url`'s host (every address) and answers null when a webhook may call it, or
 * the sentence that refuses it.
 */
export async function checkWebhookTarget(url: URL, allowPrivate: boolean): Promise<string | null> {
  const host = hostOf(url);
  let addresses: string[];
  if (isIP(host) !== 0) addresses = [host];
  else {
    try {
      addresses = await new Promise<string[]>((resolve, reject) =>
        dnsLookup(host, { all: true }, (err, found: LookupAddress[]) =>
          err ? reject(err) : resolve(found.map((a) => a.address)),
        ),
      );
    } catch (err) {
      return `url host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  }
  if (allowPrivate) return null;
  const bad = addresses.find(isPrivateAddress);
  return bad === undefined
    ? null
    : `url resolves to ${bad}, a loopback, private or link-local address (allowed only with WEBHOOK_ALLOW_PRIVATE=1)`;
}

/** A DNS lookup for the HTTP client that fails when any resolved address is private (see the module comment). */
export function guardedLookup(allowPrivate: boolean) {
  return (
    hostname: string,
    options: object,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, found: LookupAddress[]) => {
      if (err) {
        callback(err, []);
        return;
      }
      const bad = allowPrivate ? undefined : found.find((a) => isPrivateAddress(a.address));
      if (bad !== undefined) {
        const refused: NodeJS.ErrnoException = new Error(
          `${hostname} resolves to ${bad.address}, a private address (WEBHOOK_ALLOW_PRIVATE is off)`,
        );
        refused.code = 'EPRIVATE';
        callback(refused, []);
        return;
      }
      if ((options as { all?: boolean }).all) callback(null, found);
      else {
        const first = found[0] as LookupAddress;
        callback(null, first.address, first.family);
      }
    });
  };
}

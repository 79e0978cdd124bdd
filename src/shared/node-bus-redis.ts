/**
 * Redis Streams node bus: node N's inbox is the stream `<prefix>inbox:<N>`, read by N on a
 * dedicated connection looping on `XREAD BLOCK` from the last id it handled, so a Redis
 * restart or reconnect resumes without losing a message (pub/sub would drop them). An
 * inbox expires an hour after its last message, so the inboxes of dead nodes go away.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { busEnvelopeCheck } from './bus-schemas.js';
import type { BusMessage, NodeBus } from './node-bus.js';
import { type OnCorrupt, readRecord } from './record-schemas.js';
import { closeRedis, type RedisTarget, redisClient } from './redis-target.js';

/** Messages kept per inbox: a node that is alive reads them within milliseconds. */
const INBOX_MAXLEN = 10_000;
/** An inbox nobody posted to for this long belongs to a dead node. */
const INBOX_TTL_S = 3600;

/** A new node id: readable in logs, unique per process lifetime. */
export function newNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** See the module comment. */
export class RedisNodeBus implements NodeBus {
  private readonly redis: Redis;
  private reader: Redis | null = null;
  private loop: Promise<void> | null = null;
  private stopped = false;

  constructor(
    url: RedisTarget | string,
    private readonly prefix: string,
    readonly nodeId: string,
    private readonly onError?: (err: Error) => void,
    /** Told about an inbox entry that is not a bus envelope (a JSON object with a short string `t`); it is dropped. */
    private readonly onCorrupt?: OnCorrupt,
  ) {
    // Posts of one tick go out as one pipeline; while Redis is down they wait in ioredis's
    // offline queue and go out on reconnect.
    this.redis = redisClient(url, { enableAutoPipelining: true, maxRetriesPerRequest: null });
    this.redis.on('error', (err: Error) => onError?.(err));
  }

  private key(node: string): string {
    return `${this.prefix}inbox:${node}`;
  }

  send(node: string, msg: BusMessage): void {
    const key = this.key(node);
    this.redis
      .multi()
      .xadd(key, 'MAXLEN', '~', String(INBOX_MAXLEN), '*', 'm', JSON.stringify(msg))
      .expire(key, INBOX_TTL_S)
      .exec()
      .catch((err: Error) => this.onError?.(err));
  }

  listen(onMessage: (msg: BusMessage) => void): void {
    if (this.reader !== null) throw new Error('node bus: already listening');
    const reader = this.redis.duplicate({ enableAutoPipelining: false });
    reader.on('error', (err: Error) => this.onError?.(err));
    this.reader = reader;
    // The id is new, so the inbox is empty or holds only messages meant for this process.
    let last = '0-0';
    const key = this.key(this.nodeId);
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const res = (await reader.xread('COUNT', 500, 'BLOCK', 2000, 'STREAMS', key, last)) as
            | [string, [string, string[]][]][]
            | null;
          for (const [, entries] of res ?? []) {
            for (const [id, fields] of entries) {
              last = id;
              const raw = fields[fields.indexOf('m') + 1];
              const msg = readRecord(
                busEnvelopeCheck,
                raw ?? '',
                'node bus inbox',
                this.onCorrupt,
              ) as BusMessage | null;
              if (msg === null) continue;
              try {
                onMessage(msg);
              } catch (err) {
                this.onError?.(err as Error);
              }
            }
          }
        } catch (err) {
          if (this.stopped) break;
          this.onError?.(err as Error);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.reader?.disconnect();
    await this.loop;
    await closeRedis(this.redis);
  }
}

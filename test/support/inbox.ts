/** Collects a client's pushes and lets a test wait for one that matches. */
export class Inbox<T> {
  readonly items: T[] = [];
  private waiters: Array<{ match: (item: T) => boolean; resolve: (item: T) => void }> = [];
  constructor(client: { on(event: 'push', fn: (msg: T) => void): unknown }) {
    client.on('push', (msg) => {
      this.items.push(msg);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(msg)) return true;
        w.resolve(msg);
        return false;
      });
    });
  }
  /** The first push (already received or still to come) that matches, or a rejection after `timeoutMs`. */
  next(match: (item: T) => boolean, timeoutMs = 15_000): Promise<T> {
    const seen = this.items.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`expected push did not arrive; got ${JSON.stringify(this.items).slice(-1500)}`)),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (item) => {
          clearTimeout(timer);
          resolve(item);
        },
      });
    });
  }
}

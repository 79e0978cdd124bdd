/**
 * An XYZ raster tile server on loopback for the map tests: every `/{z}/{x}/{y}.png`
 * answers a 256x256 PNG drawn here (a light ground with a street grid, so a screenshot looks
 * like a map), and every request (and its referrer) is recorded.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A 256x256 RGB PNG: ground, streets every 64 px (offset by the tile's x and y), a park. */
export function tilePng(x: number, y: number): Buffer {
  const size = 256;
  const rows: Buffer[] = [];
  for (let py = 0; py < size; py++) {
    const row = Buffer.alloc(1 + size * 3);
    for (let px = 0; px < size; px++) {
      const street = (px + x * 17) % 64 < 6 || (py + y * 29) % 64 < 6;
      const major = (px + x * 17) % 128 < 10 && (py + y * 29) % 256 > 8;
      const park = (x + y) % 3 === 0 && px > 150 && px < 230 && py > 150 && py < 230;
      const [r, g, b] = major ? [255, 214, 130] : street ? [255, 255, 255] : park ? [200, 230, 190] : [236, 232, 224];
      row.set([r, g, b], 1 + px * 3);
    }
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** See the module comment. */
export class TileServer {
  readonly requests: string[] = [];
  /** The `Referer` header of each request ('' when there was none), in the order of `requests`. */
  readonly referers: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  /** The template the node is given (MAP_TILE_URL). */
  get template(): string {
    return `${this.origin}/{z}/{x}/{y}.png`;
  }

  static async start(): Promise<TileServer> {
    let tiles: TileServer | undefined;
    const server = createServer((req, res) => {
      tiles?.requests.push(req.url ?? '');
      tiles?.referers.push(req.headers.referer ?? '');
      const m = /^\/(\d+)\/(\d+)\/(\d+)\.png$/.exec(req.url ?? '');
      if (m === null) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'max-age=3600' });
      res.end(tilePng(Number(m[2]), Number(m[3])));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    tiles = new TileServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return tiles;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

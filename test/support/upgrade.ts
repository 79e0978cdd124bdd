/**
 * WebSocket upgrades as a test tries them: the status the server answered and, when it
 * refused, the JSON body; on 101 the socket is kept open for the caller to close.
 */

import WebSocket from 'ws';

export interface Attempt {
  status: number;
  body: string;
  ws?: WebSocket;
}

/** Tries an upgrade; on 101 the socket stays open for the caller to close. */
export function attempt(url: string, bearer: string): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${bearer}` } });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        ws.terminate();
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    ws.once('open', () => resolve({ status: 101, body: '', ws }));
    ws.once('error', (err) => {
      if (!String(err.message).includes('Unexpected server response')) reject(err);
    });
  });
}

export async function closeAll(sockets: (WebSocket | undefined)[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (!ws || ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close();
        }),
    ),
  );
}

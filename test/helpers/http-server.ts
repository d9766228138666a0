/**
 * A small real HTTP server on 127.0.0.1 for download tests: serves in-memory files, honours
 * `Range: bytes=N-` (206/416), and can misbehave on purpose: cut a response after N bytes, ignore
 * Range, answer with an error status. It records every request so tests can check what was asked.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  range: string | undefined;
  headers: IncomingMessage['headers'];
}

export interface TestServer {
  readonly port: number;
  /** `http://127.0.0.1:<port><path>` */
  url(path: string): string;
  /** Served files by path, e.g. `/vgg16.pth`; change them at will. */
  readonly files: Map<string, Uint8Array>;
  readonly requests: RecordedRequest[];
  /** Send only the first `bytes` body bytes of the next `times` responses, then drop the connection. */
  cutAfter(bytes: number, times?: number): void;
  /** Answer Range requests with 200 and the whole file, as some servers do. */
  ignoreRange: boolean;
  /** Answer requests for `path` with this status and no file. */
  failWith(path: string, status: number): void;
  close(): Promise<void>;
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header === undefined ? null : /^bytes=(\d+)-(\d*)$/.exec(header);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start >= size || end < start ? 'unsatisfiable' : { start, end };
}

export async function startTestServer(initial: Record<string, Uint8Array> = {}): Promise<TestServer> {
  const files = new Map(Object.entries(initial));
  const requests: RecordedRequest[] = [];
  const failures = new Map<string, number>();
  let cut: { bytes: number; times: number } | undefined;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    const range = req.headers.range;
    requests.push({ method: req.method ?? 'GET', path, range, headers: req.headers });
    const status = failures.get(path);
    const body = files.get(path);
    if (status !== undefined || body === undefined) {
      res.writeHead(status ?? 404, { 'content-type': 'text/plain' }).end('no such file\n');
      return;
    }
    const parsed = server.ignoreRange ? undefined : parseRange(range, body.length);
    if (parsed === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const slice = parsed ? body.subarray(parsed.start, parsed.end + 1) : body;
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'content-length': slice.length, 'accept-ranges': 'bytes' };
    if (parsed) headers['content-range'] = `bytes ${parsed.start}-${parsed.end}/${body.length}`;
    res.writeHead(parsed ? 206 : 200, headers);
    if (cut !== undefined && cut.times > 0) {
      cut.times -= 1;
      // Drop the connection a moment after the bytes went out: fetch discards body bytes still queued
      // when the stream errors, so an instant drop would make the amount that arrives a race.
      res.write(slice.subarray(0, cut.bytes), () => setTimeout(() => res.socket?.destroy(), 250));
      return;
    }
    res.end(slice);
  };

  const http = createServer(handle);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;

  const server: TestServer = {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    files,
    requests,
    cutAfter(bytes, times = 1) {
      cut = { bytes, times };
    },
    ignoreRange: false,
    failWith(path, status) {
      failures.set(path, status);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        http.closeAllConnections();
        http.close((error) => (error ? reject(error) : resolve()));
      }),
  };
  return server;
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago), for "connection refused". */
export async function closedPort(): Promise<number> {
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  await new Promise<void>((resolve) => http.close(() => resolve()));
  return port;
}

/** `n` deterministic pseudo-random bytes (xorshift32), so test files are reproducible and incompressible. */
export function makeBytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

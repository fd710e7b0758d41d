/**
 * An instant OCSP responder on loopback for the benchmarks: answers GET (base64 request in the
 * path) and POST with a pre-signed response looked up by serial, with no signing work per request.
 * Optional `delayMs` holds each answer back, as a distant responder would.
 */
import { createServer, type Server } from 'node:http';

export async function startInstantResponder(
  lookup: (requestDer: Buffer) => Buffer | undefined,
  port = 0,
  delayMs = 0,
): Promise<{ server: Server; url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      const body =
        req.method === 'POST'
          ? Buffer.concat(chunks)
          : Buffer.from(decodeURIComponent((req.url ?? '/').replace(/^.*\//, '')), 'base64');
      const der = lookup(body);
      const answer = () => {
        if (!der) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': der.length });
        res.end(der);
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return { server, url: `http://127.0.0.1:${bound}/`, requests: () => requests };
}

// The playground's server against hostile requests (issue 23): a URL that cannot be parsed gets a 400 and the server
// stays up; errors are plain text with a charset that never echo the request; every answer says nosniff. Raw requests
// over a socket on loopback, since an HTTP client would normalise the paths that matter here.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { pathOf, serve, type Playground } from '../web/server.ts';

let pg: Playground;
before(async () => {
  // a page and an entry of its own: nothing of the playground's to bundle
  pg = await serve({ port: 0, entries: {}, pages: { '/': '<!doctype html><title>t</title>' } });
});
after(() => pg.close());

/** Sends one raw HTTP/1.1 request line and returns the status, the headers and the body. */
const raw = (requestLine: string): Promise<{ status: number; headers: string; body: string }> =>
  new Promise((resolve, reject) => {
    const { port } = pg.server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1', () => socket.end(`${requestLine}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer in 5 s')));
    socket.on('data', (d) => (text += d.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), headers: head.toLowerCase(), body: rest.join('\r\n\r\n') });
    });
  });

test('pathOf: the URLs new URL() throws on are undefined, not an exception', () => {
  assert.equal(pathOf('//a:b'), undefined);
  assert.equal(pathOf('//['), undefined);
  assert.equal(pathOf('/main.js?x=1'), '/main.js');
});

test('a URL that cannot be parsed gets a 400, and the server answers the next request', async () => {
  for (const line of ['GET //a:b HTTP/1.1', 'GET //[ HTTP/1.1']) {
    const r = await raw(line);
    assert.equal(r.status, 400, `${line}: ${r.headers}`);
    assert.match(r.headers, /content-type: text\/plain; charset=utf-8/);
    assert.match(r.headers, /x-content-type-options: nosniff/);
  }
  const ok = await raw('GET / HTTP/1.1');
  assert.equal(ok.status, 200);
  assert.match(ok.headers, /x-content-type-options: nosniff/);
});

test('a 404 is plain text with a charset and does not echo the path', async () => {
  const r = await raw('GET /%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1');
  assert.equal(r.status, 404);
  assert.match(r.headers, /content-type: text\/plain; charset=utf-8/);
  assert.doesNotMatch(r.body, /script|alert/i);
  const post = await raw('POST / HTTP/1.1');
  assert.equal(post.status, 405);
  assert.match(post.headers, /allow: get, head/);
});

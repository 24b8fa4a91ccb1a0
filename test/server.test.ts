// The playground's server against hostile requests (issue 23): a URL that cannot be parsed gets a 400 and the server
// stays up; errors are plain text with a charset that never echo the request; every answer says nosniff and carries a
// Content-Security-Policy. Raw requests over a socket on loopback, since an HTTP client would normalise the paths
// that matter here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { contentSecurityPolicy, pathOf, serve, type Playground } from '../web/server.ts';

let pg: Playground;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-server-'));
before(async () => {
  // a page and an entry of its own: nothing of the playground's to bundle
  const entry = path.join(tmp, 'entry.ts');
  fs.writeFileSync(entry, 'export const x: number = 1;\n');
  pg = await serve({ port: 0, entries: { '/main.js': entry }, pages: { '/': '<!doctype html><title>t</title>' } });
});
after(async () => {
  await pg.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

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

/** The value of one header in a raw answer's (lower-cased) head. */
const header = (headers: string, name: string): string | undefined =>
  headers
    .split('\r\n')
    .find((l) => l.startsWith(`${name}:`))
    ?.slice(name.length + 1)
    .trim();

test('the page and every asset carry the Content-Security-Policy, HEAD too; errors carry one that allows nothing', async () => {
  for (const line of [
    'GET / HTTP/1.1',
    'GET /index.html HTTP/1.1',
    'GET /style.css HTTP/1.1',
    'GET /main.js HTTP/1.1',
    'HEAD / HTTP/1.1',
  ]) {
    const r = await raw(line);
    assert.equal(r.status, 200, line);
    assert.equal(header(r.headers, 'content-security-policy'), contentSecurityPolicy.toLowerCase(), line);
  }
  for (const line of ['GET /nope HTTP/1.1', 'GET //a:b HTTP/1.1', 'POST / HTTP/1.1']) {
    const r = await raw(line);
    assert.ok(r.status >= 400, line);
    assert.match(header(r.headers, 'content-security-policy') ?? '', /^default-src 'none';.*frame-ancestors 'none'/, line);
  }
});

test("the policy: default-src 'self', no inline script or style, no plugins, no <base>, never framed", () => {
  const directives = new Map(
    contentSecurityPolicy.split(';').map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name, values] as const;
    }),
  );
  assert.deepEqual(directives.get('default-src'), ["'self'"]);
  assert.deepEqual(directives.get('object-src'), ["'none'"]);
  assert.deepEqual(directives.get('base-uri'), ["'none'"]);
  assert.deepEqual(directives.get('frame-ancestors'), ["'none'"]);
  assert.deepEqual(directives.get('style-src'), ["'self'"]);
  for (const [name, values] of directives) {
    assert.ok(!values.includes("'unsafe-inline'"), `${name} allows inline code`);
    assert.ok(
      !values.some((v) => v === '*' || v === 'http:' || v === 'https:' || (v === 'data:' && name !== 'img-src')),
      `${name}: ${values}`,
    );
  }
});

test('web/index.html has no inline script, style or event handler, which the policy would block', () => {
  const html = fs.readFileSync(new URL('../web/index.html', import.meta.url), 'utf8');
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
  assert.ok(scripts.length > 0);
  for (const [tag, attrs, body] of scripts) {
    assert.match(attrs, /\ssrc="\/[^"]*"/, `an inline script: ${tag.slice(0, 80)}`);
    assert.equal(body.trim(), '', tag.slice(0, 80));
  }
  assert.doesNotMatch(html, /<style\b/i, 'an inline <style>');
  assert.doesNotMatch(html, /\sstyle\s*=/i, 'a style attribute');
  assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'an inline event handler');
  assert.doesNotMatch(html, /javascript:/i, 'a javascript: URL');
});

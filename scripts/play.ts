// `npm run play [-- --port N] [--host H]`: bundles the browser playground (web/) with esbuild and serves it on
// localhost. The page trains diffusion models with the same library code Node runs, on WebGL2 where there is one.
import { serve } from '../web/server.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
};
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: npm run play -- [--port 8080] [--host 127.0.0.1]   (--port 0 picks a free port)');
  process.exit(0);
}
const port = Number(flag('port') ?? process.env.PORT ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`play: --port must be an integer in 0..65535, got '${flag('port')}'`);
  process.exit(2);
}
const host = flag('host') ?? '127.0.0.1';
try {
  const t0 = performance.now();
  const play = await serve({ port, host });
  console.log(`fusediff playground: ${play.url}  (bundled in ${((performance.now() - t0) / 1000).toFixed(1)} s; Ctrl-C stops it)`);
  const stop = () => void play.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  console.error(
    err.code === 'EADDRINUSE'
      ? `play: port ${port} on ${host} is in use; pick another with --port N (0 = any free port)`
      : `play: ${err.message}`,
  );
  process.exit(1);
}

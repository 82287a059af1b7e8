// The least a daemon of the agent's kind does, for its runtime's memory floor: the in-sync poll's requests (the
// listings: ten small GETs a second over keep-alive) and one `ip -j address` read a minute. Run by the bench as
// `<runtime> floor-poller.mjs URL`, beside the daemon, in the same namespace; after each poll it prints how many
// requests it has sent, so that the bench can leave them out of the daemon's count.
/* global fetch */
import { execFile } from 'node:child_process';
import { setInterval } from 'node:timers';

const base = process.argv[2];
const paths = ['mac', 'network/interfaces/macs/'];
let requests = 0;
setInterval(async () => {
  const macs = await fetch(`${base}${paths[1]}`).then((r) => r.text());
  const listings = macs
    .split('\n')
    .filter(Boolean)
    .slice(0, 8)
    .map((mac) => `${paths[1]}${mac}local-ipv4s/`);
  await Promise.all([paths[0], ...listings].map((path) => fetch(`${base}${path}`).then((r) => r.text())));
  requests += 2 + listings.length;
  process.stdout.write(`requests ${requests}\n`);
}, 1000);
setInterval(() => execFile('ip', ['-j', 'address'], () => undefined), 60_000);
execFile('ip', ['-j', 'address'], () => undefined);

// The bench's gateway process (bench/egress.ts): Warren's egress gateway as the host runs it (rules read from SQLite
// per request, every connection audited there), one group allowed one name on loopback, as
// `warren net allow bench NAME:PORT --lan` would (for each port given). Says "listening" on stdout when ready.
import path from 'node:path';
import { silentLogger } from '../src/log.js';
import { createAgentEgress } from '../src/sandbox/agent-egress.js';
import { openStore } from '../src/store/store.js';

const [socketPath, name, ...ports] = process.argv.slice(2);
if (!socketPath || !name || ports.length === 0)
  throw new Error('usage: egress-gateway.ts SOCKET NAME PORT...');
const store = openStore(path.join(path.dirname(socketPath), 'bench.db'));
for (const port of ports) {
  store.egress.set('bench', { host: name, port: Number(port), action: 'allow', isLan: true }, Date.now());
}
const gateway = createAgentEgress({
  store,
  audit: (entry) => store.audit.record(entry, Date.now()),
  now: Date.now,
  log: silentLogger(),
  config: { egressRequestsPerMinute: 1_000_000, egressMbPerDay: 0 },
  runs: new Map(),
  resolve: async (host) => (host === name ? ['127.0.0.1'] : []),
});
await gateway.listen('bench', socketPath);
process.stdout.write('listening\n');
process.on('SIGTERM', () => void gateway.close().then(() => process.exit(0)));

// The bench's gateway process (bench/egress.ts): Warren's egress gateway as the host runs it (rules read from SQLite
// per request, every connection audited there), one group allowed one name on loopback, as
// `warren net allow bench NAME:PORT --lan` would (for each port given); on the first port a secret is bound, so
// that path is intercepted (the upstream's CA from CA_FILE, as WARREN_EGRESS_CA_FILE gives it). Says "listening"
// on stdout once ready, the install's CA made.
import path from 'node:path';
import { silentLogger } from '../src/log.js';
import { createAgentEgress } from '../src/sandbox/agent-egress.js';
import { setSecret } from '../src/sandbox/egress/secrets.js';
import { openStore } from '../src/store/store.js';

const [socketPath, name, caFile, ...ports] = process.argv.slice(2);
if (!socketPath || !name || !caFile || ports.length === 0)
  throw new Error('usage: egress-gateway.ts SOCKET NAME CA_FILE INTERCEPTED_PORT PORT...');
const dataDir = path.dirname(socketPath);
const store = openStore(path.join(dataDir, 'bench.db'));
for (const port of ports) {
  store.egress.set('bench', { host: name, port: Number(port), action: 'allow', isLan: true }, Date.now());
}
setSecret(dataDir, 'BENCH_TOKEN', 'bench-secret-value-0123456789');
const binding = { header: 'Authorization', template: 'Bearer {secret}', secretName: 'BENCH_TOKEN' };
store.egress.bind('bench', { host: name, port: Number(ports[0]), ...binding }, Date.now());
const gateway = createAgentEgress({
  store,
  audit: (entry) => store.audit.record(entry, Date.now()),
  now: Date.now,
  log: silentLogger(),
  config: { egressRequestsPerMinute: 1_000_000, egressMbPerDay: 0, egressCaFile: caFile, dataDir },
  installId: 'bench',
  runs: new Map(),
  resolve: async (host) => (host === name ? ['127.0.0.1'] : []),
});
await gateway.listen('bench', socketPath);
await gateway.caCertificate();
process.stdout.write('listening\n');
process.on('SIGTERM', () => void gateway.close().then(() => process.exit(0)));

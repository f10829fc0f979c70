/**
 * The bus's store: durable acceptances (a job's row and its `queued` event, committed with
 * `synchronous=FULL`) in batches of 100 and 1,000 on a file against `:memory:`, and the
 * recovery read of 100,000 waiting jobs (`unfinished()`); a fresh process opening the file and
 * reading them prints its time and RSS once.
 *
 * @module
 */

import { SqliteStore, type SqliteStoreOptions } from "../bus/sqlite_store.ts";
import type { JobPayload } from "../bus/protocol.ts";

const dir = Deno.makeTempDirSync({ prefix: "store_bench_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
let files = 0;

/** A store and an acceptance loop that keeps its ids and seqs going across iterations. */
function acceptor(
  options: Omit<SqliteStoreOptions, "path">,
  file: boolean | string,
): (n: number) => SqliteStore {
  const path = typeof file === "string"
    ? file
    : file
    ? `${dir}/bench${files++}.sqlite`
    : ":memory:";
  const store = new SqliteStore({ ...options, path });
  let seq = 0;
  return (n) => {
    for (let i = 0; i < n; i++, seq++) {
      const id = `job-${seq}`;
      const payload: JobPayload = { priority: seq % 11, runtime: 1, name: "bench" };
      store.accept({
        id,
        owner: "producer-1",
        givenId: true,
        payload,
        seq,
        at: 1_700_000_000_000 + seq,
      });
      store.event({
        cmd: "event",
        id,
        state: "queued",
        at: 1_700_000_000_000 + seq,
        priority: payload.priority,
        owner: "producer-1",
      });
    }
    const result = store.commit();
    if (!result.ok) throw new Error(result.reason);
    return store;
  };
}

for (const batch of [100, 1_000]) {
  const group = `store: ${batch} acceptances per commit`;
  const memory = acceptor({}, false);
  const full = acceptor({ sync: "full" }, true);
  const normal = acceptor({ sync: "normal" }, true);
  Deno.bench({ group, name: ":memory:", baseline: true, n: 200, fn: () => void memory(batch) });
  Deno.bench({ group, name: "file, synchronous=FULL", n: 200, fn: () => void full(batch) });
  Deno.bench({ group, name: "file, synchronous=NORMAL", n: 200, fn: () => void normal(batch) });
}

const WAITING = 100_000;
const loaded = `${dir}/waiting.sqlite`;
{
  const fill = acceptor({ sync: "normal" }, loaded);
  for (let i = 0; i < WAITING / 1000 - 1; i++) fill(1000);
  fill(1000).close();
}
const waiting = new SqliteStore({ path: loaded });

/** A fresh process opens the file, reads the 100,000 jobs, and tells its time and RSS. */
function recoveryInChildProcess(): string {
  const store = new URL("../bus/sqlite_store.ts", import.meta.url).href;
  const code = `import { SqliteStore } from "${store}";
    const start = performance.now();
    const s = new SqliteStore({ path: ${JSON.stringify(loaded)} });
    const jobs = s.unfinished();
    const ms = performance.now() - start;
    console.log(\`\${jobs.length} jobs opened and read in \${ms.toFixed(0)} ms, RSS \${
      (Deno.memoryUsage().rss / 1e6).toFixed(0)} MB\`);`;
  const output = new Deno.Command(Deno.execPath(), { args: ["eval", code] }).outputSync();
  return new TextDecoder().decode(output.success ? output.stdout : output.stderr).trim();
}
// deno-lint-ignore no-console
console.log(`store recovery, fresh process: ${recoveryInChildProcess()}`);

Deno.bench({
  group: "store: recovery",
  name: `unfinished() of ${WAITING.toLocaleString("en")} waiting jobs`,
  n: 10,
  fn: () => {
    const jobs = waiting.unfinished();
    if (jobs.length !== WAITING) throw new Error(`${jobs.length} jobs`);
  },
});

Deno.bench({
  group: "store: recovery",
  name: "list() of the first 100 waiting jobs",
  n: 20,
  fn: () => {
    if (waiting.list({}).jobs.length !== 100) throw new Error("short list");
  },
});

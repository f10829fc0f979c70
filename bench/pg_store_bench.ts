/**
 * Durable acceptances (a job's row and its `queued` event, committed) per second: the
 * PostgreSQL store (one transaction per batch, the server's default `fsync` and
 * `synchronous_commit`) against the SQLite store on a file with `synchronous=FULL`, in batches
 * of 100 and 1,000, in one run. PostgreSQL is the throwaway cluster of
 * `tests/fixtures/pg_cluster.ts` (or `SCHED_TEST_PG_URL`); without one only SQLite runs.
 *
 * @module
 */

import { SqliteStore } from "../bus/sqlite_store.ts";
import type { JobStore } from "../bus/job_store.ts";
import type { JobPayload } from "../bus/protocol.ts";
import { pg, PG_SKIPPED } from "../tests/fixtures/pg_cluster.ts";

const dir = Deno.makeTempDirSync({ prefix: "pg_store_bench_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const payload: JobPayload = { priority: 5, runtime: 1, name: "bench" };

/** Accepts `batch` jobs and commits them, ids and seqs going on across iterations. */
function acceptor(store: JobStore, batch: number): () => Promise<void> {
  let seq = 0;
  return async () => {
    for (let i = 0; i < batch; i++) {
      const id = `j${seq}`;
      store.accept({ id, owner: "bench", givenId: true, payload, seq: seq++, at: 1 });
      store.event({ cmd: "event", id, state: "queued", at: 1, priority: 5, owner: "bench" });
    }
    const result = await store.commit();
    if (!result.ok) throw new Error(result.reason);
  };
}

const { PostgresStore } = pg === undefined ? { PostgresStore: undefined } : await import(
  "../bus/postgres_store.ts"
);

for (const batch of [100, 1000]) {
  const group = `durable acceptances, batches of ${batch}`;
  const sqlite = new SqliteStore({ path: `${dir}/bench_${batch}.sqlite`, sync: "full" });
  Deno.bench({
    name: `SqliteStore (file, synchronous=FULL), ${batch} per commit`,
    group,
    baseline: true,
    n: 50,
    fn: acceptor(sqlite, batch),
  });
  if (PostgresStore === undefined) {
    // deno-lint-ignore no-console
    console.log(`SKIPPED: PostgresStore bench: ${PG_SKIPPED}`);
    continue;
  }
  const store = await PostgresStore.open({ url: pg!.createDb(`bench_${batch}`) });
  Deno.bench({
    name: `PostgresStore (one bus), ${batch} per commit`,
    group,
    n: 50,
    fn: acceptor(store, batch),
  });
}

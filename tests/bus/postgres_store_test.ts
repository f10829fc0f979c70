import assert from "node:assert/strict";
import { PostgresStore, type RemoteBatch } from "../../bus/postgres_store.ts";
import { StoreError } from "../../bus/store_errors.ts";
import { pg, PG_SKIPPED } from "../fixtures/pg_cluster.ts";
import { storeContract } from "./store_contract.ts";
import { BusServer } from "../../bus/server.ts";
import { WsPeer } from "../fixtures/raw_ws.ts";
import type { JobPayload } from "../../bus/protocol.ts";

const ignore = pg === undefined;
const name = PG_SKIPPED === undefined ? "PostgresStore" : `PostgresStore (SKIPPED: ${PG_SKIPPED})`;

storeContract(
  name,
  (options) => PostgresStore.open({ url: pg!.createDb("contract"), ...options }),
  ignore,
);

const payload: JobPayload = { priority: 5, runtime: 1 };

function accept(store: PostgresStore, id: string, at = 1000): number {
  store.accept({ id, owner: "ann", givenId: true, payload, seq: 0, at });
  return store.event({ cmd: "event", id, state: "queued", at, priority: 5, owner: "ann" });
}

async function committed(store: PostgresStore): Promise<void> {
  const result = await store.commit();
  assert.ok(result.ok, JSON.stringify(result));
}

Deno.test({
  name: `${name}: job seqs come from PostgreSQL; a reopened store has jobs, events, counters`,
  ignore,
  fn: async () => {
    const url = pg!.createDb("reopen");
    const store = await PostgresStore.open({ url });
    accept(store, "a");
    accept(store, "b");
    await committed(store);
    assert.deepEqual([store.get("a")!.seq, store.get("b")!.seq], [0, 1]);
    store.dispatched("a", "n1", 1);
    store.event({
      cmd: "event",
      id: "a",
      state: "started",
      at: 1001,
      priority: 5,
      owner: "ann",
      scheduler: "n1",
    });
    await committed(store);
    const lastSeq = store.lastSeq;
    await store.close();
    const again = await PostgresStore.open({ url });
    assert.equal(again.lastSeq, lastSeq);
    assert.equal(again.lastJobSeq, 1);
    assert.deepEqual(again.unfinished().map((job) => [job.id, job.seq, job.state]), [
      ["a", 0, "started"],
      ["b", 1, "queued"],
    ]);
    assert.deepEqual(again.show("a")!.history.map((h) => h.state), ["queued", "started"]);
    assert.equal(again.stats().kind, "postgres");
    accept(again, "c");
    await committed(again);
    assert.equal(again.get("c")!.seq, 2);
    assert.equal(again.eventsAfter(lastSeq, undefined, 10)[0]!.seq, lastSeq + 1);
    await again.close();
  },
});

Deno.test({
  name: `${name}: two buses' stores on one database see each other's batches through the tail`,
  ignore,
  fn: async () => {
    const url = pg!.createDb("tail");
    const [a, b] = await Promise.all([
      PostgresStore.open({ url, busId: "a" }),
      PostgresStore.open({ url, busId: "b" }),
    ]);
    const seen: RemoteBatch[] = [];
    let arrived: () => void = () => {};
    await b.onRemote((batch) => {
      seen.push(batch);
      arrived();
    });
    const next = (): Promise<void> => new Promise((resolve) => arrived = resolve);
    let wait = next();
    accept(a, "x");
    await committed(a);
    await wait;
    assert.equal(seen[0]!.bus, "a");
    assert.deepEqual(seen[0]!.writes.map((w) => w.op), ["accept", "event"]);
    assert.equal(b.show("x")!.state, "queued");
    assert.equal(b.get("x")!.seq, a.get("x")!.seq);
    assert.equal(b.lastSeq, a.lastSeq);
    wait = next();
    a.event({
      cmd: "event",
      id: "x",
      state: "started",
      at: 1002,
      priority: 5,
      owner: "ann",
      scheduler: "n",
    });
    a.event({
      cmd: "event",
      id: "x",
      state: "succeeded",
      at: 1003,
      priority: 5,
      owner: "ann",
      scheduler: "n",
      final: true,
    });
    await committed(a);
    await wait;
    assert.equal(b.show("x")!.state, "succeeded");
    assert.deepEqual(b.eventsAfter(0, "ann", 10).map((e) => e.state), [
      "queued",
      "started",
      "succeeded",
    ]);
    // And the other way: a follows b only once it listens; what b wrote before is read then.
    accept(b, "y");
    await committed(b);
    const fromB: RemoteBatch[] = [];
    await a.onRemote((batch) => fromB.push(batch));
    assert.deepEqual(fromB.map((batch) => batch.bus), ["b"]);
    assert.equal(a.get("y")!.state, "queued");
    assert.equal(a.get("y")!.seq, 1);
    await Promise.all([a.close(), b.close()]);
  },
});

Deno.test({
  name: `${name}: buses starting at once migrate the schema once`,
  ignore,
  fn: async () => {
    const url = pg!.createDb("migrate");
    const stores = await Promise.all(
      Array.from({ length: 4 }, (_, i) => PostgresStore.open({ url, busId: `b${i}` })),
    );
    accept(stores[0]!, "j");
    await committed(stores[0]!);
    await Promise.all(stores.map((store) => store.close()));
  },
});

Deno.test({
  name: `${name}: an unreachable database or a bad URL is a StoreError`,
  ignore,
  fn: async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    await assert.rejects(
      PostgresStore.open({ url: `postgres://postgres@127.0.0.1:${port}/x`, connectTimeout: 2 }),
      (error) => error instanceof StoreError && /PostgreSQL at .*ECONNREFUSED/.test(error.message),
    );
    await assert.rejects(
      PostgresStore.open({ url: "not a url" }),
      (error) => error instanceof StoreError && /is not a postgres:\/\/ URL/.test(error.message),
    );
  },
});

Deno.test({
  name: `${name}: a newer schema is refused`,
  ignore,
  fn: async () => {
    const url = pg!.createDb("newer");
    const store = await PostgresStore.open({ url });
    await store.close();
    const { default: postgres } = await import("postgres");
    const sql = postgres(url, { onnotice: () => {} });
    await sql`UPDATE meta SET value = 99 WHERE key = 'schema_version'`;
    await sql.end();
    await assert.rejects(
      PostgresStore.open({ url }),
      (error) => error instanceof StoreError && /schema version 99 is newer/.test(error.message),
    );
  },
});

Deno.test({
  name: `${name}: a commit while PostgreSQL is stopped is rejected, then it recovers`,
  ignore: ignore || !pg!.owned,
  fn: async () => {
    const url = pg!.createDb("outage");
    const store = await PostgresStore.open({ url, connectTimeout: 2 });
    accept(store, "before");
    await committed(store);
    pg!.stop();
    try {
      accept(store, "lost");
      store.event({
        cmd: "event",
        id: "before",
        state: "started",
        at: 1001,
        priority: 5,
        owner: "ann",
        scheduler: "n",
      });
      const failed = await store.commit();
      assert.equal(failed.ok, false);
      assert.match(!failed.ok ? failed.reason : "", /^store unavailable: /);
      assert.deepEqual(!failed.ok && failed.rejected, ["lost"]);
      assert.equal(store.get("lost"), undefined);
      assert.equal(store.stats().unavailable, true);
      assert.equal(store.get("before")!.state, "started"); // kept, tried again
    } finally {
      pg!.start();
    }
    accept(store, "after");
    await committed(store);
    assert.equal(store.stats().unavailable, false);
    await store.close();
    const again = await PostgresStore.open({ url });
    assert.deepEqual(again.unfinished().map((job) => [job.id, job.state]), [
      ["before", "started"],
      ["after", "queued"],
    ]);
    await again.close();
  },
});

Deno.test({
  name: `${name}: a bus on PostgreSQL accepts, runs and finishes a job; a restarted bus knows it`,
  ignore,
  fn: async () => {
    const url = pg!.createDb("bus");
    const store = await PostgresStore.open({ url });
    const bus = new BusServer({ port: 0, store });
    const ws = `ws://127.0.0.1:${bus.listen().port}/`;
    try {
      await using ann = await WsPeer.open(ws);
      await ann.register({ type: "producer", protocol: 2, name: "ann" });
      await using s1 = await WsPeer.open(ws);
      await s1.register({ type: "scheduler", protocol: 2, name: "s1", slots: 1 });
      ann.send({ cmd: "job_request", id: "j1", payload: { priority: 5, runtime: 1 } });
      assert.equal((await ann.next((m) => m.id === "j1")).cmd, "accepted");
      await s1.next((m) => m.cmd === "job" && m.id === "j1");
      s1.send({ cmd: "event", id: "j1", state: "started" });
      s1.send({ cmd: "event", id: "j1", state: "succeeded", result: { exitCode: 0 } });
      await ann.next((m) => m.cmd === "event" && m.id === "j1" && m.state === "succeeded");
    } finally {
      await bus.close();
      await store.close();
    }
    const again = await PostgresStore.open({ url });
    assert.equal(again.show("j1")!.state, "succeeded");
    assert.deepEqual(again.show("j1")!.history.map((h) => h.state), [
      "queued",
      "started",
      "succeeded",
    ]);
    await again.close();
  },
});

Deno.test({
  name: `${name}: the leader forgets the log's old entries; the tables keep the jobs`,
  ignore,
  fn: async () => {
    const url = pg!.createDb("prune_log");
    const store = await PostgresStore.open({ url });
    accept(store, "a");
    await committed(store);
    assert.equal(await store.pruneLog(60_000), 0); // younger than a minute: kept
    assert.equal(await store.pruneLog(0), 1);
    await store.close();
    const again = await PostgresStore.open({ url });
    assert.deepEqual(again.unfinished().map((job) => job.id), ["a"]);
    await again.close();
  },
});

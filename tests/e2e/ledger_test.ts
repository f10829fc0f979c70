import assert from "node:assert/strict";
import { JobLedger } from "../fixtures/e2e_ledger.ts";

const ev = (id: string, state: string, scheduler?: string): { [key: string]: unknown } => ({
  cmd: "event",
  id,
  state,
  scheduler,
});

Deno.test("JobLedger counts final outcomes; an evicted job is final only if not requeued", () => {
  const ledger = new JobLedger();
  const events = [
    ev("a", "queued"),
    ev("a", "started", "s1"),
    ev("a", "evicted", "s1"),
    ev("a", "requeued"),
    ev("a", "started", "s2"),
    ev("a", "succeeded", "s2"),
    ev("b", "queued"),
    ev("b", "started", "s1"),
    ev("b", "evicted", "s1"),
    ev("c", "queued"),
    { cmd: "accepted", id: "c" },
  ];
  for (const event of events) ledger.record(event);
  assert.equal(ledger.finals("a"), 1);
  assert.equal(ledger.outcome("a"), "succeeded");
  assert.equal(ledger.outcome("b"), "evicted");
  assert.deepEqual(ledger.starts.get("a"), ["s1", "s2"]);
  assert.deepEqual(ledger.unsettled(["a", "b", "c", "d"]), [
    "c: 0 final outcomes (queued)",
    "d: 0 final outcomes (no events)",
  ]);
  assert.deepEqual(ledger.anomalies, []);
});

Deno.test("JobLedger flags a job started twice at once and events after the final one", () => {
  const ledger = new JobLedger();
  for (
    const event of [
      ev("a", "started", "s1"),
      ev("a", "started", "s2"),
      ev("a", "succeeded", "s2"),
      ev("a", "failed", "s1"),
    ]
  ) ledger.record(event);
  assert.equal(ledger.concurrent, 1);
  assert.equal(ledger.finals("a"), 2);
  assert.equal(ledger.anomalies.length, 2);
  assert.match(ledger.anomalies[0] ?? "", /a: started on s2 while running on s1/);
  assert.match(ledger.anomalies[1] ?? "", /a: failed after its final state/);
});

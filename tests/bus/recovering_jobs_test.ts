import assert from "node:assert/strict";
import { RecoveringJobs } from "../../bus/recovering_jobs.ts";
import { FakeClock } from "../fake_clock.ts";

Deno.test("RecoveringJobs: taken back by name, the rest on return, the left-overs at the grace's end", async () => {
  const clock = new FakeClock();
  const expired: string[][] = [];
  const jobs = new RecoveringJobs<string>(clock, (left) => expired.push(left));
  jobs.add("a", "a1");
  jobs.add("a", "a2");
  jobs.add("b", "b1");
  jobs.add("c", "c1");
  jobs.startGrace(1000);
  assert.equal(jobs.size, 4);
  assert.deepEqual(jobs.counts(), { a: 2, b: 1, c: 1 });
  assert.equal(jobs.take("b", "a1"), false); // a1 waits for a, not b
  assert.equal(jobs.take("a", "a1"), true);
  assert.deepEqual(jobs.rest("a"), ["a2"]);
  assert.equal(jobs.remove("c1"), true); // cancelled meanwhile
  await clock.tick(999);
  assert.deepEqual(expired, []);
  await clock.tick(1);
  assert.deepEqual(expired, [["b1"]]);
  assert.equal(jobs.size, 0);
});

Deno.test("RecoveringJobs: the timer stops once every scheduler is back, and with close", () => {
  const clock = new FakeClock();
  const jobs = new RecoveringJobs<string>(clock, () => assert.fail("nothing expires"));
  jobs.startGrace(1000); // nothing to wait for: no timer
  assert.equal(clock.pendingTimers, 0);
  jobs.add("a", "a1");
  jobs.startGrace(1000);
  assert.equal(clock.pendingTimers, 1);
  assert.equal(jobs.take("a", "a1"), true);
  assert.equal(clock.pendingTimers, 0);
  jobs.add("b", "b1");
  jobs.close();
  assert.equal(clock.pendingTimers, 0);
});

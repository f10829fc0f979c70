/**
 * Our producer and scheduler CLIs against the seed's own bus (a stand-in: `SeedBus`): each says
 * in one line that it falls back to the seed's protocol, and the producer's job runs at the
 * scheduler.
 */

import assert from "node:assert/strict";
import { cliRunner } from "../fixtures/cli_run.ts";
import { SeedBus } from "../fixtures/seed_bus.ts";
import { main as producer } from "../../producer/main.ts";
import { main as scheduler } from "../../scheduler/main.ts";

Deno.test("e2e: producer and scheduler CLIs fall back to the seed's bus and run its job", async () => {
  await using bus = new SeedBus();
  const stop = new AbortController();
  const ran = cliRunner(scheduler)(
    ["--url", bus.url, "-s", "1", "--name", "node"],
    stop.signal,
    (line) => {
      if (/job seed-1 p\d+ succeeded/.test(line)) stop.abort();
    },
  );
  await bus.until(() => bus.received.some((m) => m.type === "scheduler"));
  const args = ["--url", bus.url, "--count", "1", "-p", "0", "--runtime", "1", "--name", "p"];
  const sent = await cliRunner(producer)(args);
  assert.equal(sent.code, 0, sent.err.join("\n"));
  assert.match(sent.out.join("\n"), /the bus speaks only the seed's protocol \(no 'registered'/);
  assert.match(sent.out.at(-1)!, /produced 1 job$/);
  const { code, out } = await ran;
  assert.equal(code, 0);
  const text = out.join("\n");
  assert.match(text, /the bus speaks only the seed's protocol .*running its jobs as they come/);
  assert.match(text, /job seed-1 p\d+ started/);
  assert.deepEqual(
    bus.received.filter((m) => m.cmd === "job_request").map((m) => Object.keys(m).sort()),
    [["cmd", "payload"]],
    "the producer sent the seed's job_request",
  );
});

import assert from "node:assert/strict";
import { OutputThrottle } from "../../bus/output_throttle.ts";
import type { OutputMessage } from "../../bus/protocol.ts";
import { FakeClock } from "../fake_clock.ts";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

Deno.test("OutputThrottle coalesces a job's output per 100 ms, per stream", async () => {
  const clock = new FakeClock();
  const sent: OutputMessage[] = [];
  const throttle = new OutputThrottle((m) => sent.push(m), { clock });
  throttle.push("a", "stdout", bytes("one "));
  throttle.push("a", "stderr", bytes("oops"));
  throttle.push("a", "stdout", bytes("two"));
  await clock.tick(99);
  assert.deepEqual(sent, []);
  await clock.tick(1);
  assert.deepEqual(sent, [
    { cmd: "output", id: "a", stream: "stdout", data: "one two" },
    { cmd: "output", id: "a", stream: "stderr", data: "oops" },
  ]);
  throttle.close();
});

Deno.test("OutputThrottle keeps a character split across chunks whole", async () => {
  const clock = new FakeClock();
  const sent: OutputMessage[] = [];
  const throttle = new OutputThrottle((m) => sent.push(m), { clock });
  const e = bytes("é");
  throttle.push("a", "stdout", e.subarray(0, 1));
  await clock.tick(100);
  throttle.push("a", "stdout", e.subarray(1));
  throttle.end("a");
  assert.equal(sent.map((m) => m.data).join(""), "é");
  throttle.close();
});

Deno.test("OutputThrottle sends at most bytesPerSecond per job, then one dropped count", async () => {
  const clock = new FakeClock();
  const sent: OutputMessage[] = [];
  const throttle = new OutputThrottle((m) => sent.push(m), { clock, bytesPerSecond: 10 });
  throttle.push("a", "stdout", bytes("0123456789abcdef")); // 6 bytes over
  throttle.push("b", "stdout", bytes("xyz")); // another job has its own budget
  await clock.tick(100);
  assert.deepEqual(sent, [
    { cmd: "output", id: "a", stream: "stdout", data: "0123456789" },
    { cmd: "output", id: "b", stream: "stdout", data: "xyz" },
  ]);
  throttle.push("a", "stdout", bytes("more")); // still the same second: dropped
  await clock.tick(900); // the window is over: the count is said once
  assert.deepEqual(sent.slice(2), [
    { cmd: "output", id: "a", stream: "stdout", data: "", dropped: 10 },
  ]);
  throttle.push("a", "stdout", bytes("again")); // a new window
  throttle.end("a");
  assert.deepEqual(sent.slice(3), [{ cmd: "output", id: "a", stream: "stdout", data: "again" }]);
  throttle.close();
});

import assert from "node:assert/strict";
import { integerFlag, secondsFlag, UsageError, wsUrlFlag, wsUrlListFlag } from "../../cli/mod.ts";

/** The UsageError message `fn` throws. */
function refusal(fn: () => unknown): string {
  assert.throws(fn, UsageError);
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  return "";
}

Deno.test("integerFlag reads digits within bounds and names the flag, the bounds and the value", () => {
  assert.equal(integerFlag("--port", "0", { max: 65535 }), 0);
  assert.equal(integerFlag("--n", "7", { min: 1 }), 7);
  assert.equal(
    refusal(() => integerFlag("--port", "-1", { max: 65535 })),
    "--port must be an integer 0..65535, got '-1'",
  );
  assert.equal(
    refusal(() => integerFlag("-s", "0", { min: 1 })),
    "-s must be an integer >= 1, got '0'",
  );
  for (const text of ["2.5", "", " 1", "1e3", "0x10"]) {
    assert.throws(() => integerFlag("--n", text), UsageError, text);
  }
});

Deno.test("secondsFlag reads finite numbers of seconds at or above a minimum", () => {
  assert.equal(secondsFlag("-p", "0"), 0);
  assert.equal(secondsFlag("-t", "0.25", { exclusive: true }), 0.25);
  assert.equal(
    refusal(() => secondsFlag("-p/--period", "-1")),
    "-p/--period must be a number of seconds >= 0, got '-1'",
  );
  assert.equal(
    refusal(() => secondsFlag("-t", "0", { exclusive: true })),
    "-t must be a number of seconds > 0, got '0'",
  );
  for (const text of ["", " ", "soon", "Infinity", "NaN"]) {
    assert.throws(() => secondsFlag("-p", text), UsageError, text);
  }
});

Deno.test("wsUrlFlag takes ws:// and wss:// URLs only", () => {
  assert.equal(wsUrlFlag("--url", "ws://127.0.0.1:8101"), "ws://127.0.0.1:8101");
  assert.equal(wsUrlFlag("--url", "wss://bus.example/path"), "wss://bus.example/path");
  assert.equal(
    refusal(() => wsUrlFlag("--url", "http://x")),
    "--url must be a ws:// or wss:// URL, got 'http://x'",
  );
  for (const text of ["", "ws://", "127.0.0.1:8101"]) {
    assert.throws(() => wsUrlFlag("--url", text), UsageError, text);
  }
});

Deno.test("wsUrlListFlag takes comma-separated and repeated URLs, and names the one at fault", () => {
  assert.deepEqual(wsUrlListFlag("--url", "ws://a:1"), ["ws://a:1"]);
  assert.deepEqual(wsUrlListFlag("--url", ["ws://a:1, wss://b:2", "ws://c:3"]), [
    "ws://a:1",
    "wss://b:2",
    "ws://c:3",
  ]);
  assert.equal(
    refusal(() => wsUrlListFlag("--url", ["http://x"])),
    "--url must be a ws:// or wss:// URL, got 'http://x'",
  );
  assert.equal(
    refusal(() => wsUrlListFlag("--url", "ws://a:1,http://x")),
    "--url: the 2nd URL 'http://x' is not a ws:// or wss:// URL",
  );
  assert.equal(refusal(() => wsUrlListFlag("--url", ",ws://a:1")), "--url: the 1st URL is empty");
  assert.equal(
    refusal(() => wsUrlListFlag("--url", ["ws://a:1", "ws://b:1", "ws://a:1"])),
    "--url: the 3rd URL 'ws://a:1' repeats the 1st",
  );
  assert.equal(
    refusal(() => wsUrlListFlag("--url", Array.from({ length: 12 }, (_, i) => `ws://h:${i % 11}`))),
    "--url: the 12th URL 'ws://h:0' repeats the 1st",
  );
});

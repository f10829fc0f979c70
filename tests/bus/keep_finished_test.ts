import assert from "node:assert/strict";
import { parseKeepFinished } from "../../bus/keep_finished.ts";

Deno.test("parseKeepFinished: AGE[,N] with s, m, h, d; a count alone keeps 7 days", () => {
  assert.deepEqual(parseKeepFinished("7d,100000"), { ms: 604_800_000, count: 100_000 });
  assert.deepEqual(parseKeepFinished("90s"), { ms: 90_000, count: 100_000 });
  assert.deepEqual(parseKeepFinished(" 12h , 5 "), { ms: 43_200_000, count: 5 });
  assert.deepEqual(parseKeepFinished(",5000"), { ms: 604_800_000, count: 5000 });
  for (const bad of ["", "7", "7w", "soon", "7d,", "7d,x", "-1d"]) {
    assert.match(String(parseKeepFinished(bad)), /^expected AGE\[,N\]/, bad);
  }
  assert.match(String(parseKeepFinished("0s")), /at least 1s/);
  assert.match(String(parseKeepFinished("1d,0")), /count must be at least 1/);
});

import assert from "node:assert/strict";
import { ConnLimits } from "../../bus/conn_limits.ts";
import { RateLimiter } from "../../bus/rate_limiter.ts";
import { FakeClock } from "../fake_clock.ts";

Deno.test("RateLimiter: a burst, then the rate, one report a second over it", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({ ratePerS: 10, clock }); // burst 20
  const take = (n: number): string[] => Array.from({ length: n }, () => limiter.take());
  assert.deepEqual(new Set(take(20)), new Set(["ok"]));
  assert.deepEqual(take(3), ["report", "drop", "drop"]);
  await clock.tick(500); // 5 tokens back; reported half a second ago
  assert.deepEqual(take(6), ["ok", "ok", "ok", "ok", "ok", "drop"]);
  await clock.tick(500); // a second since the report
  assert.deepEqual(take(6), ["ok", "ok", "ok", "ok", "ok", "report"]);
  assert.equal(limiter.take(), "drop");
  await clock.tick(10_000); // full again, never more than the burst
  assert.equal(take(21).filter((v) => v === "ok").length, 20);
});

Deno.test("RateLimiter refuses a rate or burst that is not a positive number", () => {
  for (
    const options of [{ ratePerS: 0 }, { ratePerS: -1 }, { ratePerS: NaN }, {
      ratePerS: 1,
      burst: 0,
    }]
  ) {
    assert.throws(() => new RateLimiter(options), /must be a positive number/);
  }
});

Deno.test("ConnLimits: admission, the register deadline on the clock, its defaults", async () => {
  const clock = new FakeClock();
  const limits = new ConnLimits({ maxConnections: 2, registerTimeoutMs: 10_000, clock });
  assert.equal(limits.admit(0), true);
  assert.equal(limits.admit(1), true);
  assert.equal(limits.admit(2), false);
  let late = 0;
  const stopped = limits.watchRegistration(() => late++);
  limits.watchRegistration(() => late++);
  stopped();
  stopped(); // twice is harmless
  await clock.tick(9_999);
  assert.equal(late, 0);
  await clock.tick(1);
  assert.equal(late, 1);
  assert.equal(clock.pendingTimers, 0);
  assert.equal(limits.registerTimeoutReason, "no register within 10 s");
  assert.equal(limits.rateLimitReason, "rate limit: 10000 messages/s");
  const defaults = new ConnLimits();
  assert.deepEqual(
    [defaults.maxConnections, defaults.registerTimeoutMs, defaults.maxRate],
    [1000, 10_000, 10_000],
  );
  assert.throws(() => new ConnLimits({ maxConnections: 1.5 }), /'maxConnections' must be/);
  assert.throws(() => new ConnLimits({ registerTimeoutMs: 0 }), /'registerTimeoutMs' must be/);
  assert.throws(() => new ConnLimits({ maxRate: -1 }), /'maxRate' must be/);
});

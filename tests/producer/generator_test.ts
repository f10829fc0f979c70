import assert from "node:assert/strict";
import {
  gaussian,
  JobGenerator,
  MIN_GAUSS_DELAY_MS,
  mulberry32,
} from "../../producer/generator.ts";

function draw(generator: JobGenerator, n: number): Array<[number, number, number]> {
  return Array.from({ length: n }, () => {
    const { priority, runtime } = generator.nextJob();
    return [priority, runtime, generator.nextDelayMs()];
  });
}

Deno.test("JobGenerator replays the same jobs and waits for the same seed", () => {
  const options = { seed: 42, gauss: true, periodS: 1, sigmaS: 0.5 };
  assert.deepEqual(draw(new JobGenerator(options), 50), draw(new JobGenerator(options), 50));
  assert.notDeepEqual(
    draw(new JobGenerator(options), 50),
    draw(new JobGenerator({ ...options, seed: 43 }), 50),
  );
  const unseeded = new JobGenerator();
  assert.deepEqual(
    draw(new JobGenerator({ seed: unseeded.seed }), 5),
    draw(unseeded, 5),
    "the seed getter replays an unseeded run",
  );
});

Deno.test("JobGenerator draws the same jobs whether the waits are fixed or gaussian", () => {
  const fixed = new JobGenerator({ seed: 9 });
  const gauss = new JobGenerator({ seed: 9, gauss: true });
  for (let i = 0; i < 20; i++) {
    gauss.nextDelayMs();
    assert.deepEqual(fixed.nextJob(), gauss.nextJob());
  }
});

Deno.test("JobGenerator stays within its ranges and reaches both ends", () => {
  const seed = new JobGenerator({ seed: 1 }); // the seed's ranges: 0..10 and 3..15
  const narrow = new JobGenerator({ seed: 2, priority: [2, 4], runtimeS: [1, 2] });
  for (
    const [generator, [pLo, pHi], [rLo, rHi]] of [
      [seed, [0, 10], [3, 15]],
      [narrow, [2, 4], [1, 2]],
    ] as const
  ) {
    const priorities = new Set<number>();
    const runtimes = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const { priority, runtime } = generator.nextJob();
      assert.ok(Number.isInteger(priority) && priority >= pLo && priority <= pHi);
      assert.ok(Number.isInteger(runtime) && runtime >= rLo && runtime <= rHi);
      priorities.add(priority);
      runtimes.add(runtime);
    }
    assert.equal(priorities.size, pHi - pLo + 1);
    assert.equal(runtimes.size, rHi - rLo + 1);
  }
});

Deno.test("JobGenerator waits the period, or a gaussian time never below 5 ms", () => {
  assert.equal(new JobGenerator({ periodS: 0.25 }).nextDelayMs(), 250);
  const wide = new JobGenerator({ seed: 3, gauss: true, periodS: 0.01, sigmaS: 2 });
  let floored = 0;
  for (let i = 0; i < 5000; i++) {
    const delay = wide.nextDelayMs();
    assert.ok(delay >= MIN_GAUSS_DELAY_MS, `delay ${delay}`);
    if (delay === MIN_GAUSS_DELAY_MS) floored++;
  }
  assert.ok(floored > 1000, "about half the draws hit the floor");
  const narrow = new JobGenerator({ seed: 4, gauss: true, periodS: 5, sigmaS: 1 });
  const delays = Array.from({ length: 5000 }, () => narrow.nextDelayMs());
  const mean = delays.reduce((a, b) => a + b) / delays.length;
  const sd = Math.sqrt(delays.reduce((a, b) => a + (b - mean) ** 2, 0) / delays.length);
  assert.ok(Math.abs(mean - 5000) < 100, `mean ${mean}`);
  assert.ok(Math.abs(sd - 1000) < 100, `sd ${sd}`);
});

Deno.test("mulberry32 and gaussian give uniform [0, 1) and finite deviates", () => {
  const random = mulberry32(123);
  for (let i = 0; i < 1000; i++) {
    const u = random();
    assert.ok(u >= 0 && u < 1);
  }
  assert.ok(Number.isFinite(gaussian(() => 0))); // u1 = 1 - 0: no log(0)
});

Deno.test("JobGenerator rejects bad ranges, periods and sigmas", () => {
  for (
    const options of [
      { priority: [3, 1] },
      { priority: [0, 11] },
      { priority: [0.5, 2] },
      { runtimeS: [0, 5] },
      { periodS: -1 },
      { sigmaS: Number.NaN },
    ] as const
  ) {
    assert.throws(() => new JobGenerator(options), RangeError, JSON.stringify(options));
  }
});

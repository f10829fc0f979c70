// deno-lint-ignore-file no-console
/**
 * `deno task soak -- --kill-bus`: the store's promises under SIGKILLs of everything. A bus on a
 * `--data` directory (restarted on the same data directory, behind a {@linkcode TcpRelay} that
 * holds the clients' port), schedulers with a `--state-dir` each (restarted under the same name),
 * producer processes (`tests/fixtures/soak_producer.ts`, restarted under the same name: they
 * re-send their ids), sleep jobs and command jobs mixed. A monitor that resumes with `after`
 * after each bus restart records every event. Checked at the end: every accepted job has exactly
 * one final outcome (monitor), every owner heard it (producers' records, the same outcome), and
 * no job ran on two schedulers at once, from the schedulers' own records (their JSON log lines,
 * and the command jobs' wrapper lines with their pids).
 *
 * @module
 */

import { Cli } from "../fixtures/e2e_cli.ts";
import { SoakBuses } from "../fixtures/soak_buses.ts";
import { JobLedger } from "../fixtures/e2e_ledger.ts";
import {
  logIntervals,
  overlaps,
  type RunInterval,
  type WrapperRun,
  wrapperRuns,
} from "../fixtures/soak_overlaps.ts";
import { isGone } from "../process/proc_os.ts";
import { sleep } from "../../core/sleep.ts";
import { mulberry32 } from "../../producer/generator.ts";
import { type Inversion, priorityInversions, type TimedEvent } from "../fixtures/soak_priority.ts";

/** The kill-bus soak's settings (from `soak.ts`'s flags). */
export interface KillBusConfig {
  jobs: number;
  schedulers: number;
  producers: number;
  slots: number;
  killEveryS: number;
  seed: number;
  commandEvery: number;
  recoverGraceS: number;
  /**
   * 0: one bus on a `--data` directory behind a relay (`--kill-bus`); N: N buses on one
   * PostgreSQL (`store`), each restarted on its own port, every client given every bus's URL.
   */
  buses: number;
  /** With `buses`: the PostgreSQL URL; none: a throwaway cluster (`tests/fixtures/pg_cluster.ts`). */
  store?: string;
}

/** Starts that jumped a more urgent job waiting longer than this count as priority inversions. */
const INVERSION_MS = 100;
/** More inversions than this share of the starts breaks the priority promise. */
const INVERSIONS_TOO_MANY = 0.1;

interface Incarnation {
  name: string;
  cli: Cli;
  startedAt: number;
  stoppedAt?: number;
}

/** A protocol-2 monitor that reconnects after each bus restart and resumes with `after`. */
class ResumingMonitor {
  lastSeq = 0;
  connects = 0;
  resyncs = 0;
  replayedSkipped = 0;
  /** Why jobs were requeued (numbers and ids blanked), with counts. */
  readonly requeueReasons: Map<string, number> = new Map();
  /** Every event heard, with its time and priority (for the priority figure). */
  readonly events: TimedEvent[] = [];
  #socket: WebSocket | undefined;
  #stopped = false;
  #attempts = 0;
  #loop: Promise<void>;

  /** `urls`: tried in turn, one per connection (the buses of a cluster). */
  constructor(readonly urls: string[], readonly ledger: JobLedger) {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      await this.#session();
      if (!this.#stopped) await sleep(100);
    }
  }

  #session(): Promise<void> {
    const done = Promise.withResolvers<void>();
    const socket = new WebSocket(this.urls[this.#attempts++ % this.urls.length]!);
    this.#socket = socket;
    socket.onopen = () => {
      const after = this.connects++ === 0 ? {} : { after: this.lastSeq };
      socket.send(
        JSON.stringify({ cmd: "register", type: "monitor", protocol: 2, name: "soak", ...after }),
      );
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (message.cmd === "resync") this.resyncs++;
      if (message.cmd !== "event") return;
      if (typeof message.seq === "number") {
        if (message.seq <= this.lastSeq) return void this.replayedSkipped++;
        this.lastSeq = message.seq;
      }
      this.ledger.record(message);
      if (typeof message.at === "number" && typeof message.priority === "number") {
        const { id, state, at, priority, scheduler, reason } = message;
        this.events.push({
          id,
          state,
          at,
          priority,
          ...(scheduler && { scheduler }),
          ...(typeof reason === "string" && { reason }),
        });
      }
      if (message.state === "requeued") {
        const why = String(message.reason).replace(/[\w-]*\d[\w.-]*/g, "#");
        this.requeueReasons.set(why, (this.requeueReasons.get(why) ?? 0) + 1);
      }
    };
    socket.onclose = () => done.resolve();
    socket.onerror = () => {}; // onclose follows
    return done.promise;
  }

  async close(): Promise<void> {
    this.#stopped = true;
    this.#socket?.close();
    await this.#loop;
  }
}

/**
 * Runs the kill-bus soak; prints a summary.
 *
 * @param config The settings.
 * @returns 0 if every promise was kept, 1 if not.
 */
export async function killBusSoak(config: KillBusConfig): Promise<number> {
  const say = (text: string): void => console.log(`${new Date().toISOString()} soak: ${text}`);
  const random = mulberry32(config.seed);
  const dir = await Deno.makeTempDir({ prefix: "soak-kill-bus-" });
  const recoverGraceS = config.recoverGraceS;
  let store = config.store;
  if (config.buses > 0 && store === undefined) {
    const { pg, PG_SKIPPED } = await import("../fixtures/pg_cluster.ts");
    if (pg === undefined) {
      say(`no PostgreSQL to start (${PG_SKIPPED}): give --store postgres://USER@HOST:PORT/DB`);
      return 1;
    }
    store = pg.createDb("soak");
  }
  const buses = new SoakBuses(
    config.buses > 0 && store !== undefined
      ? { kind: "cluster", buses: config.buses, store, recoverGraceS }
      : { kind: "single", dataDir: `${dir}/data`, recoverGraceS },
  );
  const started = Date.now();
  const incarnations: Incarnation[] = [];
  const schedulers: Incarnation[] = [];
  /** The command jobs' processes of killed schedulers: killed, last seen alive, seen gone. */
  const deaths = new Map<number, { killedAt: number; aliveAt: number; goneAt?: number }>();
  const startScheduler = (i: number): void => {
    const name = `soak-${i + 1}`;
    const cli = Cli.run(
      "scheduler/main.ts",
      [
        ...["--url", buses.urlsFor(i), "--name", name, "-s", String(config.slots), "-t", "1"],
        ...[
          "--exec",
          "/bin/sleep",
          "--allow-command",
          "sh",
          "--state-dir",
          `${dir}/state-${i + 1}`,
        ],
        ...["--log-format", "json"],
      ],
      `${name}#${incarnations.length + 1}`,
      {
        env: { SOAK_SCHED: name, SOAK_RECORDS: `${dir}/${name}.records` },
      },
    );
    schedulers[i] = { name, cli, startedAt: Date.now() };
    incarnations.push(schedulers[i]!);
  };
  const producers: Cli[] = [];
  const perProducer = Math.ceil(config.jobs / config.producers);
  const startProducer = (p: number): void => {
    const name = `soak-p${p + 1}`;
    const count = Math.min(perProducer, config.jobs - p * perProducer);
    producers[p] = Cli.run(
      "tests/fixtures/soak_producer.ts",
      [
        ...["--url", buses.urlsFor(p), "--name", name, "--jobs", String(count)],
        ...["--seed", String(config.seed)],
        ...["--records", `${dir}/${name}.records`, "--command-every", String(config.commandEvery)],
      ],
      name,
      { permissions: ["--allow-net", "--allow-read", "--allow-write"] },
    );
  };
  const producerDone = (p: number): boolean => {
    const outcome = producers[p]!.proc.outcome;
    return outcome !== undefined && outcome.result !== "terminated"; // ended by itself
  };

  const ledger = new JobLedger();
  let monitor: ResumingMonitor | undefined;
  const kills = { bus: 0, scheduler: 0, producer: 0 };
  const busKills: { at: number; label: string; leader: boolean }[] = [];
  const stopKilling = new AbortController();
  let ok = false;
  try {
    await buses.startAll();
    monitor = new ResumingMonitor(buses.urlsFor(0).split(","), ledger);
    for (let i = 0; i < config.schedulers; i++) startScheduler(i);
    for (let p = 0; p < config.producers; p++) startProducer(p);
    say(
      `${buses.describe()}; ${config.schedulers} schedulers x ${config.slots} ` +
        `slots (--state-dir, /bin/sleep + sh command jobs 1 in ${config.commandEvery}); ` +
        `${config.producers} producer processes; ${config.jobs} jobs; a SIGKILL every ` +
        `~${config.killEveryS} s (bus, scheduler or producer); seed ${config.seed}`,
    );

    const killScheduler = async (i: number): Promise<void> => {
      const victim = schedulers[i]!;
      // Its command jobs die with it (its reaper kills their groups): when, by their pids.
      const openRuns = (): WrapperRun[] => {
        let text = "";
        try {
          text = Deno.readTextFileSync(`${dir}/${victim.name}.records`);
        } catch { /* no command job yet */ }
        return [...wrapperRuns(text).values()].filter((run) =>
          run.end === undefined && !deaths.has(run.pid)
        );
      };
      const watch = async (runs: WrapperRun[]): Promise<void> => {
        const end = Date.now() + 5000;
        let waiting = runs;
        while (waiting.length > 0 && Date.now() < end) {
          const now = Date.now();
          for (const run of waiting) {
            const death = deaths.get(run.pid)!;
            if (isGone(run.pid)) death.goneAt = now;
            else death.aliveAt = now;
          }
          waiting = waiting.filter((run) => deaths.get(run.pid)!.goneAt === undefined);
          if (waiting.length > 0) await sleep(1);
        }
      };
      const open = openRuns();
      const killedAt = victim.stoppedAt = Date.now();
      const killing = victim.cli.proc.kill();
      // Open before the kill: alive then, if this process started it (an older run, missed at
      // its own scheduler's kill, is proven alive at its start only).
      for (const run of open) {
        const aliveAt = run.start >= victim.startedAt ? killedAt : run.start;
        deaths.set(run.pid, { killedAt, aliveAt });
      }
      await watch(open);
      await killing;
      // A start line written as the kill went out (its `sh` outlived the scheduler a moment).
      const late = openRuns().filter((run) => run.start <= killedAt);
      for (const run of late) deaths.set(run.pid, { killedAt, aliveAt: run.start });
      await watch(late);
      open.push(...late);
      let held = "";
      try {
        const pid = Deno.readTextFileSync(`${dir}/state-${i + 1}/scheduler.pid`).trim();
        const status = Deno.readTextFileSync(`/proc/${pid}/status`);
        held = `; its state dir's pid ${pid} is still there: ${status.match(/^State:.*$/m)?.[0]}, ${
          status.match(/^PPid:.*$/m)?.[0]
        }, proc pid ${victim.cli.pid}`;
      } catch { /* gone, as it should be */ }
      const jobs = open.map((run) => {
        const death = deaths.get(run.pid)!;
        return `${run.id} pid ${run.pid} alive at +${death.aliveAt - killedAt} ms, gone by +${
          (death.goneAt ?? NaN) - killedAt
        } ms`;
      });
      say(
        `SIGKILL ${victim.cli.label}${jobs.length > 0 ? `; its command jobs: ${jobs}` : ""}${held}`,
      );
    };
    const killer = (async () => {
      if (config.killEveryS === 0) return;
      while (!stopKilling.signal.aborted) {
        await sleep(config.killEveryS * 1000 * (0.5 + random()), stopKilling.signal);
        if (stopKilling.signal.aborted) return;
        const roll = random();
        const pick = random();
        if (roll < 0.25) {
          kills.bus++;
          const j = Math.floor(pick * buses.count);
          const leader = buses.leader() === j;
          const label = buses.current[j]!.label;
          busKills.push({ at: Date.now(), label, leader });
          await buses.kill(j);
          say(`SIGKILL ${label}${buses.count > 1 && leader ? " (the leader)" : ""}`);
          await sleep(300);
          await buses.start(j);
        } else if (roll < 0.6) {
          kills.scheduler++;
          const i = Math.floor(pick * config.schedulers);
          await killScheduler(i);
          await sleep(300);
          startScheduler(i);
        } else {
          const live = producers.map((_, p) => p).filter((p) => !producerDone(p));
          const p = live[Math.floor(pick * live.length)];
          if (p === undefined) continue;
          kills.producer++;
          await producers[p]!.proc.kill();
          await sleep(300);
          startProducer(p);
        }
      }
    })();

    const limitMs = 60_000 + config.jobs * 40;
    let lastReport = Date.now();
    let settled = false;
    while (Date.now() - started < limitMs) {
      if (producers.every((_, p) => producerDone(p))) {
        settled = true;
        break;
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        say(`${finals(ledger)} finished; kills ${JSON.stringify(kills)}`);
      }
      await sleep(100);
    }
    stopKilling.abort();
    await killer;
    const elapsedS = (Date.now() - started) / 1000;

    // What the producers (owners) recorded.
    const accepted = new Set<string>();
    const heard = new Map<string, Set<string>>();
    const exits: string[] = [];
    for (let p = 0; p < config.producers; p++) {
      const text = await Deno.readTextFile(`${dir}/soak-p${p + 1}.records`);
      for (const line of text.split("\n")) {
        const [kind, id, outcome] = line.split(" ");
        if (kind === "accepted" && id) accepted.add(id);
        if (kind === "final" && id && outcome) {
          heard.set(id, (heard.get(id) ?? new Set()).add(outcome));
          // Its outcome may come before the answer to a re-sent request (then ignored): accepted.
          if (outcome !== "rejected") accepted.add(id);
        }
      }
      const outcome = producers[p]!.proc.outcome;
      if (outcome?.code !== 0) exits.push(`soak-p${p + 1}: ${outcome?.result ?? "still running"}`);
    }
    // The monitor may lag a bus restart: wait (bounded) until it has every accepted job's end.
    for (let i = 0; i < 300 && ledger.unsettled(accepted).length > 0; i++) await sleep(50);
    const unsettled = ledger.unsettled(accepted);
    const unheard: string[] = [];
    for (const id of accepted) {
      const outcomes = heard.get(id);
      const seen = ledger.outcome(id);
      if (!outcomes) unheard.push(`${id}: its producer heard no outcome (monitor: ${seen})`);
      else if (outcomes.size > 1 || (seen !== undefined && !outcomes.has(seen))) {
        unheard.push(`${id}: producer heard ${[...outcomes]}, monitor saw ${seen}`);
      }
    }
    const rejected = [...heard].filter(([, o]) => o.has("rejected")).length;

    // The schedulers' own records.
    const stopAt = Date.now();
    const logRuns: RunInterval[] = incarnations.flatMap((inc) =>
      logIntervals(inc.cli.lines, inc.cli.label, inc.stoppedAt ?? stopAt)
    );
    const wrapped: RunInterval[] = []; // ends: the record, or last seen alive (proven)
    const possibly: RunInterval[] = []; // ends: the record, or first seen gone (upper bound)
    let unknownEnds = 0;
    for (let i = 0; i < config.schedulers; i++) {
      let text = "";
      try {
        text = await Deno.readTextFile(`${dir}/soak-${i + 1}.records`);
      } catch { /* no command job ran there */ }
      for (const run of wrapperRuns(text).values()) {
        const death = deaths.get(run.pid);
        if (run.end === undefined && death === undefined && !isGone(run.pid)) continue; // running
        const where = `${run.scheduler} pid ${run.pid}`;
        const base = { id: run.id, where, start: run.start };
        if (run.end !== undefined) {
          wrapped.push({ ...base, end: run.end, endFrom: "record" });
          possibly.push({ ...base, end: run.end, endFrom: "record" });
        } else if (death?.goneAt !== undefined) {
          wrapped.push({ ...base, end: death.aliveAt, endFrom: "kill" });
          possibly.push({ ...base, end: death.goneAt, endFrom: "gone" });
        } else {
          unknownEnds++;
          wrapped.push({ ...base, end: run.start, endFrom: "unknown" });
        }
      }
    }
    const possibleOverlaps = overlaps(possibly);
    const logOverlaps = overlaps(logRuns);
    const commandOverlaps = overlaps(wrapped);

    const outcomes: Record<string, number> = {};
    let requeues = 0;
    for (const id of accepted) {
      const outcome = ledger.outcome(id) ?? "none";
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      requeues += (ledger.states.get(id) ?? []).filter((s) => s === "requeued").length;
    }
    const reruns = new Map<string, number>(); // how a run that was followed by another ended
    const ranAgain: string[] = []; // runs after a run that ended with an outcome: run twice
    const byJob = Map.groupBy(logRuns, (run) => run.id);
    for (const runs of byJob.values()) {
      runs.sort((a, b) => a.start - b.start);
      runs.slice(0, -1).forEach((run, i) => {
        const how = run.endFrom === "kill" ? "its scheduler killed" : run.how ?? run.endFrom;
        reruns.set(how, (reruns.get(how) ?? 0) + 1);
        if (["succeeded", "failed", "timed_out"].includes(how)) {
          const next = runs[i + 1]!;
          ranAgain.push(
            `${run.id}: ${how} on ${run.where} at ${new Date(run.end).toISOString()}, then ` +
              `started again on ${next.where} at ${new Date(next.start).toISOString()}`,
          );
        }
      });
    }
    const priority = priorityFigure(monitor.events, busKills);
    const lines = [
      `accepted ${accepted.size} of ${config.jobs} jobs (rejected ${rejected})`,
      `outcomes (monitor): ${Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(", ")}`,
      `SIGKILLs: bus ${kills.bus}, schedulers ${kills.scheduler}, producers ${kills.producer}; ` +
      `requeues ${requeues}`,
      `requeue reasons: ${
        [...monitor.requeueReasons].map(([why, n]) => `${n}x "${why}"`).join("; ")
      }`,
      `jobs run again after a run that ended with an outcome: ${ranAgain.length}`,
      `runs followed by another run of the same job: ${
        [...reruns].map(([how, n]) => `${n} ended by ${how}`).join(", ") || "none"
      }`,
      `monitor: ${monitor.connects} connections, resumed after seq, ${monitor.resyncs} resyncs, ` +
      `${monitor.replayedSkipped} replayed events already seen`,
      `jobs without exactly one final outcome (monitor): ${unsettled.length}`,
      `jobs whose owner missed or disagreed on the outcome: ${unheard.length}`,
      `producers that did not end by themselves with code 0: ${exits.length}`,
      `runs checked from the schedulers' logs: ${logRuns.length}; overlaps ${logOverlaps.length}`,
      `command-job runs checked from their own records: ${wrapped.length} ` +
      `(${unknownEnds} with an unknown end); overlaps ${commandOverlaps.length} proven (a run ` +
      `started while the other's process was seen alive), ${possibleOverlaps.length} possible (before ` +
      `it was seen gone)`,
      `started while already running (bus events): ${ledger.concurrent}; other anomalies ` +
      `(events after the final one): ${ledger.anomalies.length - ledger.concurrent}`,
      ...priority.lines,
      `elapsed ${elapsedS.toFixed(1)} s (${(accepted.size / elapsedS).toFixed(0)} jobs/s)`,
    ];
    if (!settled) lines.push(`GAVE UP after ${limitMs / 1000} s: producers still wait`);
    if (priority.tooMany) lines.push(`TOO MANY priority inversions (over ${priority.limit})`);
    for (const line of lines) say(line);
    const problems = [
      ...unsettled,
      ...unheard,
      ...exits,
      ...logOverlaps,
      ...commandOverlaps,
      ...ranAgain,
      ...ledger.anomalies,
    ];
    for (const line of problems.slice(0, 30)) say(`  ${line}`);
    for (const line of possibleOverlaps.slice(0, 10)) say(`  possible: ${line}`);
    for (const line of priority.examples) say(`  inversion: ${line}`);
    ok = settled && problems.length === 0 && monitor.resyncs === 0 && !priority.tooMany &&
      accepted.size === config.jobs && unknownEnds === 0;
    say(ok ? "PASS: every promise kept" : `FAIL (records kept in ${dir})`);
    return ok ? 0 : 1;
  } finally {
    stopKilling.abort();
    await Promise.all(producers.map((cli) => cli.proc.terminate()));
    await monitor?.close();
    await Promise.all(schedulers.map((inc) => inc.cli.proc.terminate()));
    await buses.close();
    if (ok) await Deno.remove(dir, { recursive: true });
    else {
      for (const cli of [...buses.all, ...incarnations.map((inc) => inc.cli)]) {
        await Deno.writeTextFile(`${dir}/${cli.label}.log`, cli.lines.join("\n") + "\n");
      }
      const events = monitor?.events.map((event) => JSON.stringify(event)) ?? [];
      await Deno.writeTextFile(`${dir}/monitor.events`, events.join("\n") + "\n");
    }
  }
}

function finals(ledger: JobLedger): number {
  let n = 0;
  for (const id of ledger.states.keys()) n += ledger.finals(id) > 0 ? 1 : 0;
  return n;
}

/** A start within this long after a bus SIGKILL counts as "after a bus kill". */
const AFTER_KILL_MS = 3000;

/**
 * The priority figure: starts that jumped a more urgent job waiting in the queue over
 * {@linkcode INVERSION_MS}, how many came soon after a bus SIGKILL, and whether there are too
 * many; apart, the jobs held for a scheduler that never got them (see `soak_priority.ts`).
 */
function priorityFigure(
  events: TimedEvent[],
  busKills: { at: number; leader: boolean }[],
): { lines: string[]; examples: string[]; tooMany: boolean; limit: number } {
  const all = priorityInversions(events, INVERSION_MS);
  const inQueue = all.filter((inv) => !inv.lost);
  const held = all.filter((inv) => inv.lost);
  const starts = events.filter((event) => event.state === "started").length;
  const near = (leader: boolean) => (at: number): boolean =>
    busKills.some((kill) =>
      (!leader || kill.leader) && at >= kill.at && at - kill.at < AFTER_KILL_MS
    );
  const afterKill = inQueue.filter((inv) => near(false)(inv.at)).length;
  const afterLeaderKill = inQueue.filter((inv) => near(true)(inv.at)).length;
  const ms = (list: Inversion[]): string => {
    const waited = list.map((inv) => inv.waitedMs).sort((a, b) => a - b);
    return `median ${waited[waited.length >> 1] ?? 0} ms, max ${waited.at(-1) ?? 0} ms`;
  };
  const heldJobs = new Set(held.map((inv) => inv.waiting));
  const limit = Math.ceil(starts * INVERSIONS_TOO_MANY);
  const pct = starts === 0 ? 0 : (100 * inQueue.length) / starts;
  return {
    lines: [
      `priority inversions (a start while a more urgent job had waited in the queue > ` +
      `${INVERSION_MS} ms): ${inQueue.length} of ${starts} starts (${pct.toFixed(2)} %); ` +
      `${afterKill} within ${AFTER_KILL_MS / 1000} s after a bus SIGKILL (${afterLeaderKill} ` +
      `after the leader's); the urgent job had waited ${ms(inQueue)}`,
      `jobs held for a scheduler that never got them (sent through a bus that died, requeued ` +
      `later): ${heldJobs.size}; ${held.length} less urgent starts meanwhile (${ms(held)} after ` +
      `the held job was queued)`,
    ],
    examples: [...inQueue.slice(0, 6), ...held.slice(0, 2)].map((inv) =>
      `${new Date(inv.at).toISOString().slice(11, 23)} ${inv.started} (priority ` +
      `${inv.startedPriority}) started on ${inv.scheduler} while ${inv.waiting} (priority ` +
      `${inv.waitingPriority}) had ${inv.lost ? "been held" : "waited"} ${inv.waitedMs} ms`
    ),
    tooMany: inQueue.length > limit,
    limit,
  };
}

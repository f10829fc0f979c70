/**
 * End to end: command jobs through the real CLIs — a bus, two schedulers (one labelled
 * gpu=a100), `deno task submit` and `deno task jobs` as child processes: exit codes, output
 * tails, placement by label, live output, cancel, priority changes, the allow-list's waiting
 * reason, and no process left behind.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Cli, descendants, startBus, survivors } from "../fixtures/e2e_cli.ts";

/** The CLIs one test starts, all stopped (killed if still running) at its end. */
class Clis implements AsyncDisposable {
  readonly all: Cli[] = [];

  constructor(readonly url: string) {}

  /** Starts a scheduler with `slots` slots and waits until it has registered. */
  async scheduler(name: string, slots: number, args: string[]): Promise<Cli> {
    const cli = this.add(Cli.run("scheduler/main.ts", [
      ...["--url", this.url, "--name", name, "-s", String(slots), "-t", "30", ...args],
    ], name));
    await cli.waitFor(new RegExp(`registered: ${slots} slots`));
    return cli;
  }

  /** Starts `submit` with the bus's URL, as owner e2e. */
  submit(args: string[], label = "submit"): Cli {
    return this.add(
      Cli.run("producer/submit.ts", ["--url", this.url, "--owner", "e2e", ...args], label),
    );
  }

  /** Runs `jobs` to its end; returns its exit code and output. */
  async jobs(args: string[]): Promise<{ code: number | null; text: string }> {
    const cli = this.add(
      Cli.run(
        "producer/jobs.ts",
        ["--url", this.url, "--owner", "e2e", ...args],
        `jobs ${args[0]}`,
      ),
    );
    return { code: await cli.exitCode(), text: cli.text };
  }

  /** `jobs <args> --json`, parsed. */
  async json<T>(args: string[]): Promise<T> {
    const { code, text } = await this.jobs([...args, "--json"]);
    assert.equal(code, 0, text);
    return JSON.parse(text) as T;
  }

  /** The ids of the jobs waiting in the bus, in dispatch order, among `ids`. */
  async queued(ids: string[]): Promise<string[]> {
    const { jobs } = await this.json<{ jobs: { id: string }[] }>(["list", "--state", "queued"]);
    return jobs.map((job) => job.id).filter((id) => ids.includes(id));
  }

  /** Submits a job without waiting; returns its id. */
  async submitted(args: string[]): Promise<string> {
    const cli = this.submit(args);
    assert.equal(await cli.exitCode(), 0, cli.text);
    return idOf(cli);
  }

  private add(cli: Cli): Cli {
    this.all.push(cli);
    return cli;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const cli of this.all.toReversed()) await cli[Symbol.asyncDispose]();
  }
}

/** The job id a submit printed first. */
function idOf(submit: Cli): string {
  const id = submit.lines.find((line) => /^j-[0-9a-f]{12}$/.test(line));
  assert.ok(id, `no job id in:\n${submit.text}`);
  return id;
}

Deno.test("e2e: command jobs through submit and jobs: codes, tails, labels, follow, cancel, priority", async () => {
  const dir = await Deno.makeTempDir({ prefix: "command_jobs_" });
  const [bus, url] = await startBus();
  await using _bus = bus;
  await using clis = new Clis(url);
  try {
    const [gpu, plain] = await Promise.all([
      clis.scheduler("gpu", 2, ["--label", "gpu=a100", "--allow-command", "sh"]),
      clis.scheduler("plain", 3, ["--allow-command", "sh"]),
    ]);

    // On an idle cluster the bus picks the scheduler with the most free slots (plain): the
    // label sends this one to gpu.
    const labelled = clis.submit(
      ["--wait", "--require", "gpu=a100", "--name", "on-gpu", "--", "sh", "-c", "echo labelled"],
    );
    assert.equal(await labelled.exitCode(), 0, labelled.text);
    assert.ok(labelled.lines.includes("labelled"), labelled.text);
    const shown = await clis.json<{ scheduler?: string; name?: string; state: string }>(
      ["show", idOf(labelled)],
    );
    assert.deepEqual([shown.scheduler, shown.name, shown.state], ["gpu", "on-gpu", "succeeded"]);

    // Started together: a failure with its tails, one whose output is followed live, one
    // running to be cancelled.
    const go = join(dir, "go");
    const failing = clis.submit(["--wait", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    const followed = clis.submit([
      ...["--follow", "--", "sh", "-c"],
      `echo line one; while [ ! -e '${go}' ]; do sleep 0.02; done; echo line two`,
    ], "follow");
    const running = clis.submit(["--follow", "--", "sh", "-c", "echo running; exec sleep 30"]);

    assert.equal(await failing.exitCode(), 3, failing.text);
    assert.ok(failing.lines.includes("out"), failing.text);
    assert.ok(failing.lines.includes("err"), failing.text);
    assert.match(failing.text, /failed: exit code 3/);

    // --follow: the first line arrives while the job still runs (it waits for our file).
    await followed.waitFor(/^line one$/);
    await running.waitFor(/^running$/);
    assert.notEqual(followed.proc.state, "ended", followed.text);
    const jobProcesses = [...descendants(gpu.pid), ...descendants(plain.pid)];
    assert.ok(jobProcesses.length >= 2, `the jobs' processes: ${jobProcesses}`);
    await Deno.writeTextFile(go, "");
    assert.equal(await followed.exitCode(), 0, followed.text);
    assert.ok(followed.lines.includes("line two"), followed.text);

    // jobs cancel on a running job: its submit exits 126.
    const cancel = await clis.jobs(["cancel", idOf(running)]);
    assert.equal(cancel.code, 0, cancel.text);
    assert.equal(await running.exitCode(), 126, running.text);

    // Waiting jobs: no scheduler has gpu=h100; one not on any allow-list.
    const first = await clis.submitted(["--require", "gpu=h100", "--name", "wait-a", "--", "sh"]);
    const second = await clis.submitted(["--require", "gpu=h100", "--name", "wait-b", "--", "sh"]);
    const refused = await clis.submitted(["--name", "py", "--", "python3", "-c", "print(1)"]);
    assert.deepEqual(await clis.queued([first, second]), [first, second]);
    const priority = await clis.jobs(["priority", second, "0"]);
    assert.equal(priority.code, 0, priority.text);
    assert.deepEqual(await clis.queued([first, second]), [second, first]);

    const list = await clis.jobs(["list", "--state", "queued"]);
    assert.equal(list.code, 0, list.text);
    const row = (id: string): string => list.text.split("\n").find((l) => l.startsWith(id)) ?? "";
    assert.match(row(refused), /no scheduler allows command python3$/, list.text);
    assert.match(row(first), /no scheduler with gpu=h100/, list.text);

    // jobs cancel on a waiting job: jobs wait exits 126.
    for (const id of [first, second, refused]) {
      const { code, text } = await clis.jobs(["cancel", id]);
      assert.equal(code, 0, text);
    }
    const waited = await clis.jobs(["wait", first]);
    assert.equal(waited.code, 126, waited.text);

    // Everything stops cleanly and leaves no process behind.
    for (const scheduler of [gpu, plain]) scheduler.signal("SIGTERM");
    assert.deepEqual(await Promise.all([gpu.exitCode(), plain.exitCode()]), [0, 0]);
    assert.deepEqual(await survivors(jobProcesses), [], "a job's process was left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

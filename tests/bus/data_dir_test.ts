import assert from "node:assert/strict";
import { DATA_FILE, openDataDir, PID_FILE } from "../../bus/data_dir.ts";
import { DataDirError, DataDirInUseError } from "../../bus/store_errors.ts";

const DATA_DIR = new URL("../../bus/data_dir.ts", import.meta.url).href;

function withTempDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = Deno.makeTempDirSync();
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

Deno.test(
  "openDataDir creates the directory, keeps jobs across a reopen, writes bus.pid",
  withTempDir((root) => {
    const dir = `${root}/a/sched-data`;
    const store = openDataDir(dir, { sync: "full" });
    store.accept({
      id: "j",
      owner: "ann",
      givenId: true,
      payload: { priority: 1, runtime: 1 },
      seq: 0,
      at: 1,
    });
    assert.ok(store.commit().ok);
    assert.equal(Deno.readTextFileSync(`${dir}/${PID_FILE}`), `${Deno.pid}\n`);
    store.close();
    const again = openDataDir(dir);
    assert.equal(again.get("j")!.owner, "ann");
    again.close();
  }),
);

Deno.test(
  "openDataDir refuses a directory another running bus holds; the lock dies with it",
  withTempDir(async (root) => {
    const dir = `${root}/sched-data`;
    const code = `import { openDataDir } from "${DATA_DIR}";
      openDataDir(${
      JSON.stringify(dir)
    }); console.log("ready"); await Deno.stdin.read(new Uint8Array(1));`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the child bus ended: ${out}`);
      out += value;
    }
    assert.throws(
      () => openDataDir(dir),
      (error) =>
        error instanceof DataDirInUseError && error.pid === child.pid &&
        error.message === `data directory ${dir} is in use by another bus (pid ${child.pid})`,
    );
    // Another process is refused as well.
    const other = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { openDataDir } from "${DATA_DIR}";
        try { openDataDir(${JSON.stringify(dir)}); } catch (e) { console.log(e.name); }`,
      ],
    }).outputSync();
    assert.equal(new TextDecoder().decode(other.stdout).trim(), "DataDirInUseError");
    child.kill("SIGKILL"); // no clean-up: the lock goes with the process
    await child.status;
    await child.stdin.close().catch(() => {});
    await reader.cancel();
    const store = openDataDir(dir);
    assert.equal(Deno.readTextFileSync(`${dir}/${PID_FILE}`), `${Deno.pid}\n`);
    store.close();
  }),
);

Deno.test(
  "openDataDir refuses a file of garbage and leaves it untouched",
  withTempDir((dir) => {
    const garbage = new TextEncoder().encode("this is not a database, just bytes ".repeat(200));
    Deno.writeFileSync(`${dir}/${DATA_FILE}`, garbage);
    assert.throws(
      () => openDataDir(dir),
      (error) =>
        error instanceof DataDirError &&
        error.message === `${dir}/${DATA_FILE} is not a SQLite database (corrupt?): ` +
            "nothing was changed",
    );
    assert.deepEqual(Deno.readFileSync(`${dir}/${DATA_FILE}`), garbage);
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), [DATA_FILE]);
  }),
);

Deno.test(
  "openDataDir: a directory that is a file, or cannot be created, is a clear error",
  withTempDir((dir) => {
    const file = `${dir}/plain`;
    Deno.writeTextFileSync(file, "x");
    assert.throws(
      () => openDataDir(file),
      (error) =>
        error instanceof DataDirError &&
        error.message === `data directory ${file} is not a directory`,
    );
    assert.throws(
      () => openDataDir(`${file}/sub`),
      (error) =>
        error instanceof DataDirError &&
        error.message.startsWith(`cannot read data directory ${file}/sub: `),
    );
    Deno.mkdirSync(`${dir}/d/${DATA_FILE}`, { recursive: true });
    assert.throws(
      () => openDataDir(`${dir}/d`),
      (error) => error instanceof DataDirError && /bus.sqlite/.test(error.message),
    );
  }),
);

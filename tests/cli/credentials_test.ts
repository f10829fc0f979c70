import assert from "node:assert/strict";
import { readCredentials, TOKEN_ENV, UsageError } from "../../cli/mod.ts";

const WS = "ws://127.0.0.1:8101";
const WSS = "wss://127.0.0.1:8101";
const SECRET = "sched_s3cr3t-AbC_xyz";
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const noEnv = (): undefined => undefined;

/** The UsageError message `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  assert.fail("no UsageError");
}

Deno.test("readCredentials: nothing given, nothing passed on", () => {
  assert.deepEqual(readCredentials({}, WS, { env: noEnv }), {});
  assert.deepEqual(readCredentials({}, WS, { env: () => "  " }), {}); // empty counts as unset
});

Deno.test("readCredentials reads $SCHED_TOKEN, trimmed", () => {
  const env = (name: string): string | undefined => name === TOKEN_ENV ? ` ${SECRET}\n` : undefined;
  assert.deepEqual(readCredentials({}, WS, { env }), { token: SECRET });
});

Deno.test("readCredentials reads --token-file's first line, trimmed, before $SCHED_TOKEN", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/token`;
    await Deno.writeTextFile(file, `  ${SECRET}  \r\nsecond line\n`);
    const env = (): string => "sched_from_env";
    assert.deepEqual(readCredentials({ "token-file": file }, WS, { env }), { token: SECRET });
    await Deno.writeTextFile(file, "\nsched_on_line_two\n");
    assert.equal(
      refusal(() => readCredentials({ "token-file": file }, WS, { env })),
      `--token-file '${file}': its first line is empty`,
    );
    await Deno.writeTextFile(file, "");
    assert.match(refusal(() => readCredentials({ "token-file": file }, WS)), /first line is empty/);
    assert.equal(
      refusal(() => readCredentials({ "token-file": `${dir}/none` }, WS)),
      `--token-file: cannot read '${dir}/none': no such file`,
    );
    assert.match(
      refusal(() => readCredentials({ "token-file": dir }, WS)),
      new RegExp(`^--token-file: cannot read '${dir}': .+`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readCredentials refuses a token with spaces or control characters, without showing it", () => {
  for (const bad of ["sched_a b", "sched_\u0001x", "sched_é"]) {
    const fromEnv = refusal(() => readCredentials({}, WS, { env: () => bad }));
    assert.equal(
      fromEnv,
      "$SCHED_TOKEN: the token must be 1..4096 visible ASCII characters, without spaces",
    );
    const fromFile = refusal(() =>
      readCredentials({ "token-file": "t" }, WS, { readFile: () => bad })
    );
    assert.ok(!fromFile.includes(bad) && !fromFile.includes("sched_"), fromFile);
  }
});

Deno.test("readCredentials reads --ca for a wss:// URL, and says what is wrong otherwise", () => {
  const readFile = (path: string): string => {
    if (path === "ca.pem") return PEM;
    if (path === "key.pem") return "-----BEGIN PRIVATE KEY-----\n";
    throw new Deno.errors.NotFound(`readfile '${path}'`);
  };
  assert.deepEqual(readCredentials({ ca: "ca.pem" }, WSS, { env: noEnv, readFile }), {
    caCerts: [PEM],
  });
  assert.equal(
    refusal(() => readCredentials({ ca: "ca.pem" }, WS, { env: noEnv, readFile })),
    `--ca is for a wss:// bus, but the URL is '${WS}'`,
  );
  assert.equal(
    refusal(() => readCredentials({ ca: "key.pem" }, WSS, { env: noEnv, readFile })),
    "--ca 'key.pem': no PEM certificate in it",
  );
  assert.equal(
    refusal(() => readCredentials({ ca: "gone.pem" }, WSS, { env: noEnv, readFile })),
    "--ca: cannot read 'gone.pem': no such file",
  );
});

Deno.test("readCredentials with several URLs: --ca needs every one to be wss://", () => {
  const readFile = (): string => PEM;
  const both = [WSS, "wss://10.0.0.2:8101"];
  assert.deepEqual(readCredentials({ ca: "ca.pem" }, both, { env: noEnv, readFile }), {
    caCerts: [PEM],
  });
  assert.equal(
    refusal(() => readCredentials({ ca: "ca.pem" }, [WSS, WS], { env: noEnv, readFile })),
    `--ca is for a wss:// bus, but the URL is '${WS}'`,
  );
});

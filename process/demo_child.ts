/**
 * The process demo's job: `demo_child.ts <seconds> [exit code]` prints what it does, sleeps,
 * and exits with the given code (0 by default). Needs no permission.
 *
 * @module
 */

const seconds = Number(Deno.args[0] ?? "1");
const code = Number(Deno.args[1] ?? "0");
const say = (text: string): void => {
  Deno.stdout.writeSync(new TextEncoder().encode(`    [child ${Deno.pid}] ${text}\n`));
};

say(`sleeping ${seconds} s`);
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
say(`done, exiting with ${code}`);
Deno.exit(code);

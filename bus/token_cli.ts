/**
 * `deno task bus -- token add|list|revoke`: edits the bus's token file (`--auth FILE`).
 *
 * @module
 */

import {
  type CliIo,
  type Flags,
  formatUsage,
  type MainOptions,
  runCli,
  UsageError,
} from "../cli/mod.ts";
import { TOKEN_ROLES, TokenFileError, type TokenRole, TokenStore } from "./token_store.ts";

/** The token file when `--auth` is not given. */
export const DEFAULT_AUTH_FILE = "sched-auth.json";

/** The usage text of `deno task bus -- token`. */
export const TOKEN_USAGE: string = formatUsage({
  command: "deno task bus -- token",
  about: `Manages the bus's tokens (its --auth file): each has a name, a role and the
SHA-256 hash of its secret. The secret is printed once, by add, and never stored.
A running bus sees a change within a second or two (a revoked token's
connections are closed).`,
  sections: [{
    title: "Commands",
    rows: [
      ["add NAME --role ROLE", `new token; ROLE: ${TOKEN_ROLES.join(", ")}`],
      ["list", "name, role and creation time of each token"],
      ["revoke NAME", "removes a token"],
    ],
  }, {
    title: "Options",
    rows: [
      ["--auth FILE", `the token file, mode 0600 (default ${DEFAULT_AUTH_FILE})`],
      ["--role ROLE", "the role of the token add makes"],
      ["-h, --help", "show this help"],
    ],
  }, {
    title: "Exit codes",
    rows: [
      ["0", "done"],
      ["1", "the file cannot be read or written, or no such token to revoke"],
      ["2", "bad command line"],
    ],
  }],
  examples: [
    "deno task bus -- token add alice --role producer",
    "deno task bus -- token list --auth /etc/sched/auth.json",
    "deno task bus -- token revoke alice",
  ],
});

const OPTIONS = {
  auth: { type: "string", default: DEFAULT_AUTH_FILE },
  role: { type: "string" },
} as const;

type TokenCommand =
  | { op: "add"; file: string; name: string; role: TokenRole }
  | { op: "list"; file: string }
  | { op: "revoke"; file: string; name: string };

/**
 * Runs `token add|list|revoke` (what `deno task bus -- token …` runs).
 *
 * @param args The arguments after `token`.
 * @param options Injection points for tests: output, clock.
 * @returns The exit code: 0 done, 1 the file cannot be read or written or no such token, 2 a
 *   bad command line.
 * @example
 * ```ts
 * import { tokenMain } from "./token_cli.ts";
 * const dir = await Deno.makeTempDir();
 * const out: string[] = [];
 * const code = await tokenMain(["add", "alice", "--role", "producer", "--auth", `${dir}/a.json`], {
 *   stdout: (line) => out.push(line),
 *   stderr: () => {},
 * });
 * console.log(code, out[0]?.startsWith("sched_")); // 0 true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function tokenMain(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    { name: "bus token", usage: TOKEN_USAGE, options: OPTIONS, positionals: true, configure, run },
    args,
    options,
  );
}

function configure({ values, positionals }: Flags<typeof OPTIONS>): TokenCommand {
  const [op, name, ...extra] = positionals;
  const file = values.auth;
  if (file.trim() === "") throw new UsageError("--auth must not be empty");
  const wants = op === "add" || op === "revoke" ? 1 : 0;
  if (op !== "add" && op !== "list" && op !== "revoke") {
    throw new UsageError(
      op === undefined ? "a command is needed: add, list or revoke" : `unknown command '${op}'`,
    );
  }
  if (wants === 1 && name === undefined) throw new UsageError(`${op} needs a token NAME`);
  const unexpected = wants === 1 ? extra[0] : name;
  if (unexpected !== undefined) throw new UsageError(`unexpected argument '${unexpected}'`);
  if (op !== "add" && values.role !== undefined) throw new UsageError(`${op} takes no --role`);
  if (op === "list") return { op, file };
  if (op === "revoke") return { op, file, name: name! }; // checked above
  const role = values.role;
  if (role === undefined) throw new UsageError(`add needs --role (${TOKEN_ROLES.join(", ")})`);
  if (!TOKEN_ROLES.includes(role as TokenRole)) {
    throw new UsageError(`--role must be one of ${TOKEN_ROLES.join(", ")}, got '${role}'`);
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name!)) {
    throw new UsageError(
      `a token name must be 1..64 letters, digits, '_', '.' or '-', got '${name}'`,
    );
  }
  return { op, file, name: name!, role: role as TokenRole };
}

async function run(command: TokenCommand, io: CliIo): Promise<number> {
  try {
    const store = await TokenStore.load(command.file, {
      missingOk: command.op === "add",
      clock: io.clock,
    });
    switch (command.op) {
      case "add": {
        const secret = await store.add(command.name, command.role);
        io.out(secret);
        io.err(
          `token "${command.name}" (${command.role}) added to ${command.file}: the secret above ` +
            "is shown once; give it to the client as SCHED_TOKEN or in a --token-file",
        );
        return 0;
      }
      case "list": {
        const tokens = store.list();
        if (tokens.length === 0) io.err(`no tokens in ${command.file}`);
        const width = Math.max(4, ...tokens.map((t) => t.name.length));
        if (tokens.length > 0) io.out(`${"NAME".padEnd(width)}  ROLE       CREATED`);
        for (const t of tokens) {
          io.out(`${t.name.padEnd(width)}  ${t.role.padEnd(9)}  ${t.createdAt}`);
        }
        return 0;
      }
      case "revoke": {
        if (!(await store.revoke(command.name))) {
          io.err(`bus token: no token named "${command.name}" in ${command.file}`);
          return 1;
        }
        io.err(`token "${command.name}" revoked (a running bus closes its connections)`);
        return 0;
      }
    }
  } catch (error) {
    if (!(error instanceof TokenFileError) && !(error instanceof RangeError)) throw error;
    io.err(`bus token: ${error.message}`);
    return 1;
  }
}

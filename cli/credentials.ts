/**
 * What every CLI that talks to the bus reads the same way: the bus token (from `SCHED_TOKEN` or
 * `--token-file FILE`, never from a flag's value, which `ps` would show) and a private CA for
 * `wss://` (`--ca FILE`).
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** The environment variable holding the bus token. */
export const TOKEN_ENV = "SCHED_TOKEN";

/** The flags of {@linkcode readCredentials}, to spread into a CLI's flags. */
export const CREDENTIAL_FLAGS = {
  "token-file": { type: "string" },
  ca: { type: "string" },
} as const;

/** The usage rows of {@linkcode CREDENTIAL_FLAGS}, to spread into a CLI's usage section. */
export const CREDENTIAL_USAGE_ROWS: [string, string][] = [
  [
    "--token-file FILE",
    `the bus token (bus with --auth): FILE's first line (default $${TOKEN_ENV})`,
  ],
  ["--ca FILE", "trust the CA certificate(s) in FILE (PEM) for a wss:// bus"],
];

/** What a CLI passes on to its bus client. */
export interface Credentials {
  /** The bus token, if any: `Authorization: Bearer …` on every connection. */
  token?: string;
  /** PEM certificates of the CAs trusted for `wss://` besides the system's. */
  caCerts?: string[];
}

/** The flags' values, as `parseFlags` gives them. */
export interface CredentialValues {
  /** `--token-file FILE`. */
  "token-file"?: string | undefined;
  /** `--ca FILE`. */
  ca?: string | undefined;
}

/** Where {@linkcode readCredentials} reads from. */
export interface CredentialSources {
  /**
   * Reads an environment variable.
   * @default {Deno.env.get (undefined without the permission)}
   */
  env?: ((name: string) => string | undefined) | undefined;
  /**
   * Reads a file as text.
   * @default {Deno.readTextFileSync}
   */
  readFile?: ((path: string) => string) | undefined;
}

/**
 * Reads the bus token and the CA of a CLI's command line: `--token-file FILE` (its first line,
 * trimmed) or else `$SCHED_TOKEN` (trimmed; empty counts as unset), and `--ca FILE` (PEM). The
 * token is never in a message.
 *
 * @param values The parsed `--token-file` and `--ca`.
 * @param url The bus URL, or the URLs of several buses (`--ca` needs `wss://` for each).
 * @param sources See {@linkcode CredentialSources}.
 * @returns The token and the CA certificates, each only if given.
 * @throws {UsageError} One line: a file that cannot be read, an empty first line, a token with
 * spaces or control characters, a `--ca` file without a certificate, `--ca` with a `ws://` URL.
 *
 * @example
 * ```ts
 * import { readCredentials } from "./credentials.ts";
 * const env = (name: string) => name === "SCHED_TOKEN" ? " sched_abc \n" : undefined;
 * console.log(readCredentials({}, "ws://127.0.0.1:8101", { env })); // { token: "sched_abc" }
 * ```
 */
export function readCredentials(
  values: CredentialValues,
  url: string | readonly string[],
  sources: CredentialSources = {},
): Credentials {
  const env = sources.env ?? readTokenEnv;
  const readFile = sources.readFile ?? Deno.readTextFileSync;
  const credentials: Credentials = {};
  const file = values["token-file"];
  if (file !== undefined) {
    const token = (read("--token-file", file, readFile).split(/\r?\n/, 1)[0] ?? "").trim();
    if (token === "") throw new UsageError(`--token-file '${file}': its first line is empty`);
    credentials.token = checked(token, `--token-file '${file}'`);
  } else {
    const token = env(TOKEN_ENV)?.trim();
    if (token) credentials.token = checked(token, `$${TOKEN_ENV}`);
  }
  if (values.ca !== undefined) {
    const plain = (typeof url === "string" ? [url] : url).find((one) => !one.startsWith("wss:"));
    if (plain !== undefined) {
      throw new UsageError(`--ca is for a wss:// bus, but the URL is '${plain}'`);
    }
    const pem = read("--ca", values.ca, readFile);
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new UsageError(`--ca '${values.ca}': no PEM certificate in it`);
    }
    credentials.caCerts = [pem];
  }
  return credentials;
}

/**
 * `Deno.env.get`, or undefined without the permission to read the variable (never a prompt):
 * a token then is missing, which a bus with `--auth` answers with `401 missing token`.
 */
function readTokenEnv(name: string): string | undefined {
  const { state } = Deno.permissions.querySync({ name: "env", variable: name });
  return state === "granted" ? Deno.env.get(name) : undefined;
}

function read(flag: string, path: string, readFile: (path: string) => string): string {
  try {
    return readFile(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new UsageError(`${flag}: cannot read '${path}': ${why}`, { cause: error });
  }
}

function checked(token: string, from: string): string {
  if (!/^[\x21-\x7e]{1,4096}$/.test(token)) {
    throw new UsageError(
      `${from}: the token must be 1..4096 visible ASCII characters, without spaces`,
    );
  }
  return token;
}

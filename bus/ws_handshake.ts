/**
 * The client's side of the WebSocket opening handshake beyond RFC 6455's minimum: the headers a
 * `WsClient` adds (a token as `Authorization: Bearer …`, extra headers, offered
 * subprotocols), checked so that nothing can break the request and no message shows a secret,
 * and the error of a refused upgrade or TLS handshake.
 *
 * Internal to `bus/`, as `ws_client.ts` is.
 *
 * @module
 */

/**
 * The server or TLS refused the connection: the TLS handshake failed (a certificate not
 * trusted, or not for this host), or the server answered the upgrade with something other than
 * `101` (e.g. `401` for a missing or unknown token). Retrying as is will not help.
 *
 * @example
 * ```ts
 * import { WsRefusedError } from "./ws_handshake.ts";
 * const error = new WsRefusedError("the server refused the upgrade: HTTP/1.1 401 Unauthorized", 401);
 * console.log(error.name, error.status); // "WsRefusedError" 401
 * ```
 */
export class WsRefusedError extends Error {
  /** The HTTP status the server answered with; undefined for a TLS failure. */
  readonly status: number | undefined;
  /**
   * Creates the error.
   *
   * @param message What was refused, in one line.
   * @param status See {@linkcode WsRefusedError.status}.
   * @param options `cause`, passed on to `Error`.
   */
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "WsRefusedError";
    this.status = status;
  }
}

/**
 * Checks that a token can go in an `Authorization` header: visible ASCII, no spaces. The
 * message never shows the token.
 *
 * @param token The secret.
 * @param what The class being created, for the message.
 * @returns The token.
 * @throws {TypeError} `Cannot create WsClient: 'token' must be 1..4096 visible ASCII characters…`.
 *
 * @example
 * ```ts
 * import { checkToken } from "./ws_handshake.ts";
 * console.log(checkToken("sched_abc", "WsClient")); // "sched_abc"
 * ```
 */
export function checkToken(token: string, what: string): string {
  if (typeof token !== "string" || !/^[\x21-\x7e]{1,4096}$/.test(token)) {
    throw new TypeError(
      `Cannot create ${what}: 'token' must be 1..4096 visible ASCII characters (no spaces or line breaks)`,
    );
  }
  return token;
}

/** Header names the client writes itself. */
const OWN_HEADERS = /^(host|upgrade|connection|sec-websocket-.*)$/i;

/**
 * The extra header lines of the upgrade, each ending in CRLF: `Authorization: Bearer <token>`,
 * then `headers`. Messages never show a value.
 *
 * @param token The secret, if any.
 * @param headers More headers.
 * @returns The lines.
 * @throws {TypeError} For a token or header that cannot go in a request, or one of the client's
 * own headers.
 *
 * @example
 * ```ts
 * import { headerLines } from "./ws_handshake.ts";
 * console.log(JSON.stringify(headerLines("sched_x", { "X-A": "1" }))); // "Authorization: Bearer sched_x\r\nX-A: 1\r\n"
 * ```
 */
export function headerLines(
  token: string | undefined,
  headers: Readonly<Record<string, string>>,
): string {
  let lines = "";
  if (token !== undefined) lines += `Authorization: Bearer ${checkToken(token, "WsClient")}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!/^[A-Za-z0-9-]+$/.test(name)) {
      throw new TypeError(`Cannot create WsClient: header name '${name}' is not a token`);
    }
    if (OWN_HEADERS.test(name) || (token !== undefined && /^authorization$/i.test(name))) {
      throw new TypeError(`Cannot create WsClient: header '${name}' is the client's own`);
    }
    if (typeof value !== "string" || /[\r\n\0]/.test(value)) {
      throw new TypeError(`Cannot create WsClient: header '${name}' has a line break in its value`);
    }
    lines += `${name}: ${value}\r\n`;
  }
  return lines;
}

/**
 * Checks the subprotocols to offer: each an HTTP token.
 *
 * @param protocols The subprotocols.
 * @returns A copy.
 * @throws {DOMException} `SyntaxError` for one that is not a token.
 *
 * @example
 * ```ts
 * import { checkProtocols } from "./ws_handshake.ts";
 * console.log(checkProtocols(["sched.v2"])); // ["sched.v2"]
 * ```
 */
export function checkProtocols(protocols: readonly string[]): readonly string[] {
  for (const protocol of protocols) {
    if (typeof protocol !== "string" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(protocol)) {
      throw new DOMException(
        "Cannot create WsClient: a subprotocol must be a non-empty token",
        "SyntaxError",
      );
    }
  }
  return [...protocols];
}

/**
 * The refusal of an upgrade answered with `status` (not 101): with the `error` of a small JSON
 * body when there is one (`HTTP/1.1 401 Unauthorized: missing token`).
 *
 * @param status The status line.
 * @param headers The response headers, names in lower case.
 * @param readBody Reads exactly `n` bytes of the body (null if the connection ends first).
 * @returns The error to throw.
 *
 * @example
 * ```ts
 * import { refusal } from "./ws_handshake.ts";
 * const body = new TextEncoder().encode('{"error":"missing token"}');
 * const error = await refusal("HTTP/1.1 401 Unauthorized", new Map([["content-length", `${body.length}`]]), () => Promise.resolve(body));
 * console.log(error.message); // "the server refused the upgrade: HTTP/1.1 401 Unauthorized: missing token"
 * ```
 */
export async function refusal(
  status: string,
  headers: ReadonlyMap<string, string>,
  readBody: (n: number) => Promise<Uint8Array | null>,
): Promise<WsRefusedError> {
  const code = Number(/^HTTP\/\d\.\d (\d{3})/.exec(status)?.[1]) || undefined;
  let said = "";
  const length = Number(headers.get("content-length"));
  if (Number.isInteger(length) && length > 0 && length <= 4096) {
    try {
      const body = JSON.parse(new TextDecoder().decode(await readBody(length) ?? undefined));
      if (typeof body?.error === "string") said = `: ${body.error.replace(/[\r\n]+/g, " ")}`;
    } catch { /* no body worth saying */ }
  }
  return new WsRefusedError(`the server refused the upgrade: ${status}${said}`, code);
}

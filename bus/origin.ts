/**
 * The `Origin` check of a WebSocket upgrade: a browser sends the origin of the page that opens
 * the socket; only the bus's own origin may (a foreign web page in a browser on this machine
 * must not reach the bus). Clients that are not browsers send no `Origin` and are let through.
 *
 * @module
 */

/**
 * Why an upgrade request's `Origin` is refused, or undefined when it may go on: no `Origin`
 * (not a browser), or the origin the request itself was sent to (`http(s)://` + its `Host`).
 *
 * @param origin The request's `Origin` header, or null.
 * @param host The request's `Host` header, or null.
 * @param secure Whether the bus serves TLS (the page would be `https://`).
 * @returns A one-line reason for a 403, or undefined.
 * @example
 * ```ts
 * import { originRefusal } from "./origin.ts";
 * console.log(originRefusal(null, "127.0.0.1:8101", false)); // undefined
 * console.log(originRefusal("http://127.0.0.1:8101", "127.0.0.1:8101", false)); // undefined
 * console.log(originRefusal("https://evil.example", "127.0.0.1:8101", false));
 * // origin https://evil.example is not this bus (http://127.0.0.1:8101)
 * ```
 */
export function originRefusal(
  origin: string | null,
  host: string | null,
  secure: boolean,
): string | undefined {
  if (origin === null) return undefined;
  const own = ownOrigin(host, secure);
  if (own === undefined) return `origin ${origin} refused: the request has no valid Host`;
  if (normalOrigin(origin) === own) return undefined;
  return `origin ${origin} is not this bus (${own})`;
}

/** The bus's own origin as a request addressed it, or undefined for a missing or bad `Host`. */
function ownOrigin(host: string | null, secure: boolean): string | undefined {
  if (!host) return undefined;
  return normalOrigin(`${secure ? "https" : "http"}://${host}`);
}

/** An origin in its canonical form (lower case, default port dropped), or undefined. */
function normalOrigin(text: string): string | undefined {
  if (text === "null") return undefined; // opaque origins (sandboxed pages, files) are foreign
  try {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

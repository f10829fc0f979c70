/**
 * Ending a server-side WebSocket's TCP connection at once, without the close handshake.
 *
 * `WebSocket.close()` on a socket from `Deno.upgradeWebSocket` sends a close frame and then
 * waits for the peer's: a peer that does not read never answers, and the connection would stay
 * open until the bus stops. Deno has no public way to drop it, so this closes the socket's
 * resource through Deno's internal `core.tryClose` (checked to exist; where it does not, nothing
 * happens and the socket waits for the peer as before).
 *
 * @module
 */

/**
 * Closes the TCP connection under a WebSocket from `Deno.upgradeWebSocket` now; its `close`
 * event follows (code 1005 or 1006).
 *
 * @param socket A server-side WebSocket.
 * @returns Whether the connection could be dropped (false: not a Deno server socket, or a Deno
 * without the internal hook).
 * @example
 * ```ts
 * import { abortSocket } from "./socket_abort.ts";
 * const server = Deno.serve({ port: 0, onListen: () => {} }, (request) => {
 *   const { socket, response } = Deno.upgradeWebSocket(request);
 *   socket.onopen = () => abortSocket(socket);
 *   return response;
 * });
 * const client = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
 * await new Promise((resolve) => client.onclose = resolve);
 * await server.shutdown();
 * ```
 */
export function abortSocket(socket: WebSocket): boolean {
  const ridKey = Object.getOwnPropertySymbols(socket).find((key) => key.description === "[[rid]]");
  const rid = ridKey === undefined
    ? undefined
    : (socket as unknown as Record<symbol, unknown>)[ridKey];
  const internal = (Deno as unknown as Record<symbol, unknown>)[
    (Deno as unknown as { internal: symbol }).internal
  ] as { core?: { tryClose?: (rid: number) => void } } | undefined;
  const tryClose = internal?.core?.tryClose;
  if (typeof rid !== "number" || typeof tryClose !== "function") return false;
  tryClose(rid);
  return true;
}

/**
 * A user account as `--user NAME` needs it: its ids and home, read from `/etc/passwd`.
 *
 * @module
 */

/** One account of `/etc/passwd`. */
export interface UserAccount {
  /** The login name. */
  name: string;
  /** The user id. */
  uid: number;
  /** The primary group id. */
  gid: number;
  /** The home directory. */
  home: string;
}

/**
 * Looks a user up in a passwd file's text (`name:x:uid:gid:gecos:home:shell` lines).
 *
 * @param name The login name.
 * @param passwd The file's text (`Deno.readTextFileSync("/etc/passwd")`).
 * @returns The account, or `undefined` if there is none of that name.
 * @example
 * ```ts
 * import { findUser } from "./user_account.ts";
 * const passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
 * console.log(findUser("nobody", passwd)?.uid); // 65534
 * console.log(findUser("alice", passwd)); // undefined
 * ```
 */
export function findUser(name: string, passwd: string): UserAccount | undefined {
  for (const line of passwd.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 7 || fields[0] !== name) continue;
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) continue;
    return { name, uid, gid, home: fields[5]! };
  }
  return undefined;
}

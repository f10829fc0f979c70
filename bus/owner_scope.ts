/**
 * Job ids scoped per owner (with `--auth`): the bus keys every job by a bus-wide id, and a
 * producer's job is `<owner>/<id>` there (token names cannot contain `/`). A producer's own
 * connections see and use the plain id; schedulers, monitors and `list`/`show` of other owners'
 * jobs use the full one. The server translates at its edges with these functions; without a
 * scope (no `--auth`, a seed client, a scheduler, a monitor) ids pass unchanged.
 *
 * @module
 */

/** A producer connection's scope: whose jobs its plain ids name, and whether it is an admin. */
export interface IdScope {
  /** The owner (the token's name); its jobs' bus-wide ids start with `owner/`. */
  readonly owner: string;
  /**
   * An admin token's connection: an id with a `/` it sends names a job bus-wide (another
   * owner's); its own jobs' ids should then have none.
   */
  readonly admin: boolean;
}

/** What {@linkcode scopeFor} needs of a connection. */
export interface ScopeSubject {
  /** The token holder (`undefined`: no token, a seed client). */
  identity?: { name: string; role: string } | undefined;
  /** The registered role. */
  role: string | undefined;
}

/**
 * A connection's id scope: only a producer holding a token, on a bus with `--auth`, has one.
 *
 * @param auth Whether the bus runs with `--auth`.
 * @param subject The connection's token holder and registered role.
 * @returns The scope, or `undefined` (ids unchanged).
 * @example
 * ```ts
 * import { scopeFor } from "./owner_scope.ts";
 * const alice = { identity: { name: "alice", role: "producer" }, role: "producer" };
 * console.log(scopeFor(true, alice)); // { owner: "alice", admin: false }
 * console.log(scopeFor(false, alice)); // undefined
 * ```
 */
export function scopeFor(auth: boolean, subject: ScopeSubject): IdScope | undefined {
  const { identity, role } = subject;
  if (!auth || identity === undefined || role !== "producer") return undefined;
  return { owner: identity.name, admin: identity.role === "admin" };
}

/**
 * A client's id as the bus knows it: `<owner>/<id>` for a scoped producer (an admin's id that
 * has a `/` is taken as bus-wide already, except in a `job_request`).
 *
 * @param scope The connection's scope (`undefined`: unchanged).
 * @param id The id the client sent.
 * @param submit True for a `job_request`'s id: always the sender's own.
 * @returns The bus-wide id.
 * @example
 * ```ts
 * import { toBusId } from "./owner_scope.ts";
 * console.log(toBusId({ owner: "alice", admin: false }, "v-2")); // alice/v-2
 * console.log(toBusId({ owner: "root", admin: true }, "alice/v-2")); // alice/v-2
 * console.log(toBusId(undefined, "v-2")); // v-2
 * ```
 */
export function toBusId(scope: IdScope | undefined, id: string, submit = false): string {
  if (scope === undefined) return id;
  if (scope.admin && !submit && id.includes("/")) return id;
  return `${scope.owner}/${id}`;
}

/**
 * The bus-wide id of a `job_request`'s id: the sender's own ({@linkcode toBusId}). With
 * `--auth`, a connection without a scope (a seed client, let in by `--allow-seed-clients`) names
 * no job: its id is dropped (the bus assigns one), else `"alice/v-2"` would squat alice's `v-2`.
 *
 * @param auth Whether the bus runs with `--auth`.
 * @param scope The connection's scope.
 * @param id The request's id, if any.
 * @returns The id to submit under (`undefined`: the bus assigns one).
 * @example
 * ```ts
 * import { submittedId } from "./owner_scope.ts";
 * console.log(submittedId(true, { owner: "alice", admin: false }, "v-2")); // alice/v-2
 * console.log(submittedId(true, undefined, "alice/v-2")); // undefined
 * console.log(submittedId(false, undefined, "v-2")); // v-2
 * ```
 */
export function submittedId(
  auth: boolean,
  scope: IdScope | undefined,
  id: string | undefined,
): string | undefined {
  if (id === undefined || (auth && scope === undefined)) return undefined;
  return toBusId(scope, id, true);
}

/**
 * A bus-wide id as a client sees it: plain for the client's own jobs, full for others'.
 *
 * @param scope The connection's scope (`undefined`: unchanged).
 * @param id The bus-wide id.
 * @returns The id to send.
 * @example
 * ```ts
 * import { toClientId } from "./owner_scope.ts";
 * console.log(toClientId({ owner: "alice", admin: false }, "alice/v-2")); // v-2
 * console.log(toClientId({ owner: "root", admin: true }, "bob/v-1")); // bob/v-1
 * ```
 */
export function toClientId(scope: IdScope | undefined, id: string): string {
  if (scope === undefined) return id;
  const prefix = `${scope.owner}/`;
  return id.startsWith(prefix) ? id.slice(prefix.length) : id;
}

/**
 * The id prefix of jobs a scoped producer submits without an id (the bus assigns the rest).
 *
 * @param scope The connection's scope.
 * @returns `"alice/"`, or `""` unscoped.
 * @example
 * ```ts
 * import { assignedIdPrefix } from "./owner_scope.ts";
 * console.log(assignedIdPrefix({ owner: "alice", admin: false })); // alice/
 * ```
 */
export function assignedIdPrefix(scope: IdScope | undefined): string {
  return scope === undefined ? "" : `${scope.owner}/`;
}

/**
 * Whether a connection may see (in `list`, `show`) a job of this owner: an unscoped one or an
 * admin every job, a scoped producer only its owner's.
 *
 * @param scope The connection's scope.
 * @param owner The job's owner.
 * @returns True if it may.
 * @example
 * ```ts
 * import { maySee } from "./owner_scope.ts";
 * console.log(maySee({ owner: "alice", admin: false }, "bob")); // false
 * console.log(maySee(undefined, "bob")); // true
 * ```
 */
export function maySee(scope: IdScope | undefined, owner: string): boolean {
  return scope === undefined || scope.admin || scope.owner === owner;
}

/**
 * A message (or job summary) with its `id` as the client sees it ({@linkcode toClientId}).
 *
 * @param scope The connection's scope.
 * @param message Anything with an `id`.
 * @returns The same object when unchanged, else a copy.
 * @example
 * ```ts
 * import { withClientId } from "./owner_scope.ts";
 * const scope = { owner: "alice", admin: false };
 * console.log(withClientId(scope, { cmd: "ack", id: "alice/v-2" }).id); // v-2
 * ```
 */
export function withClientId<M extends { id: string }>(scope: IdScope | undefined, message: M): M {
  const id = toClientId(scope, message.id);
  return id === message.id ? message : { ...message, id };
}

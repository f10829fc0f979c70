/**
 * The SQL of a `list` query over the store's `jobs` table: its filters, the count of matches
 * and the three groups in their order (waiting in the bus, at a scheduler, finished).
 *
 * @module
 */

import type { JobQuery } from "./job_store.ts";

/** The statements of one `list` query; each takes `params` (then a limit, for the groups). */
export interface ListSql {
  /** `SELECT count(*) n` of every match. */
  count: string;
  /** Jobs waiting in the bus, in dispatch order (priority, then acceptance). */
  waiting: string;
  /** Jobs at a scheduler, same order. */
  atScheduler: string;
  /** Finished jobs, newest first. */
  finished: string;
  /** The filters' parameters. */
  params: (string | number)[];
}

const SUMMARY = "id, owner, name, priority, shown_state, final, at_scheduler, scheduler, " +
  "starts, submitted_at, started_at, ended_at";

/**
 * The SQL of a `list` query.
 *
 * @example
 * ```ts
 * import { listSql } from "./store_list.ts";
 * const sql = listSql({ owner: "ann", states: ["queued", "started"] });
 * console.log(sql.params); // ["queued", "started", "ann"]
 * ```
 *
 * @param query The filters.
 * @returns The statements and their parameters.
 */
export function listSql(query: JobQuery): ListSql {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (query.states !== undefined) {
    where.push(`shown_state IN (${query.states.map(() => "?").join(", ")})`);
    params.push(...query.states);
  }
  if (query.owner !== undefined) {
    where.push("owner = ?");
    params.push(query.owner);
  }
  if (query.name !== undefined) {
    where.push("(instr(id, ?) > 0 OR instr(name, ?) > 0)");
    params.push(query.name, query.name);
  }
  const filter = where.map((w) => ` AND ${w}`).join("");
  const select = `SELECT ${SUMMARY} FROM jobs WHERE`;
  return {
    count: `SELECT count(*) n FROM jobs WHERE 1${filter}`,
    waiting: `${select} final = 0 AND at_scheduler = 0${filter} ORDER BY priority, seq LIMIT ?`,
    atScheduler: `${select} final = 0 AND at_scheduler = 1${filter} ORDER BY priority, seq LIMIT ?`,
    finished: `${select} final = 1${filter} ORDER BY ended_seq DESC LIMIT ?`,
    params,
  };
}

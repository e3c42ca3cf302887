/**
 * Run history in SQLite (better-sqlite3; the only module that imports it). WAL journal so a killed
 * process loses nothing committed; numbered forward migrations in `user_version`; runs still marked
 * `running` when the database is opened again belong to a process that died, and become
 * `interrupted`. Every write is one short transaction, so history survives a kill at any point.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { processAlive } from '../io/process-alive.js';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface RunRecord {
  id: number;
  name: string;
  kind: string;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | null;
  pipeline: unknown;
  inputs: { path: string; hash?: string }[];
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
  artefacts: Record<string, string>;
  error: string | null;
  pid: number | null;
}

export interface NodeRecord {
  runId: number;
  nodeId: string;
  type: string;
  status: RunStatus | 'cached' | 'pending';
  startedAt: number | null;
  finishedAt: number | null;
  metrics: Record<string, unknown>;
  artefact: string | null;
  cacheKey: string | null;
}

/** Forward migrations; index i brings the schema to version i + 1. Never edit a shipped one. */
const MIGRATIONS: string[] = [
  `CREATE TABLE runs (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     name TEXT NOT NULL,
     kind TEXT NOT NULL,
     status TEXT NOT NULL,
     started_at INTEGER NOT NULL,
     finished_at INTEGER,
     pipeline TEXT NOT NULL,
     inputs TEXT NOT NULL DEFAULT '[]',
     params TEXT NOT NULL DEFAULT '{}',
     metrics TEXT NOT NULL DEFAULT '{}',
     artefacts TEXT NOT NULL DEFAULT '{}',
     error TEXT,
     pid INTEGER
   );
   CREATE TABLE run_nodes (
     run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
     node_id TEXT NOT NULL,
     type TEXT NOT NULL,
     status TEXT NOT NULL,
     started_at INTEGER,
     finished_at INTEGER,
     metrics TEXT NOT NULL DEFAULT '{}',
     artefact TEXT,
     cache_key TEXT,
     PRIMARY KEY (run_id, node_id)
   );
   CREATE TABLE run_logs (
     run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
     at INTEGER NOT NULL,
     node_id TEXT,
     level TEXT NOT NULL,
     message TEXT NOT NULL
   );
   CREATE INDEX run_logs_run ON run_logs(run_id, at);
   CREATE INDEX runs_started ON runs(started_at);`,
  // v2: series for charts (per-generation fitness/diversity, per-layer expert load, …).
  `CREATE TABLE run_series (
     run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
     node_id TEXT,
     series TEXT NOT NULL,
     step INTEGER NOT NULL,
     value TEXT NOT NULL
   );
   CREATE INDEX run_series_run ON run_series(run_id, series, step);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

interface RunRow {
  id: number; name: string; kind: string; status: string; started_at: number; finished_at: number | null;
  pipeline: string; inputs: string; params: string; metrics: string; artefacts: string; error: string | null; pid: number | null;
}

export class HistoryStore {
  private readonly db: Database.Database;
  /** Runs found `running` from a dead process and marked interrupted when this store opened. */
  readonly recovered: number[];

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.recovered = this.recoverInterrupted();
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(`${this.path}: the history database is from a newer Upcycle Studio (schema ${current} > ${SCHEMA_VERSION}); update the app`);
    }
    for (let v = current; v < SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** Runs left `running` by a process that no longer exists become `interrupted`. */
  private recoverInterrupted(): number[] {
    const rows = this.db.prepare(`SELECT id, pid FROM runs WHERE status = 'running'`).all() as { id: number; pid: number | null }[];
    const dead = rows.filter((r) => r.pid === null || (r.pid !== process.pid && !processAlive(r.pid))).map((r) => r.id);
    const mark = this.db.prepare(`UPDATE runs SET status = 'interrupted', finished_at = ?, error = COALESCE(error, 'the process running it stopped before it finished') WHERE id = ?`);
    const markNodes = this.db.prepare(`UPDATE run_nodes SET status = 'interrupted' WHERE run_id = ? AND status IN ('running', 'pending')`);
    this.db.transaction(() => {
      for (const id of dead) {
        mark.run(Date.now(), id);
        markNodes.run(id);
      }
    })();
    return dead;
  }

  startRun(r: { name: string; kind: string; pipeline: unknown; inputs?: RunRecord['inputs']; params?: Record<string, unknown> }): number {
    const info = this.db.prepare(`INSERT INTO runs (name, kind, status, started_at, pipeline, inputs, params, pid) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)`)
      .run(r.name, r.kind, Date.now(), JSON.stringify(r.pipeline ?? null), JSON.stringify(r.inputs ?? []), JSON.stringify(r.params ?? {}), process.pid);
    return Number(info.lastInsertRowid);
  }

  finishRun(id: number, status: Exclude<RunStatus, 'running'>, extra: { metrics?: Record<string, unknown>; artefacts?: Record<string, string>; error?: string } = {}): void {
    this.db.prepare(`UPDATE runs SET status = ?, finished_at = ?, metrics = COALESCE(?, metrics), artefacts = COALESCE(?, artefacts), error = ? WHERE id = ?`)
      .run(status, Date.now(), extra.metrics ? JSON.stringify(extra.metrics) : null, extra.artefacts ? JSON.stringify(extra.artefacts) : null, extra.error ?? null, id);
  }

  setNode(n: Partial<NodeRecord> & { runId: number; nodeId: string; type: string; status: NodeRecord['status'] }): void {
    this.db.prepare(`INSERT INTO run_nodes (run_id, node_id, type, status, started_at, finished_at, metrics, artefact, cache_key)
      VALUES (@runId, @nodeId, @type, @status, @startedAt, @finishedAt, @metrics, @artefact, @cacheKey)
      ON CONFLICT(run_id, node_id) DO UPDATE SET status = excluded.status,
        started_at = COALESCE(excluded.started_at, run_nodes.started_at), finished_at = COALESCE(excluded.finished_at, run_nodes.finished_at),
        metrics = CASE WHEN excluded.metrics = '{}' THEN run_nodes.metrics ELSE excluded.metrics END,
        artefact = COALESCE(excluded.artefact, run_nodes.artefact), cache_key = COALESCE(excluded.cache_key, run_nodes.cache_key)`)
      .run({ runId: n.runId, nodeId: n.nodeId, type: n.type, status: n.status, startedAt: n.startedAt ?? null, finishedAt: n.finishedAt ?? null, metrics: JSON.stringify(n.metrics ?? {}), artefact: n.artefact ?? null, cacheKey: n.cacheKey ?? null });
  }

  log(runId: number, level: 'info' | 'warn' | 'error', message: string, nodeId?: string): void {
    this.db.prepare(`INSERT INTO run_logs (run_id, at, node_id, level, message) VALUES (?, ?, ?, ?, ?)`).run(runId, Date.now(), nodeId ?? null, level, message);
  }

  addSeries(runId: number, series: string, step: number, value: unknown, nodeId?: string): void {
    this.db.prepare(`INSERT INTO run_series (run_id, node_id, series, step, value) VALUES (?, ?, ?, ?, ?)`).run(runId, nodeId ?? null, series, step, JSON.stringify(value));
  }

  series(runId: number, series: string): { step: number; value: unknown; nodeId: string | null }[] {
    return (this.db.prepare(`SELECT step, value, node_id FROM run_series WHERE run_id = ? AND series = ? ORDER BY step`).all(runId, series) as { step: number; value: string; node_id: string | null }[])
      .map((r) => ({ step: r.step, value: JSON.parse(r.value) as unknown, nodeId: r.node_id }));
  }

  getRun(id: number): RunRecord | undefined {
    const r = this.db.prepare(`SELECT * FROM runs WHERE id = ?`).get(id) as RunRow | undefined;
    return r ? toRecord(r) : undefined;
  }

  listRuns(filter: { status?: RunStatus; kind?: string; text?: string; limit?: number } = {}): RunRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.status) {
      where.push('status = ?');
      args.push(filter.status);
    }
    if (filter.kind) {
      where.push('kind = ?');
      args.push(filter.kind);
    }
    if (filter.text) {
      where.push('(name LIKE ? OR params LIKE ?)');
      args.push(`%${filter.text}%`, `%${filter.text}%`);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit ?? 200) as RunRow[]).map(toRecord);
  }

  nodes(runId: number): NodeRecord[] {
    return (this.db.prepare(`SELECT * FROM run_nodes WHERE run_id = ? ORDER BY started_at`).all(runId) as { run_id: number; node_id: string; type: string; status: string; started_at: number | null; finished_at: number | null; metrics: string; artefact: string | null; cache_key: string | null }[])
      .map((r) => ({ runId: r.run_id, nodeId: r.node_id, type: r.type, status: r.status as NodeRecord['status'], startedAt: r.started_at, finishedAt: r.finished_at, metrics: JSON.parse(r.metrics) as Record<string, unknown>, artefact: r.artefact, cacheKey: r.cache_key }));
  }

  logs(runId: number, limit = 2000): { at: number; nodeId: string | null; level: string; message: string }[] {
    return (this.db.prepare(`SELECT at, node_id, level, message FROM run_logs WHERE run_id = ? ORDER BY rowid LIMIT ?`).all(runId, limit) as { at: number; node_id: string | null; level: string; message: string }[])
      .map((r) => ({ at: r.at, nodeId: r.node_id, level: r.level, message: r.message }));
  }

  /** A finished node with this cache key whose artefact may be reused (the caller checks it still exists). */
  cachedNode(cacheKey: string): NodeRecord | undefined {
    const r = this.db.prepare(`SELECT run_id FROM run_nodes WHERE cache_key = ? AND status IN ('succeeded', 'cached') AND artefact IS NOT NULL ORDER BY finished_at DESC LIMIT 1`).get(cacheKey) as { run_id: number } | undefined;
    return r ? this.nodes(r.run_id).find((n) => n.cacheKey === cacheKey) : undefined;
  }

  deleteRun(id: number): void {
    this.db.prepare(`DELETE FROM runs WHERE id = ?`).run(id);
  }

  close(): void {
    this.db.close();
  }
}

function toRecord(r: RunRow): RunRecord {
  return {
    id: r.id, name: r.name, kind: r.kind, status: r.status as RunStatus, startedAt: r.started_at, finishedAt: r.finished_at,
    pipeline: JSON.parse(r.pipeline) as unknown, inputs: JSON.parse(r.inputs) as RunRecord['inputs'], params: JSON.parse(r.params) as Record<string, unknown>,
    metrics: JSON.parse(r.metrics) as Record<string, unknown>, artefacts: JSON.parse(r.artefacts) as Record<string, string>, error: r.error, pid: r.pid,
  };
}

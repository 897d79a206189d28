#!/usr/bin/env node
// Two REAL LiveStore 0.4 stores (`@livestore/livestore` + `@livestore/adapter-node`, single-threaded
// leader, SQLite through @livestore/sqlite-wasm) in one node process, both syncing one store id
// over WebSocket (`makeWsSync` from @livestore/sync-cf/client) through a stratasync server, with
// the TodoMVC schema of stratasync.client.todos (same event names and args). See README.md.
//
//   node livestore_node_stores.mjs <baseUrl> [storeId]
//
// The run:
//   1. both stores boot (each with its own clientId) and pull;
//   2. in one tick, A commits a-0..a-(N-1) and B commits b-0..b-(N-1): both on top of the same
//      head, so one of the two leaders must rebase its pending events on the other's;
//   3. once each store sees the other's first todos: A completes b-0 and deletes b-1 (a fixed
//      deletedAt); B completes a-0, completes a-1 and uncompletes it again; in the same tick a
//      second burst of creates on both (a-N.., b-N..);
//   4. wait until both stores' todos tables equal the expected table (theirs plus
//      NODE_STORES_EXTRA_TODOS, committed by another client), nothing is pending, and both
//      upstream heads are the expected event count; then each store's eventlog (store.events up
//      to the head) must be e1..eN, each seqNum once, and the same on both stores.
//
// Prints exactly ONE JSON object on stdout; exit code 0 when converged, 1 on a timeout or a
// mismatch (ok:false and an `error`), 2 on bad usage. The clients' logs go to stderr.
//
// Env: NODE_STORES_TIMEOUT_MS (default 25000), NODE_STORES_TODOS (N, default 5),
// NODE_STORES_STORAGE (`fs`, the default: a temp dir removed at the end; or `in-memory`),
// NODE_STORES_EXTRA_TODOS (JSON [{id, text, completed, deleted}] another client commits) and
// NODE_STORES_EXTRA_EVENTS (how many events that client commits), DRIVER_TOKEN (the authToken).

import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'

const writeStdout = process.stdout.write.bind(process.stdout)
for (const m of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[m] = (...args) => process.stderr.write(`${args.map(String).join(' ')}\n`)
}
// node 20 has no global WebSocket: sync-cf's client needs one BEFORE it loads.
globalThis.WebSocket = WebSocket

const [baseUrl, storeIdArg] = process.argv.slice(2)
const finish = (result) => writeStdout(`${JSON.stringify({ baseUrl, ...result })}\n`, () => process.exit(result.ok ? 0 : 1))
if (!baseUrl) {
  writeStdout(`${JSON.stringify({ ok: false, error: { message: 'usage: node livestore_node_stores.mjs <baseUrl> [storeId]' } })}\n`)
  process.exit(2)
}

let makeAdapter, createStorePromise, Events, makeSchema, Schema, State, makeWsSync
try {
  ;({ makeAdapter } = await import('@livestore/adapter-node'))
  ;({ createStorePromise, Events, makeSchema, Schema, State } = await import('@livestore/livestore'))
  ;({ makeWsSync } = await import('@livestore/sync-cf/client'))
} catch (e) {
  finish({ ok: false, error: { message: `cannot load LiveStore (npm ci in tests/interop): ${e?.stack ?? e}` } })
  await new Promise(() => {})
}

const TIMEOUT_MS = Number(process.env.NODE_STORES_TIMEOUT_MS ?? 25_000)
const TODOS = Number(process.env.NODE_STORES_TODOS ?? 5)
const STORAGE = process.env.NODE_STORES_STORAGE ?? 'fs'
const EXTRA_TODOS = JSON.parse(process.env.NODE_STORES_EXTRA_TODOS ?? '[]')
const EXTRA_EVENTS = Number(process.env.NODE_STORES_EXTRA_EVENTS ?? 0)
const PAYLOAD = process.env.DRIVER_TOKEN ? { authToken: process.env.DRIVER_TOKEN } : undefined
const storeId = storeIdArg ?? `node-stores-${Date.now()}-${randomUUID().slice(0, 8)}`
const DELETED_AT = new Date('2026-01-02T03:04:05.000Z')

// The schema: stratasync.client.todos (and examples/web-todo/src/schema.ts), event for event.
const tables = {
  todos: State.SQLite.table({
    name: 'todos',
    columns: {
      id: State.SQLite.text({ primaryKey: true }),
      text: State.SQLite.text({ default: '' }),
      completed: State.SQLite.boolean({ default: false }),
      deletedAt: State.SQLite.integer({ nullable: true, schema: Schema.DateFromNumber }),
    },
  }),
}
const events = {
  todoCreated: Events.synced({ name: 'v1.TodoCreated', schema: Schema.Struct({ id: Schema.String, text: Schema.String }) }),
  todoCompleted: Events.synced({ name: 'v1.TodoCompleted', schema: Schema.Struct({ id: Schema.String }) }),
  todoUncompleted: Events.synced({ name: 'v1.TodoUncompleted', schema: Schema.Struct({ id: Schema.String }) }),
  todoDeleted: Events.synced({ name: 'v1.TodoDeleted', schema: Schema.Struct({ id: Schema.String, deletedAt: Schema.Date }) }),
}
const materializers = State.SQLite.materializers(events, {
  'v1.TodoCreated': ({ id, text }) => tables.todos.insert({ id, text, completed: false }),
  'v1.TodoCompleted': ({ id }) => tables.todos.update({ completed: true }).where({ id }),
  'v1.TodoUncompleted': ({ id }) => tables.todos.update({ completed: false }).where({ id }),
  'v1.TodoDeleted': ({ id, deletedAt }) => tables.todos.update({ deletedAt }).where({ id }),
})
const schema = makeSchema({ events, state: State.SQLite.makeState({ tables, materializers }) })

const ms = (t0) => Math.round(performance.now() - t0)
const sleep = (n) => new Promise((resolve) => setTimeout(resolve, n))
class Failure extends Error {
  constructor(message, details) {
    super(message)
    this.details = details
  }
}
const deadline = performance.now() + TIMEOUT_MS
const waitFor = async (what, predicate, details) => {
  while (!predicate()) {
    if (performance.now() > deadline) throw new Failure(`timed out after ${TIMEOUT_MS} ms waiting for ${what}`, details())
    await sleep(20)
  }
}

const rows = (store) =>
  store.query(tables.todos.orderBy('id', 'asc')).map((r) => ({
    id: r.id,
    text: r.text,
    completed: r.completed,
    deletedAt: r.deletedAt === null ? null : r.deletedAt.toISOString(),
  }))
const has = (store, id) => store.query(tables.todos.where({ id })).length === 1
const globalHead = (store) => Number(/^e(\d+)/.exec(store.syncStatus().upstreamHead)[1])

// What both tables must hold in the end.
const expectedRows = () => {
  const out = []
  for (let n = 0; n < 2 * TODOS; n++) {
    out.push({ id: `a-${n}`, text: `from A ${n}`, completed: n === 0, deletedAt: null })
    out.push({ id: `b-${n}`, text: `from B ${n}`, completed: n === 0, deletedAt: n === 1 ? DELETED_AT.toISOString() : null })
  }
  for (const t of EXTRA_TODOS) out.push({ id: t.id, text: t.text, completed: !!t.completed, deletedAt: t.deletedAt ?? null })
  return out.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
}
// A: 2N creates, b-0 completed, b-1 deleted. B: 2N creates, a-0 completed, a-1 completed and uncompleted.
const EXPECTED_EVENTS = 4 * TODOS + 2 + 3 + EXTRA_EVENTS

const eventlog = async (store, head) => {
  const out = []
  const until = { global: head, client: 0, rebaseGeneration: 0 }
  for await (const event of store.events({ until })) {
    out.push({
      seqNum: event.seqNum.global,
      client: event.seqNum.client,
      name: event.name,
      id: event.args.id,
      clientId: event.clientId,
    })
  }
  return out
}

const baseDirectory = STORAGE === 'fs' ? mkdtempSync(path.join(tmpdir(), 'livestore-node-stores-')) : undefined
const stores = {}
const rebaseGenerations = { a: 0, b: 0 }
const result = { storeId, storage: STORAGE, todosPerStore: TODOS }
const t0 = performance.now()
result.loadMs = Math.round(t0) // node start to LiveStore loaded
try {
  for (const name of ['a', 'b']) {
    const adapter = makeAdapter({
      storage: STORAGE === 'fs' ? { type: 'fs', baseDirectory: path.join(baseDirectory, name) } : { type: 'in-memory' },
      clientId: `node-${name}-${randomUUID().slice(0, 6)}`,
      sessionId: `session-${name}`,
      sync: { backend: makeWsSync({ url: baseUrl }) },
    })
    stores[name] = await createStorePromise({ schema, adapter, storeId, disableDevtools: true, ...(PAYLOAD ? { syncPayload: PAYLOAD } : {}) })
    // A rebase shows as a new rebase generation of the session's local head (e5 -> e7r1).
    stores[name].subscribeSyncStatus((status) => {
      const r = /r(\d+)$/.exec(status.localHead)
      if (r) rebaseGenerations[name] = Math.max(rebaseGenerations[name], Number(r[1]))
    })
  }
  const { a, b } = stores
  result.clientIds = { a: a.clientId, b: b.clientId }
  result.bootMs = ms(t0)

  // 2. concurrent creates: the same tick, on the same head.
  const t1 = performance.now()
  const creates = (store, prefix, label, from) => {
    for (let n = from; n < from + TODOS; n++) store.commit(events.todoCreated({ id: `${prefix}-${n}`, text: `from ${label} ${n}` }))
  }
  creates(a, 'a', 'A', 0)
  creates(b, 'b', 'B', 0)

  // 3. toggles on the other store's todos, and a second burst of creates, once each sees the other.
  const tables2 = () => ({ a: rows(a), b: rows(b) })
  await waitFor('each store to see the other one\'s first todos', () => has(a, 'b-1') && has(b, 'a-1'), tables2)
  a.commit(events.todoCompleted({ id: 'b-0' }), events.todoDeleted({ id: 'b-1', deletedAt: DELETED_AT }))
  b.commit(events.todoCompleted({ id: 'a-0' }))
  b.commit(events.todoCompleted({ id: 'a-1' }))
  b.commit(events.todoUncompleted({ id: 'a-1' }))
  creates(a, 'a', 'A', TODOS)
  creates(b, 'b', 'B', TODOS)

  // 4. converged: both tables as expected, nothing pending, both heads at the expected count.
  const expected = expectedRows()
  const same = (x, y) => JSON.stringify(x) === JSON.stringify(y)
  await waitFor(
    'both stores to converge on the expected todos',
    () =>
      same(rows(a), expected) &&
      same(rows(b), expected) &&
      a.syncStatus().isSynced &&
      b.syncStatus().isSynced &&
      globalHead(a) === EXPECTED_EVENTS &&
      globalHead(b) === EXPECTED_EVENTS,
    () => ({ ...tables2(), expected, status: { a: a.syncStatus(), b: b.syncStatus() }, expectedEvents: EXPECTED_EVENTS }),
  )
  result.convergeMs = ms(t1)
  result.todos = rows(a)
  result.head = globalHead(a)
  result.syncStatus = { a: a.syncStatus(), b: b.syncStatus() }
  result.rebaseGenerations = rebaseGenerations

  // The eventlogs: e1..eN, each once, the same on both stores.
  const logs = { a: await eventlog(a, result.head), b: await eventlog(b, result.head) }
  for (const name of ['a', 'b']) {
    const seqNums = logs[name].map((e) => e.seqNum)
    const duplicates = seqNums.filter((s, i) => seqNums.indexOf(s) !== i)
    if (duplicates.length > 0) throw new Failure(`store ${name}'s eventlog repeats seqNums`, { duplicates, log: logs[name] })
    const wanted = Array.from({ length: result.head }, (_, i) => i + 1)
    if (!same(seqNums, wanted) || logs[name].some((e) => e.client !== 0))
      throw new Failure(`store ${name}'s eventlog is not e1..e${result.head}`, { log: logs[name] })
  }
  if (!same(logs.a, logs.b)) throw new Failure('the two eventlogs differ', logs)
  result.eventlog = logs.a.map(({ client, ...e }) => e)
  result.eventlogsEqual = true
  result.ok = true
} catch (e) {
  result.ok = false
  result.error = { message: e?.message ?? String(e), details: e?.details ?? (e instanceof Failure ? undefined : String(e?.stack ?? e)) }
}
result.totalMs = ms(t0)
try {
  await Promise.race([Promise.all(Object.values(stores).map((s) => s.shutdownPromise())), sleep(3000)])
} catch (e) {
  console.error('shutdown:', e)
}
if (baseDirectory) rmSync(baseDirectory, { recursive: true, force: true })
finish(result)

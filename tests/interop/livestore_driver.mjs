#!/usr/bin/env node
// Drives the REAL LiveStore 0.4 HTTP sync client (`makeHttpSync` from @livestore/sync-cf/client)
// against a sync server and runs one scenario.
//
//   node livestore_driver.mjs <baseUrl> <scenario> [storeId]
//
// Prints exactly ONE JSON object on stdout; exit code 0 when the scenario passed, 1 when it
// failed (the JSON then has ok:false and an `error`), 2 on bad usage. Everything else the
// client logs goes to stderr.
//
// Env: DRIVER_TIMEOUT_MS (per scenario, default 60000), DRIVER_PAGING_EVENTS (default 1000).

import { performance } from 'node:perf_hooks'
import { randomUUID } from 'node:crypto'
import { ScenarioFailure, check, makePlainError, makeRunScenario, makeToPlain, ms } from './driver_common.mjs'

// Keep stdout for the single JSON result: route every console method to stderr.
const writeStdout = process.stdout.write.bind(process.stdout)
for (const m of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[m] = (...args) => process.stderr.write(`${args.map(String).join(' ')}\n`)
}

const SCENARIOS = [
  'ping',
  'empty-pull',
  'push-pull',
  'server-ahead',
  'backend-id-mismatch',
  'paging-1000',
  // upstream's tests/sync-provider/src/sync-provider.test.ts (v0.4.0), case by case
  'upstream-pull-with-cursor',
  'upstream-live-pull-no-more',
  'upstream-live-pull-later-event',
  'upstream-non-live-multiple',
  'upstream-few-large-60x120k',
  'upstream-many-small-1800x1k',
]

const usage = () => {
  writeStdout(
    `${JSON.stringify({
      ok: false,
      error: { message: `usage: node livestore_driver.mjs <baseUrl> <${[...SCENARIOS, 'all'].join('|')}> [storeId]` },
    })}\n`,
  )
  process.exit(2)
}

// Scenarios run only when named (not part of `all`): `writer` takes part in a shared store
// alongside other clients (the Python client in tests/client/test_interop_python_js.py);
// `pull-existing` pulls a store another run filled (tests/interop/test_livestore_archive.py).
// `todomvc` decodes what another client committed with LiveStore's own TodoMVC event schemas and
// commits its own encoded by them (tests/client/test_interop_python_js.py).
// `dump` pulls a whole store and prints its events; `resume` is a client that synced before (its
// backendId and cursor from DRIVER_BACKEND_ID and DRIVER_CURSOR) pulling on and pushing one event
// (tests/operations/test_livestore_operations.py: after an import, after a restore).
const EXTRA_SCENARIOS = ['writer', 'pull-existing', 'todomvc', 'dump', 'resume']

const [baseUrl, scenarioArg, storeIdArg] = process.argv.slice(2)
if (
  !baseUrl ||
  !scenarioArg ||
  (scenarioArg !== 'all' && !SCENARIOS.includes(scenarioArg) && !EXTRA_SCENARIOS.includes(scenarioArg))
)
  usage()

let makeHttpSync, Events, Schema, Chunk, Effect, FetchHttpClient, KeyValueStore, Layer, Option, Stream, Logger, LogLevel
try {
  ;({ makeHttpSync } = await import('@livestore/sync-cf/client'))
  ;({ Events } = await import('@livestore/common/schema'))
  ;({ Schema } = await import('@livestore/utils/effect'))
  ;({ Chunk, Effect, FetchHttpClient, KeyValueStore, Layer, Option, Stream, Logger, LogLevel } = await import(
    '@livestore/utils/effect'
  ))
} catch (e) {
  writeStdout(
    `${JSON.stringify({ ok: false, scenario: scenarioArg, error: { message: `cannot load the LiveStore client (run npm ci in tests/interop): ${e?.message ?? e}` } })}\n`,
  )
  process.exit(1)
}

const TIMEOUT_MS = Number(process.env.DRIVER_TIMEOUT_MS ?? 60_000)
const WRITER_EVENTS = Number(process.env.DRIVER_WRITER_EVENTS ?? 30)
const WRITER_EXPECT = Number(process.env.DRIVER_WRITER_EXPECT ?? WRITER_EVENTS)
const PAGING_EVENTS = Number(process.env.DRIVER_PAGING_EVENTS ?? 1000)
const CLIENT_ID = 'interop-client'
const SESSION_ID = 'interop-session'

// ---------------------------------------------------------------------------------------------
// helpers

const toPlain = makeToPlain({ Option, Chunk })
const plainError = makePlainError(toPlain)

const makeEvent = (seqNum, parentSeqNum, prefix = 'todo') => ({
  name: 'v1.TodoCreated',
  args: { id: `${prefix}-${seqNum}`, text: `Todo number ${seqNum}` },
  seqNum,
  parentSeqNum,
  clientId: CLIENT_ID,
  sessionId: SESSION_ID,
})

const makeEvents = (from, to, prefix) => {
  const evs = []
  for (let s = from; s <= to; s++) evs.push(makeEvent(s, s - 1, prefix))
  return evs
}

const sameEvent = (a, b) => JSON.stringify(a) === JSON.stringify(b)

/**
 * Build a real client, the way upstream's sync-provider tests do: call the
 * SyncBackendConstructor with {storeId, clientId, payload} inside a scope, with an
 * HttpClient and a KeyValueStore in context. The KeyValueStore holds the key `backendId`
 * that the client's backendId helper reads at construction and updates after each pull;
 * `presetBackendId` pre-populates it (how we provoke BackendIdMismatchError).
 *
 * Returns { backend, kvBackendId } where kvBackendId reads what the client currently stores.
 */
const makeClient = (storeId, { presetBackendId, payload } = {}) =>
  Effect.gen(function* () {
    const kv = yield* KeyValueStore.KeyValueStore
    if (presetBackendId !== undefined) yield* kv.set('backendId', presetBackendId)
    const backend = yield* makeHttpSync({
      url: baseUrl,
      // no background pinging: keeps the server's request log deterministic
      ping: { enabled: false },
    })({ storeId, clientId: CLIENT_ID, payload })
    const kvBackendId = kv.get('backendId').pipe(Effect.map(Option.getOrNull))
    return { backend, kvBackendId }
  }).pipe(Effect.provide(KeyValueStore.layerMemory))

/** Pull (non-live) and collect every item the client yields, with per-item arrival times. */
const pullAll = (backend, cursor) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    const items = yield* backend.pull(cursor).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
    return { items, durationMs: ms(t0) }
  })

const cursorAt = (eventSequenceNumber) => Option.some({ eventSequenceNumber, metadata: Option.none() })

const timed = (eff) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    const value = yield* eff
    return { value, durationMs: ms(t0) }
  })

const itemSummary = (item) => ({
  batchSize: item.batch.length,
  firstSeqNum: item.batch[0]?.eventEncoded.seqNum ?? null,
  lastSeqNum: item.batch.at(-1)?.eventEncoded.seqNum ?? null,
  pageInfo: toPlain(item.pageInfo),
})

const storeFor = (base, name) => `${base}-${name}`

// ---------------------------------------------------------------------------------------------
// scenarios: each gets its own storeId; returns a plain result object or throws ScenarioFailure

const scenarios = {
  ping: (storeId) =>
    Effect.gen(function* () {
      const { backend } = yield* makeClient(storeId)
      const before = yield* backend.isConnected.get
      const { durationMs } = yield* timed(backend.ping)
      // NOTE: the client's `ping` swallows its own timeout (sets isConnected=false and succeeds),
      // so isConnected is the real success signal.
      const after = yield* backend.isConnected.get
      check(before === false, 'isConnected should start false', { before })
      check(after === true, 'isConnected should be true after ping', { after })
      const c = yield* timed(backend.connect)
      return { isConnectedBefore: before, isConnectedAfter: after, pingMs: durationMs, connectMs: c.durationMs }
    }),

  'empty-pull': (storeId) =>
    Effect.gen(function* () {
      const { backend, kvBackendId } = yield* makeClient(storeId)
      const { items, durationMs } = yield* pullAll(backend, Option.none())
      const plain = toPlain(items)
      check(items.length === 1, 'expected exactly one item', { items: plain })
      check(items[0].batch.length === 0, 'expected an empty batch', { items: plain })
      check(items[0].pageInfo._tag === 'NoMore', 'expected pageInfo NoMore', { items: plain })
      const backendId = yield* kvBackendId
      check(typeof backendId === 'string' && backendId.length > 0, 'client should have learned a backendId', {
        backendId,
      })
      return { items: plain, learnedBackendId: backendId, pullMs: durationMs }
    }),

  'push-pull': (storeId) =>
    Effect.gen(function* () {
      const { backend, kvBackendId } = yield* makeClient(storeId)
      const events = makeEvents(1, 3)
      const push = yield* timed(backend.push(events))

      const full = yield* pullAll(backend, Option.none())
      const pulled = full.items.flatMap((i) => i.batch)
      check(pulled.length === 3, 'expected 3 events from the full pull', { items: toPlain(full.items) })
      pulled.forEach((b, i) =>
        check(sameEvent(b.eventEncoded, events[i]), `event ${i} differs`, {
          expected: events[i],
          got: toPlain(b.eventEncoded),
        }),
      )
      check(full.items.at(-1).pageInfo._tag === 'NoMore', 'last page must be NoMore', { items: toPlain(full.items) })
      const backendId = yield* kvBackendId

      // pull with cursor at seqNum 1 (the cursor's backendId comes from the helper, set by the pull above)
      const fromCursor = yield* pullAll(backend, cursorAt(1))
      const pulled2 = fromCursor.items.flatMap((i) => i.batch)
      check(
        pulled2.length === 2 && sameEvent(pulled2[0].eventEncoded, events[1]) && sameEvent(pulled2[1].eventEncoded, events[2]),
        'cursor pull from seqNum 1 should yield events 2..3',
        { items: toPlain(fromCursor.items) },
      )
      check(fromCursor.items.at(-1).pageInfo._tag === 'NoMore', 'last page must be NoMore', {
        items: toPlain(fromCursor.items),
      })

      // pull from the head: one empty NoMore page
      const fromHead = yield* pullAll(backend, cursorAt(3))
      check(
        fromHead.items.length === 1 && fromHead.items[0].batch.length === 0 && fromHead.items[0].pageInfo._tag === 'NoMore',
        'pull from head should yield one empty NoMore page',
        { items: toPlain(fromHead.items) },
      )

      return {
        pushed: events,
        fullPull: { items: toPlain(full.items) },
        cursorPull: { cursor: 1, items: toPlain(fromCursor.items) },
        headPull: { cursor: 3, items: toPlain(fromHead.items) },
        learnedBackendId: backendId,
        pushMs: push.durationMs,
        pullMs: full.durationMs,
        cursorPullMs: fromCursor.durationMs,
      }
    }),

  'server-ahead': (storeId) =>
    Effect.gen(function* () {
      const { backend } = yield* makeClient(storeId)
      const first = yield* timed(backend.push(makeEvents(1, 2)))
      const stale = [makeEvent(1, 0, 'stale')]
      const t0 = performance.now()
      const err = yield* backend.push(stale).pipe(Effect.flip)
      const rejectMs = ms(t0)
      const e = plainError(err)
      check(err?._tag === 'ServerAheadError', 'expected ServerAheadError', { error: e })
      check(err.minimumExpectedNum === 2 && err.providedNum === 0, 'unexpected ServerAheadError fields', { error: e })
      // the store is unchanged: still exactly events 1..2
      const { items } = yield* pullAll(backend, Option.none())
      const seqs = items.flatMap((i) => i.batch.map((b) => b.eventEncoded.seqNum))
      check(JSON.stringify(seqs) === '[1,2]', 'rejected push must not change the store', { seqs })
      return {
        error: { _tag: err._tag, minimumExpectedNum: err.minimumExpectedNum, providedNum: err.providedNum },
        errorPlain: e,
        pushMs: first.durationMs,
        rejectedPushMs: rejectMs,
      }
    }),

  'backend-id-mismatch': (storeId) =>
    Effect.gen(function* () {
      // 1. a healthy client pushes and pulls, learning the server's backendId
      const a = yield* makeClient(storeId)
      yield* a.backend.push(makeEvents(1, 2))
      yield* pullAll(a.backend, Option.none())
      const realId = yield* a.kvBackendId
      check(typeof realId === 'string', 'first client should learn a backendId', { realId })

      // 2. a second client whose persisted backendId (KeyValueStore key `backendId`) is wrong,
      //    as after a server-side reset.
      const wrong = 'wrong-backend-id'
      const b = yield* makeClient(storeId, { presetBackendId: wrong })

      const pushErr = yield* b.backend.push([makeEvent(3, 2)]).pipe(Effect.flip)
      check(pushErr?._tag === 'BackendIdMismatchError', 'push with wrong backendId: expected BackendIdMismatchError', {
        error: plainError(pushErr),
      })
      check(pushErr.expected === realId && pushErr.received === wrong, 'push mismatch fields', {
        error: plainError(pushErr),
        realId,
      })

      const pullErr = yield* pullAll(b.backend, cursorAt(1)).pipe(Effect.flip)
      check(pullErr?._tag === 'BackendIdMismatchError', 'pull with wrong cursor backendId: expected BackendIdMismatchError', {
        error: plainError(pullErr),
      })
      check(pullErr.expected === realId && pullErr.received === wrong, 'pull mismatch fields', {
        error: plainError(pullErr),
        realId,
      })

      // 3. a pull without cursor carries no backendId: it succeeds and the client adopts the server's id
      const recovered = yield* pullAll(b.backend, Option.none())
      const adopted = yield* b.kvBackendId
      check(adopted === realId, 'after a cursor-less pull the client should adopt the server backendId', {
        adopted,
        realId,
      })
      check(
        recovered.items.flatMap((i) => i.batch).length === 2,
        'cursor-less pull should return the 2 stored events',
        { items: toPlain(recovered.items) },
      )
      const okPush = yield* timed(b.backend.push([makeEvent(3, 2)]))

      return {
        serverBackendId: realId,
        pushError: { _tag: pushErr._tag, expected: pushErr.expected, received: pushErr.received },
        pullError: { _tag: pullErr._tag, expected: pullErr.expected, received: pullErr.received },
        afterCursorlessPull: { adoptedBackendId: adopted, pushAfterRecoveryMs: okPush.durationMs },
      }
    }),

  'paging-1000': (storeId) =>
    Effect.gen(function* () {
      const { backend } = yield* makeClient(storeId)
      const total = PAGING_EVENTS
      const half = Math.floor(total / 2 / 100) * 100
      const events = makeEvents(1, total, 'page')
      const pushTimes = []
      const t0 = performance.now()
      // first half: explicit push calls of 100 events each
      for (let i = 0; i < half; i += 100) {
        const t = yield* timed(backend.push(events.slice(i, i + 100)))
        pushTimes.push(t.durationMs)
      }
      // second half: one push call; the client splits it into requests of <= 100 events
      const rest = yield* timed(backend.push(events.slice(half)))
      const pushMs = ms(t0)

      const { items, durationMs: pullMs } = yield* pullAll(backend, Option.none())
      const pages = items.map(itemSummary)
      const seqs = items.flatMap((i) => i.batch.map((b) => b.eventEncoded.seqNum))
      check(seqs.length === total, `expected ${total} events`, { got: seqs.length, pages })
      for (let i = 0; i < seqs.length; i++) check(seqs[i] === i + 1, 'events not ascending/contiguous', { at: i, seq: seqs[i] })
      let seen = 0
      items.forEach((item, i) => {
        check(item.batch.length <= 100, 'page larger than 100 events', { page: i, size: item.batch.length })
        seen += item.batch.length
        const last = i === items.length - 1
        if (last) check(item.pageInfo._tag === 'NoMore', 'last page must be NoMore', { page: i, pageInfo: toPlain(item.pageInfo) })
        else
          check(
            item.pageInfo._tag === 'MoreKnown' && item.pageInfo.remaining === total - seen,
            'intermediate page must be MoreKnown with correct remaining',
            { page: i, pageInfo: toPlain(item.pageInfo), expectedRemaining: total - seen },
          )
      })
      const allEq = items.flatMap((i) => i.batch).every((b, i) => sameEvent(b.eventEncoded, events[i]))
      check(allEq, 'pulled events differ from pushed events')

      // pull from the middle
      const mid = half
      const fromMid = yield* pullAll(backend, cursorAt(mid))
      const midSeqs = fromMid.items.flatMap((i) => i.batch.map((b) => b.eventEncoded.seqNum))
      check(midSeqs.length === total - mid && midSeqs[0] === mid + 1, 'cursor pull from the middle', {
        count: midSeqs.length,
        first: midSeqs[0],
      })

      return {
        events: total,
        pushCallsOf100: pushTimes.length,
        pushCallMs: pushTimes,
        clientSplitPush: { events: total - half, ms: rest.durationMs },
        pushMs,
        pullMs,
        pageCount: items.length,
        pages,
        cursorPull: { cursor: mid, events: midSeqs.length, pageCount: fromMid.items.length, ms: fromMid.durationMs },
      }
    }),
}

// -- upstream's sync-provider conformance cases -------------------------------------------------

const upstreamEvents = (count, { payload, prefix }) =>
  Array.from({ length: count }, (_, i) => ({
    name: 'v1.TodoCreated',
    args: { id: `${prefix}-${i}`, text: payload ?? `Event ${i}`, completed: false },
    seqNum: i + 1,
    parentSeqNum: i,
    clientId: `${prefix}-client`,
    sessionId: `${prefix}-session`,
  }))

const firstNonEmpty = (stream) =>
  stream.pipe(
    Stream.filter((item) => item.batch.length > 0),
    Stream.runHead,
    Effect.map(Option.getOrThrow),
  )

// 'streams dozens of extremely large batches' / 'streams thousands of small batches': push the
// events in batches, then ONE non-live pull must bring every event (LiveStore's HTTP client sends
// one request and does not follow pageInfo).
const largeBatches = (eventCount, payloadSize, pushBatchSize) => (storeId) =>
  Effect.gen(function* () {
    const { backend } = yield* makeClient(storeId)
    const events = upstreamEvents(eventCount, { payload: 'x'.repeat(payloadSize), prefix: storeId })
    const t0 = performance.now()
    for (let i = 0; i < events.length; i += pushBatchSize) yield* backend.push(events.slice(i, i + pushBatchSize))
    const pushMs = ms(t0)
    const { items, durationMs } = yield* pullAll(backend, Option.none())
    const totalEvents = items.reduce((n, item) => n + item.batch.length, 0)
    const nonEmptyBatches = items.filter((item) => item.batch.length > 0).length
    check(totalEvents === eventCount, `one pull must bring all ${eventCount} events`, {
      totalEvents,
      lastPageInfo: toPlain(items.at(-1)?.pageInfo),
    })
    check(nonEmptyBatches > 0, 'no non-empty batch')
    const seqs = items.flatMap((i) => i.batch.map((b) => b.eventEncoded.seqNum))
    seqs.forEach((seq, i) => check(seq === i + 1, 'events not ascending/contiguous', { at: i, seq }))
    check(items.at(-1).pageInfo._tag === 'NoMore', 'last page must be NoMore', { pageInfo: toPlain(items.at(-1).pageInfo) })
    return { events: totalEvents, nonEmptyBatches, maxBatchSize: Math.max(...items.map((i) => i.batch.length)), pushMs, pullMs: durationMs }
  })

scenarios['upstream-pull-with-cursor'] = (storeId) =>
  Effect.gen(function* () {
    const { backend } = yield* makeClient(storeId)
    yield* backend.push(upstreamEvents(1, { prefix: storeId }))
    const first = yield* firstNonEmpty(backend.pull(Option.none()))
    check(first.batch.length === 1, 'first pull: one event', { batch: first.batch.length })
    const cursor = Option.some({ eventSequenceNumber: first.batch.at(-1).eventEncoded.seqNum, metadata: Option.none() })
    const second = yield* backend.pull(cursor).pipe(Stream.runHead, Effect.map(Option.getOrThrow))
    check(second.batch.length === 0 && second.pageInfo._tag === 'NoMore', 'pull from the cursor: empty NoMore', {
      batch: second.batch.length,
      pageInfo: toPlain(second.pageInfo),
    })
    return {}
  })

scenarios['upstream-live-pull-no-more'] = (storeId) =>
  Effect.gen(function* () {
    const { backend } = yield* makeClient(storeId)
    const first = yield* backend.pull(Option.none(), { live: true }).pipe(Stream.runHead, Effect.map(Option.getOrThrow))
    check(first.pageInfo._tag === 'NoMore', 'a live pull of an empty store starts with NoMore', { pageInfo: toPlain(first.pageInfo) })
    return {}
  })

scenarios['upstream-live-pull-later-event'] = (storeId) =>
  Effect.gen(function* () {
    const { backend } = yield* makeClient(storeId)
    const fiber = yield* Effect.fork(firstNonEmpty(backend.pull(Option.none(), { live: true })))
    yield* Effect.sleep(800)
    const t0 = performance.now()
    yield* backend.push(upstreamEvents(1, { prefix: storeId }))
    const result = yield* fiber.await.pipe(Effect.flatten)
    check(result.batch.length === 1, 'the live pull brings the later event', { batch: result.batch.length })
    return { visibleAfterPushMs: ms(t0) }
  })

scenarios['upstream-non-live-multiple'] = (storeId) =>
  Effect.gen(function* () {
    const { backend } = yield* makeClient(storeId)
    const events = upstreamEvents(2, { prefix: storeId })
    for (const event of events) yield* backend.push([event])
    const { items } = yield* pullAll(backend, Option.none())
    const pulled = items.flatMap((i) => i.batch)
    check(pulled.length >= 2, 'a non-live pull returns both events', { pulled: pulled.length })
    return { events: pulled.length }
  })

scenarios['upstream-few-large-60x120k'] = largeBatches(60, 120_000, 6)
scenarios['upstream-many-small-1800x1k'] = largeBatches(1_800, 1_024, 90)

/**
 * `writer`: commit WRITER_EVENTS events (in batches of 1 to 3, with short random pauses) into a
 * store that other clients write to at the same time, the way a LiveStore leader does it: on
 * ServerAheadError pull, put the pending events on top of the new head, push again. Then pull
 * the whole log and report it.
 */
scenarios.writer = (storeId) =>
  Effect.gen(function* () {
    const { backend } = yield* makeClient(storeId)
    const pullEvents = (cursor) =>
      pullAll(backend, cursor).pipe(Effect.map(({ items }) => items.flatMap((i) => i.batch.map((b) => b.eventEncoded))))
    let head = (yield* pullEvents(Option.none())).at(-1)?.seqNum ?? 0
    let next = 0
    let conflicts = 0
    while (next < WRITER_EVENTS) {
      const count = Math.min(1 + Math.floor(Math.random() * 3), WRITER_EVENTS - next)
      let attempt = 0
      while (true) {
        const batch = []
        for (let k = 0; k < count; k++) {
          batch.push({
            name: 'v1.TodoCreated',
            args: { id: `js-${next + k}`, text: `from LiveStore ${next + k}` },
            seqNum: head + k + 1,
            parentSeqNum: head + k,
            clientId: 'jsclnt',
            sessionId: 'jssess',
          })
        }
        const result = yield* Effect.either(backend.push(batch))
        if (result._tag === 'Right') {
          head += count
          break
        }
        check(result.left._tag === 'ServerAheadError', 'unexpected push error', plainError(result.left))
        conflicts++
        check(++attempt < 200, 'too many conflicts in a row', { head })
        const newer = yield* pullEvents(cursorAt(head))
        head = newer.at(-1)?.seqNum ?? head
      }
      next += count
      yield* Effect.sleep(Math.floor(Math.random() * 15))
    }
    // Wait (bounded by the scenario timeout) until the store holds WRITER_EXPECT events in all.
    let log = yield* pullEvents(Option.none())
    while (log.length < WRITER_EXPECT) {
      yield* Effect.sleep(50)
      log = yield* pullEvents(Option.none())
    }
    return { pushed: WRITER_EVENTS, conflicts, log: toPlain(log) }
  })

// pull-existing: a store that already holds events 1..DRIVER_PAGING_EVENTS (as paging-1000 leaves
// it), pulled from no cursor and from several cursors: order, no gaps or repeats, page sizes and
// MoreKnown/NoMore exactly as for any pull. With the archive on, most events then come from S3.
scenarios['pull-existing'] = (storeId) =>
  Effect.gen(function* () {
    const { backend } = yield* makeClient(storeId)
    const total = PAGING_EVENTS
    const checkPull = (items, from) => {
      const seqs = items.flatMap((i) => i.batch.map((b) => b.eventEncoded.seqNum))
      check(seqs.length === total - from, `expected ${total - from} events after ${from}`, { got: seqs.length })
      seqs.forEach((seq, i) => check(seq === from + i + 1, 'events not ascending/contiguous', { from, at: i, seq }))
      let seen = 0
      items.forEach((item, i) => {
        check(item.batch.length <= 100, 'page larger than 100 events', { page: i })
        seen += item.batch.length
        if (i === items.length - 1) check(item.pageInfo._tag === 'NoMore', 'last page must be NoMore', { from })
        else
          check(item.pageInfo._tag === 'MoreKnown' && item.pageInfo.remaining === seqs.length - seen, 'bad MoreKnown', {
            from,
            page: i,
            pageInfo: toPlain(item.pageInfo),
          })
      })
      return seqs.length
    }
    const full = yield* pullAll(backend, Option.none())
    checkPull(full.items, 0)
    const cursors = [1, 7, Math.floor(total / 3), Math.floor(total / 2) + 1, total - 5, total]
    const cursorPulls = []
    for (const cursor of cursors) {
      const { items, durationMs } = yield* pullAll(backend, cursorAt(cursor))
      cursorPulls.push({ cursor, events: checkPull(items, cursor), ms: durationMs })
    }
    return { events: total, pullMs: full.durationMs, pageCount: full.items.length, cursorPulls }
  })

/**
 * `todomvc`: the events of LiveStore's examples/web-todomvc, defined as that app defines them.
 * Pull the store (another client's events), decode every event's args with its schema (a browser
 * page shows nothing if one fails), then push todos of our own encoded by the same schemas.
 * Reports each decoded event re-encoded, and the encodings of fixed golden inputs.
 */
const todoEvents = () => {
  const defs = [
    Events.synced({ name: 'v1.TodoCreated', schema: Schema.Struct({ id: Schema.String, text: Schema.String }) }),
    Events.synced({ name: 'v1.TodoCompleted', schema: Schema.Struct({ id: Schema.String }) }),
    Events.synced({ name: 'v1.TodoUncompleted', schema: Schema.Struct({ id: Schema.String }) }),
    Events.synced({ name: 'v1.TodoDeleted', schema: Schema.Struct({ id: Schema.String, deletedAt: Schema.Date }) }),
  ]
  return Object.fromEntries(defs.map((d) => [d.name, d]))
}

scenarios.todomvc = (storeId) =>
  Effect.gen(function* () {
    const defs = todoEvents()
    const encode = (name, args) => Schema.encodeSync(defs[name].schema)(args)
    const { backend } = yield* makeClient(storeId)
    const { items } = yield* pullAll(backend, Option.none())
    const pulled = items.flatMap((i) => i.batch.map((b) => b.eventEncoded))
    const decoded = pulled.map((event) => {
      try {
        const args = Schema.decodeUnknownSync(defs[event.name].schema)(event.args)
        return { name: event.name, ok: true, reencoded: encode(event.name, args) }
      } catch (e) {
        return { name: event.name, ok: false, error: String(e?.message ?? e) }
      }
    })
    const head = pulled.at(-1)?.seqNum ?? 0
    const mine = [
      ['v1.TodoCreated', { id: 'js-1', text: 'from LiveStore' }],
      ['v1.TodoDeleted', { id: 'js-1', deletedAt: new Date(Date.UTC(2026, 4, 6, 7, 8, 9, 10)) }],
    ].map(([name, args], i) => ({
      name,
      args: encode(name, args),
      seqNum: head + i + 1,
      parentSeqNum: head + i,
      clientId: 'jsclnt',
      sessionId: 'jssess',
    }))
    yield* backend.push(mine)
    const golden = {
      'v1.TodoCreated': encode('v1.TodoCreated', { id: 'g', text: 'golden ✓ \u00e9' }),
      'v1.TodoDeleted': encode('v1.TodoDeleted', { id: 'g', deletedAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)) }),
    }
    return { decoded, pushed: mine, golden }
  })

// dump: a pull with no cursor; every event exactly as the client decoded it, and the backendId.
scenarios.dump = (storeId) =>
  Effect.gen(function* () {
    const { backend, kvBackendId } = yield* makeClient(storeId)
    const { items, durationMs } = yield* pullAll(backend, Option.none())
    const events = items.flatMap((i) => i.batch.map((b) => toPlain(b.eventEncoded)))
    return { events, backendId: yield* kvBackendId, pages: items.length, pullMs: durationMs }
  })

// resume: a client that synced up to DRIVER_CURSOR under DRIVER_BACKEND_ID (kept in its
// KeyValueStore, as a browser keeps it) pulls from its cursor, then pushes one event on the head.
// A reset would show as BackendIdMismatchError on the pull or the push: reported, not hidden.
scenarios.resume = (storeId) =>
  Effect.gen(function* () {
    const presetBackendId = process.env.DRIVER_BACKEND_ID
    const from = Number(process.env.DRIVER_CURSOR ?? 0)
    check(presetBackendId, 'DRIVER_BACKEND_ID is required', {})
    const { backend, kvBackendId } = yield* makeClient(storeId, { presetBackendId })
    const pulled = yield* Effect.either(pullAll(backend, from > 0 ? cursorAt(from) : Option.none()))
    if (pulled._tag === 'Left') return { pullError: plainError(pulled.left), backendId: yield* kvBackendId }
    const events = pulled.right.items.flatMap((i) => i.batch.map((b) => toPlain(b.eventEncoded)))
    const head = events.at(-1)?.seqNum ?? from
    const pushed = yield* Effect.either(backend.push([makeEvent(head + 1, head, 'resumed')]))
    return {
      events,
      backendId: yield* kvBackendId,
      pushedSeqNum: pushed._tag === 'Right' ? head + 1 : null,
      pushError: pushed._tag === 'Left' ? plainError(pushed.left) : null,
    }
  })

const runScenario = makeRunScenario({ Effect, scenarios, timeoutMs: TIMEOUT_MS, toPlain, plainError })

const baseStore = storeIdArg ?? `interop-${Date.now()}-${randomUUID().slice(0, 8)}`

const program = Effect.gen(function* () {
  if (scenarioArg !== 'all') return yield* runScenario(scenarioArg, baseStore)
  const results = {}
  for (const name of SCENARIOS) results[name] = yield* runScenario(name, storeFor(baseStore, name))
  const failed = SCENARIOS.filter((n) => !results[n].ok)
  return { scenario: 'all', ok: failed.length === 0, failed, results }
}).pipe(
  Effect.provide(FetchHttpClient.layer),
  Effect.provide(Layer.mergeAll(Logger.minimumLogLevel(LogLevel.Warning))),
)

const result = await Effect.runPromise(program).catch((e) => ({ scenario: scenarioArg, ok: false, error: plainError(e) }))
writeStdout(`${JSON.stringify({ baseUrl, ...result })}\n`, () => process.exit(result.ok ? 0 : 1))

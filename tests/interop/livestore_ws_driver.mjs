#!/usr/bin/env node
// Drives the REAL LiveStore 0.4 WebSocket sync client (`makeWsSync` from @livestore/sync-cf/client)
// against a sync server and runs one scenario (see README.md).
//
//   node livestore_ws_driver.mjs <baseUrl> <scenario> [storeId]
//
// Prints exactly ONE JSON object on stdout; exit code 0 when the scenario passed, 1 when it
// failed (ok:false and an `error`), 2 on bad usage. The client's own logs go to stderr.
//
// Env: DRIVER_TIMEOUT_MS (per scenario, default 60000), DRIVER_SAMPLES (latency, default 200),
// DRIVER_CATCHUP_EVENTS (catchup, default 10000), DRIVER_PUSHERS (concurrent, default 8),
// DRIVER_RECONNECT_SECONDS (reconnect, default 12).

import { performance } from 'node:perf_hooks'
import { randomUUID } from 'node:crypto'
import { check, makeRunScenario, makeToPlain, ms } from './driver_common.mjs'
import WebSocket from 'ws'

const writeStdout = process.stdout.write.bind(process.stdout)
for (const m of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[m] = (...args) => process.stderr.write(`${args.map(String).join(' ')}\n`)
}

// Every frame each socket receives, for checks the client API cannot make (message sizes, chunks
// for an interrupted request, no Exit on a live pull). Must be global BEFORE the client loads.
const sockets = []
class TappedWebSocket extends WebSocket {
  constructor(...args) {
    super(...args)
    const record = { url: String(args[0]), frames: [], closes: [] }
    sockets.push(record)
    this.addEventListener('message', (event) => {
      const data = typeof event.data === 'string' ? event.data : Buffer.from(event.data).toString()
      record.frames.push({ at: performance.now(), bytes: Buffer.byteLength(data), data })
    })
    this.addEventListener('close', (event) => record.closes.push(event.code))
  }
}
globalThis.WebSocket = TappedWebSocket

const SCENARIOS = [
  'connect',
  'empty-live-pull',
  'paging-250',
  'push-echo',
  'cross-connection',
  'server-ahead',
  'concurrent-pushers',
  'interrupt',
  'ws-push-over-32k',
  'composite-large-events',
  'ws-and-http-converge',
  'pages-then-live',
  'two-clients-converge',
  'catchup-race',
]
// Only when named: they need a server set up for them, or are benches.
const EXTRA_SCENARIOS = ['reconnect', 'latency', 'catchup', 'fill']

// A scenario, `all`, or a comma-separated list of scenarios (one report with `results`, as `all`).
const [baseUrl, scenarioArg, storeIdArg] = process.argv.slice(2)
const known = (name) => SCENARIOS.includes(name) || EXTRA_SCENARIOS.includes(name)
const scenarioList = scenarioArg === 'all' ? SCENARIOS : (scenarioArg ?? '').split(',')
if (!baseUrl || !scenarioArg || !scenarioList.every(known)) {
  writeStdout(`${JSON.stringify({ ok: false, error: { message: `usage: node livestore_ws_driver.mjs <baseUrl> <${[...SCENARIOS, 'all', ...EXTRA_SCENARIOS].join('|')}> [storeId]` } })}\n`)
  process.exit(2)
}

let makeWsSync, makeHttpSync, Chunk, Effect, Fiber, FetchHttpClient, KeyValueStore, Layer, Option, Stream, Logger, LogLevel, Ref
try {
  ;({ makeWsSync, makeHttpSync } = await import('@livestore/sync-cf/client'))
  ;({ Chunk, Effect, Fiber, FetchHttpClient, KeyValueStore, Layer, Option, Stream, Logger, LogLevel, Ref } = await import('@livestore/utils/effect'))
} catch (e) {
  writeStdout(`${JSON.stringify({ ok: false, scenario: scenarioArg, error: { message: `cannot load the LiveStore client (npm ci in tests/interop): ${e?.message ?? e}` } })}\n`)
  process.exit(1)
}

const TIMEOUT_MS = Number(process.env.DRIVER_TIMEOUT_MS ?? 60_000)
const SAMPLES = Number(process.env.DRIVER_SAMPLES ?? 200)
const CATCHUP_EVENTS = Number(process.env.DRIVER_CATCHUP_EVENTS ?? 10_000)
const PUSHERS = Number(process.env.DRIVER_PUSHERS ?? 8)
const RECONNECT_SECONDS = Number(process.env.DRIVER_RECONNECT_SECONDS ?? 12)

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null
}

const toPlain = makeToPlain({ Option, Chunk })

const makeEvent = (seqNum, parentSeqNum, id, text = `todo ${id}`) => ({
  name: 'v1.TodoCreated',
  args: { id, text },
  seqNum,
  parentSeqNum,
  clientId: 'wsdriver',
  sessionId: 'wssession',
})
const makeEvents = (from, to, prefix, text) => {
  const events = []
  for (let s = from; s <= to; s++) events.push(makeEvent(s, s - 1, `${prefix}-${s}`, text))
  return events
}
const cursorAt = (eventSequenceNumber) => Option.some({ eventSequenceNumber, metadata: Option.none() })

// The app's payload: the auth token, when the server requires one.
const PAYLOAD = process.env.DRIVER_TOKEN ? { authToken: process.env.DRIVER_TOKEN } : undefined

const withKv = (effect) => Effect.provide(effect, KeyValueStore.layerMemory)

// `connect` waits for the Pong to the client's next scheduled Ping (every 10 s): once the client
// is connected, calling it again would wait up to 10 s for nothing. So only while not connected.
const connected = (backend) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    if (yield* backend.isConnected.get) return 0
    yield* backend.connect
    while (!(yield* backend.isConnected.get)) yield* Effect.sleep(20)
    return ms(t0)
  })

/** A WebSocket client (makeWsSync), built as LiveStore's sync-provider tests build one. */
const wsClient = (storeId) =>
  withKv(
    Effect.gen(function* () {
      const backend = yield* makeWsSync({ url: baseUrl })({ storeId, clientId: 'wsdriver', payload: PAYLOAD })
      // The socket opens with the client's first ping: the newest socket once connected is its own
      // (the frames of later sockets, reconnects and other clients, follow it in `sockets`).
      const connectMs = yield* connected(backend)
      return { backend, socketIndex: sockets.length - 1, connectMs }
    }),
  )
const httpClient = (storeId) =>
  withKv(makeHttpSync({ url: baseUrl, ping: { enabled: false } })({ storeId, clientId: 'httpdriver', payload: PAYLOAD }))

/** The composite client of docs/websocket.md: live pull over WebSocket, push over HTTP. */
const compositeClient = (storeId) =>
  withKv(
    Effect.gen(function* () {
      const args = { storeId, clientId: 'composite', payload: PAYLOAD }
      const ws = yield* makeWsSync({ url: baseUrl })(args)
      const http = yield* makeHttpSync({ url: baseUrl, ping: { enabled: false } })(args)
      return { ...ws, push: http.push }
    }),
  )

/**
 * A live pull collecting what it receives: { seqs, items, pageInfos, arrivals, errors, fiber }.
 * `restart`: re-pull from the last event seen whenever the stream fails (the leader's rule).
 */
const livePull = (backend, { cursor = 0, restart = false } = {}) =>
  Effect.gen(function* () {
    const state = { seqs: [], items: [], pageInfos: [], arrivals: [], errors: [], pulls: 0, firstAt: null }
    const once = (from) =>
      backend.pull(from === 0 ? Option.none() : cursorAt(from), { live: true }).pipe(
        Stream.runForEach((item) =>
          Effect.sync(() => {
            if (state.firstAt === null) state.firstAt = performance.now()
            state.items.push(item.batch.length)
            state.pageInfos.push(toPlain(item.pageInfo))
            for (const b of item.batch) {
              state.seqs.push(b.eventEncoded.seqNum)
              state.arrivals.push({ seq: b.eventEncoded.seqNum, id: b.eventEncoded.args?.id, at: performance.now() })
            }
          }),
        ),
      )
    const loop = Effect.gen(function* () {
      while (true) {
        state.pulls++
        const from = state.seqs.at(-1) ?? cursor
        const exit = yield* Effect.either(once(from))
        if (exit._tag === 'Right') {
          state.errors.push({ _tag: 'Exit' }) // a live pull must never end
          return
        }
        state.errors.push({ _tag: exit.left?._tag ?? 'unknown', message: String(exit.left?.message ?? '') })
        if (!restart) return
        while (!(yield* backend.isConnected.get)) yield* Effect.sleep(50)
      }
    })
    state.fiber = yield* Effect.forkScoped(loop)
    return state
  })

const waitFor = (predicate, what, timeoutMs = TIMEOUT_MS - 5_000) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    while (!predicate()) {
      check(performance.now() - t0 < timeoutMs, `timed out waiting for ${what}`)
      yield* Effect.sleep(5)
    }
  })

const checkExactlyOnce = (seqs, from, to, who) => {
  const expected = Array.from({ length: to - from }, (_, i) => from + i + 1)
  check(JSON.stringify(seqs) === JSON.stringify(expected), `${who}: expected each of ${from + 1}..${to} once, in order`, {
    got: seqs.length > 40 ? [...seqs.slice(0, 20), '...', ...seqs.slice(-20)] : seqs,
    count: seqs.length,
  })
}

const framesOf = (socketIndex) => sockets.slice(socketIndex).flatMap((s) => s.frames)
const decoded = (frames) => frames.map((f) => ({ ...f, message: JSON.parse(f.data) }))
/** The request id of the first Chunk on a socket (its client's live pull). */
const pullRequestId = (socketIndex) => decoded(sockets[socketIndex].frames).find((f) => f.message._tag === 'Chunk')?.message.requestId

/** Push `events` with the leader's rule: on ServerAheadError wait for the live pull to move on. */
const pushRebasing = (backend, pull, prefix, count, { batch = 1 } = {}) =>
  Effect.gen(function* () {
    let pushed = 0
    let conflicts = 0
    while (pushed < count) {
      const n = Math.min(batch, count - pushed)
      const head = pull.seqs.at(-1) ?? 0
      const events = Array.from({ length: n }, (_, k) => makeEvent(head + k + 1, head + k, `${prefix}-${pushed + k}`))
      const result = yield* Effect.either(backend.push(events))
      if (result._tag === 'Right') {
        pushed += n
        yield* waitFor(() => (pull.seqs.at(-1) ?? 0) >= head + n, `the echo of ${prefix}-${pushed - 1}`)
        continue
      }
      check(result.left._tag === 'ServerAheadError', 'unexpected push error', toPlain(result.left))
      conflicts++
      yield* waitFor(() => (pull.seqs.at(-1) ?? 0) > head, 'the events that put the server ahead')
    }
    return conflicts
  })

// -------------------------------------------------------------------------------------------

const scenarios = {
  connect: (storeId) =>
    Effect.gen(function* () {
      const backend = yield* withKv(makeWsSync({ url: baseUrl })({ storeId, clientId: 'wsdriver', payload: PAYLOAD }))
      check((yield* backend.isConnected.get) === false, 'isConnected starts false')
      const connectMs = yield* connected(backend)
      check(backend.metadata.protocol === 'ws', 'the WebSocket transport', backend.metadata)
      return { connectMs }
    }),

  'empty-live-pull': (storeId) =>
    Effect.gen(function* () {
      const { backend, socketIndex } = yield* wsClient(storeId)
      yield* connected(backend)
      const t0 = performance.now()
      const pull = yield* livePull(backend)
      yield* waitFor(() => pull.items.length >= 1, 'the first page')
      check(pull.items[0] === 0 && pull.pageInfos[0]._tag === 'NoMore', 'an empty NoMore page', pull)
      yield* Effect.sleep(300)
      check(pull.errors.length === 0 && pull.items.length === 1, 'nothing else, and no Exit', pull)
      const exits = decoded(framesOf(socketIndex)).filter((f) => f.message._tag === 'Exit')
      check(exits.length === 0, 'a live pull never gets an Exit', exits)
      return { firstPageMs: ms(t0) }
    }),

  'paging-250': (storeId) =>
    Effect.gen(function* () {
      const writer = yield* wsClient(storeId)
      yield* connected(writer.backend)
      yield* writer.backend.push(makeEvents(1, 250, 'page')) // the client splits it into 100/100/50
      const { backend } = yield* wsClient(storeId)
      yield* connected(backend)
      const pull = yield* livePull(backend)
      yield* waitFor(() => pull.seqs.length >= 250, '250 events')
      check(JSON.stringify(pull.items) === '[100,100,50]', 'pages of 100/100/50', pull.items)
      check(
        JSON.stringify(pull.pageInfos) ===
          JSON.stringify([{ _tag: 'MoreKnown', remaining: 150 }, { _tag: 'MoreKnown', remaining: 50 }, { _tag: 'NoMore' }]),
        'MoreKnown 150, MoreKnown 50, NoMore',
        pull.pageInfos,
      )
      checkExactlyOnce(pull.seqs, 0, 250, 'live pull')
      // a non-live pull ends (Exit), with the same pages
      const t0 = performance.now()
      const items = yield* backend.pull(Option.none(), { live: false }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      check(JSON.stringify(items.map((i) => i.batch.length)) === '[100,100,50]', 'non-live pages', items.length)
      const fromCursor = yield* backend.pull(cursorAt(200), { live: false }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      checkExactlyOnce(fromCursor.flatMap((i) => i.batch.map((b) => b.eventEncoded.seqNum)), 200, 250, 'cursor pull')
      return { nonLivePullMs: ms(t0) }
    }),

  'push-echo': (storeId) =>
    Effect.gen(function* () {
      const { backend } = yield* wsClient(storeId)
      yield* connected(backend)
      const pull = yield* livePull(backend)
      yield* waitFor(() => pull.items.length >= 1, 'the first page')
      const t0 = performance.now()
      yield* backend.push(makeEvents(1, 3, 'echo'))
      const pushMs = ms(t0)
      yield* waitFor(() => pull.seqs.length >= 3, 'the echo')
      const echoMs = ms(t0)
      yield* backend.push(makeEvents(4, 4, 'echo'))
      yield* waitFor(() => pull.seqs.length >= 4, 'the second echo')
      yield* Effect.sleep(300)
      checkExactlyOnce(pull.seqs, 0, 4, 'the pusher')
      return { pushMs, echoMs }
    }),

  'cross-connection': (storeId) =>
    Effect.gen(function* () {
      const a = yield* wsClient(storeId)
      const b = yield* wsClient(storeId)
      yield* connected(a.backend)
      yield* connected(b.backend)
      const pullA = yield* livePull(a.backend)
      const pullB = yield* livePull(b.backend)
      yield* waitFor(() => pullA.items.length >= 1 && pullB.items.length >= 1, 'the first pages')
      const latencies = []
      for (let seq = 1; seq <= 20; seq++) {
        const t0 = performance.now()
        yield* a.backend.push([makeEvent(seq, seq - 1, `x-${seq}`)])
        yield* waitFor(() => pullB.seqs.length >= seq, `event ${seq} on B`)
        latencies.push(ms(t0))
      }
      yield* waitFor(() => pullA.seqs.length >= 20, 'the echoes on A')
      yield* Effect.sleep(300)
      checkExactlyOnce(pullB.seqs, 0, 20, 'B')
      checkExactlyOnce(pullA.seqs, 0, 20, 'A (echo)')
      return { p50Ms: percentile(latencies, 50), maxMs: Math.max(...latencies) }
    }),

  'server-ahead': (storeId) =>
    Effect.gen(function* () {
      const { backend } = yield* wsClient(storeId)
      yield* connected(backend)
      yield* backend.push(makeEvents(1, 2, 'ahead'))
      const error = yield* backend.push([makeEvent(1, 0, 'stale')]).pipe(Effect.flip)
      check(error?._tag === 'ServerAheadError', 'a ServerAheadError', toPlain(error))
      check(error.minimumExpectedNum === 2 && error.providedNum === 0, 'minimumExpectedNum 2, providedNum 0', toPlain(error))
      const mismatch = yield* withKv(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set('backendId', 'wrong-backend-id')
          const other = yield* makeWsSync({ url: baseUrl })({ storeId, clientId: 'x', payload: PAYLOAD })
          yield* connected(other)
          return yield* other.push([makeEvent(3, 2, 'mismatch')]).pipe(Effect.flip)
        }),
      )
      check(mismatch?._tag === 'BackendIdMismatchError' && mismatch.received === 'wrong-backend-id', 'a BackendIdMismatchError', toPlain(mismatch))
      return { error: { _tag: error._tag, minimumExpectedNum: error.minimumExpectedNum, providedNum: error.providedNum } }
    }),

  'concurrent-pushers': (storeId) =>
    Effect.gen(function* () {
      const clients = []
      for (let i = 0; i < PUSHERS; i++) clients.push(yield* wsClient(storeId))
      for (const c of clients) yield* connected(c.backend)
      const pulls = []
      for (const c of clients) pulls.push(yield* livePull(c.backend))
      yield* waitFor(() => pulls.every((p) => p.items.length >= 1), 'every first page')
      const perClient = 10
      const t0 = performance.now()
      const conflicts = yield* Effect.all(
        clients.map((c, i) => pushRebasing(c.backend, pulls[i], `p${i}`, perClient, { batch: 1 + (i % 3) })),
        { concurrency: 'unbounded' },
      )
      const total = PUSHERS * perClient
      yield* waitFor(() => pulls.every((p) => p.seqs.length >= total), 'every event on every subscriber').pipe(
        Effect.mapError((e) => new ScenarioFailure(e.message, { counts: pulls.map((p) => p.seqs.length), errors: pulls.map((p) => p.errors) })),
      )
      yield* Effect.sleep(500)
      pulls.forEach((p, i) => checkExactlyOnce(p.seqs, 0, total, `subscriber ${i}`))
      const ids = pulls[0].arrivals.map((a) => a.id)
      check(new Set(ids).size === total, 'every pushed event once in the log', { distinct: new Set(ids).size })
      pulls.forEach((p, i) => check(p.errors.length === 0, `subscriber ${i}'s pull ended`, p.errors))
      return { events: total, conflicts: conflicts.reduce((a, b) => a + b, 0), ms: ms(t0) }
    }),

  interrupt: (storeId) =>
    Effect.gen(function* () {
      const { backend, socketIndex } = yield* wsClient(storeId)
      const writer = yield* wsClient(storeId)
      yield* connected(backend)
      yield* connected(writer.backend)
      const first = yield* livePull(backend)
      yield* waitFor(() => first.items.length >= 1, 'the first page')
      const requestIdOf = (pred) => decoded(framesOf(socketIndex)).find((f) => f.message._tag === 'Chunk' && pred(f))?.message.requestId
      const firstId = requestIdOf(() => true)
      yield* Fiber.interrupt(first.fiber) // the client sends {"_tag":"Interrupt","requestId":...}
      yield* Effect.sleep(300)
      const second = yield* livePull(backend)
      yield* waitFor(() => second.items.length >= 1, 'the second pull first page')
      yield* writer.backend.push(makeEvents(1, 2, 'after-interrupt'))
      yield* waitFor(() => second.seqs.length >= 2, 'the events on the second pull')
      yield* Effect.sleep(500)
      const late = decoded(framesOf(socketIndex)).filter((f) => f.message._tag === 'Chunk' && f.message.requestId === firstId)
      check(late.length === 1, 'no chunk for the interrupted pull after its first page', { chunks: late.length, firstId })
      checkExactlyOnce(second.seqs, 0, 2, 'the second pull')
      return { interruptedRequestId: firstId }
    }),

  'ws-push-over-32k': (storeId) =>
    Effect.gen(function* () {
      const { backend, socketIndex } = yield* wsClient(storeId)
      yield* connected(backend)
      // one event of 40 KB: one frame over API Gateway's 32 KB -> the connection closes with 1009
      const error = yield* backend.push([makeEvent(1, 0, 'big', 'x'.repeat(40_000))]).pipe(Effect.flip)
      check(error?._tag === 'UnknownError', 'an UnknownError (the socket closed)', toPlain(error))
      const codes = sockets.slice(socketIndex).flatMap((s) => s.closes)
      check(codes.includes(1009), 'closed with 1009', { codes })
      while (!(yield* backend.isConnected.get)) yield* Effect.sleep(50)
      yield* backend.push([makeEvent(1, 0, 'small')]) // reconnected, a small push works
      return { closeCodes: codes }
    }),

  'composite-large-events': (storeId) =>
    Effect.gen(function* () {
      const composite = yield* compositeClient(storeId)
      const observer = yield* wsClient(storeId)
      yield* connected(composite)
      yield* connected(observer.backend)
      const pull = yield* livePull(observer.backend)
      const own = yield* livePull(composite)
      yield* waitFor(() => pull.items.length >= 1 && own.items.length >= 1, 'the first pages')
      // 10 events of 100 KB: over HTTP (one push of ~1 MB, split by the client at 900 KB)
      yield* composite.push(makeEvents(1, 10, 'large', 'y'.repeat(100_000)))
      yield* waitFor(() => pull.seqs.length >= 10 && own.seqs.length >= 10, 'the large events over WebSocket')
      checkExactlyOnce(pull.seqs, 0, 10, 'observer')
      checkExactlyOnce(own.seqs, 0, 10, 'the pusher (echo)')
      const biggest = Math.max(...framesOf(observer.socketIndex).map((f) => f.bytes))
      check(biggest <= 128 * 1024, 'every message within 128 KB', { biggest })
      // a single event too large for any WebSocket message is refused on every transport
      const refused = yield* composite.push([makeEvent(11, 10, 'huge', 'z'.repeat(130_000))]).pipe(Effect.flip)
      check(refused?._tag === 'UnknownError' && JSON.stringify(toPlain(refused)).includes('InvalidRequestError'), 'an InvalidRequestError', toPlain(refused))
      return { biggestMessageBytes: biggest, messagesToObserver: pull.items.length }
    }),

  'ws-and-http-converge': (storeId) =>
    Effect.gen(function* () {
      const ws = yield* wsClient(storeId)
      const http = yield* httpClient(storeId)
      yield* connected(ws.backend)
      const pull = yield* livePull(ws.backend)
      yield* waitFor(() => pull.items.length >= 1, 'the first page')
      yield* http.push(makeEvents(1, 5, 'from-http'))
      yield* waitFor(() => pull.seqs.length >= 5, 'the HTTP pushes on the WS live pull')
      yield* ws.backend.push(makeEvents(6, 10, 'from-ws'))
      yield* waitFor(() => pull.seqs.length >= 10, 'the echo')
      const items = yield* http.pull(Option.none()).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      const httpLog = items.flatMap((i) => i.batch.map((b) => b.eventEncoded.args.id))
      const wsLog = pull.arrivals.map((a) => a.id)
      check(JSON.stringify(httpLog) === JSON.stringify(wsLog), 'both clients hold the same log', { httpLog, wsLog })
      checkExactlyOnce(pull.seqs, 0, 10, 'the WS client')
      return { events: httpLog.length }
    }),

  // The stored pages of a live pull, then live chunks on the same pull (never an Exit).
  'pages-then-live': (storeId) =>
    Effect.gen(function* () {
      const writer = yield* wsClient(storeId)
      yield* writer.backend.push(makeEvents(1, 150, 'stored'))
      const reader = yield* wsClient(storeId)
      const pull = yield* livePull(reader.backend)
      yield* waitFor(() => pull.seqs.length >= 150, 'the stored pages')
      check(JSON.stringify(pull.items.slice(0, 2)) === '[100,50]', 'pages of 100/50', pull.items)
      check(pull.pageInfos[0]._tag === 'MoreKnown' && pull.pageInfos[1]._tag === 'NoMore', 'MoreKnown then NoMore', pull.pageInfos)
      const t0 = performance.now()
      for (let seq = 151; seq <= 155; seq++) yield* writer.backend.push([makeEvent(seq, seq - 1, `live-${seq}`)])
      yield* waitFor(() => pull.seqs.length >= 155, 'the live chunks')
      const liveMs = ms(t0)
      yield* Effect.sleep(300)
      checkExactlyOnce(pull.seqs, 0, 155, 'the reader')
      check(pull.pageInfos.slice(2).every((p) => p._tag === 'NoMore'), 'live chunks are NoMore', pull.pageInfos)
      const exits = decoded(framesOf(reader.socketIndex)).filter((f) => f.message._tag === 'Exit' && f.message.requestId === pullRequestId(reader.socketIndex))
      check(exits.length === 0 && pull.errors.length === 0, 'the live pull never ended', { exits, errors: pull.errors })
      return { pages: pull.items.slice(0, 2), liveChunks: pull.items.length - 2, liveMs }
    }),

  // Two clients pushing at once (rebasing on ServerAheadError, as the leader does) end with the
  // same log, each event once, in order, on both live pulls.
  'two-clients-converge': (storeId) =>
    Effect.gen(function* () {
      const a = yield* wsClient(storeId)
      const b = yield* wsClient(storeId)
      const pullA = yield* livePull(a.backend)
      const pullB = yield* livePull(b.backend)
      yield* waitFor(() => pullA.items.length >= 1 && pullB.items.length >= 1, 'the first pages')
      const conflicts = yield* Effect.all(
        [pushRebasing(a.backend, pullA, 'a', 10, { batch: 2 }), pushRebasing(b.backend, pullB, 'b', 10, { batch: 1 })],
        { concurrency: 'unbounded' },
      )
      yield* waitFor(() => pullA.seqs.length >= 20 && pullB.seqs.length >= 20, 'every event on both')
      yield* Effect.sleep(300)
      checkExactlyOnce(pullA.seqs, 0, 20, 'A')
      checkExactlyOnce(pullB.seqs, 0, 20, 'B')
      const idsA = pullA.arrivals.map((x) => x.id)
      const idsB = pullB.arrivals.map((x) => x.id)
      check(JSON.stringify(idsA) === JSON.stringify(idsB), 'the same log on both', { idsA, idsB })
      check(new Set(idsA).size === 20, 'every pushed event once', idsA)
      return { events: 20, conflicts: conflicts[0] + conflicts[1] }
    }),

  // ws-transport.md §6: a push that lands while another client's live pull is catching up must
  // reach that pull exactly once, in order (LiveStore's own server sends it twice). A writer pushes
  // without pause while fresh readers catch up on CATCHUP_RACE_FILL stored events, one after the
  // other, until pushes have landed inside some reader's catch-up.
  'catchup-race': (storeId) =>
    Effect.gen(function* () {
      const FILL = Number(process.env.DRIVER_CATCHUP_RACE_FILL ?? 500)
      const writer = yield* wsClient(storeId)
      yield* writer.backend.push(makeEvents(1, FILL, 'fill'))
      let seq = FILL
      let stop = false
      const done = [] // when each racing push's Exit arrived
      const pusher = yield* Effect.fork(
        Effect.gen(function* () {
          while (!stop) {
            yield* writer.backend.push([makeEvent(seq + 1, seq, `race-${seq + 1}`)])
            seq++
            done.push(performance.now())
          }
        }),
      )
      const readers = []
      let landed = 0
      for (let round = 0; round < 6 && landed < 3; round++) {
        const reader = yield* wsClient(storeId)
        const startedAt = performance.now()
        const pull = yield* livePull(reader.backend)
        yield* waitFor(() => pull.seqs.length >= FILL && pull.pageInfos.some((p) => p._tag === 'NoMore'), `reader ${round} caught up`)
        const caughtUpAt = pull.arrivals.find((x) => x.seq === FILL).at
        const during = done.filter((t) => t > startedAt && t < caughtUpAt).length
        landed += during
        readers.push({ pull, during, catchupMs: Math.round(caughtUpAt - startedAt) })
      }
      yield* Effect.sleep(300)
      stop = true
      yield* Fiber.join(pusher)
      const last = seq
      yield* waitFor(() => readers.every((r) => r.pull.seqs.length >= last), 'every event on every reader')
      yield* Effect.sleep(500)
      readers.forEach((r, i) => checkExactlyOnce(r.pull.seqs, 0, last, `reader ${i}`))
      readers.forEach((r, i) => check(r.pull.errors.length === 0, `reader ${i}'s pull ended`, r.pull.errors))
      check(landed >= 1, 'no push landed during a catch-up (the race was not exercised)', readers.map((r) => r.catchupMs))
      return { events: last, readers: readers.length, pushesDuringCatchup: landed, catchupMs: readers.map((r) => r.catchupMs) }
    }),

  // Needs a server whose connections close after a few seconds (stratasync dev --ws-max-lifetime 4):
  // a subscriber that re-pulls from its cursor on every close sees each event once, in order.
  reconnect: (storeId) =>
    Effect.gen(function* () {
      const subscriber = yield* wsClient(storeId)
      const writer = yield* httpClient(storeId)
      yield* connected(subscriber.backend)
      const pull = yield* livePull(subscriber.backend, { restart: true })
      yield* waitFor(() => pull.items.length >= 1, 'the first page')
      let seq = 0
      const t0 = performance.now()
      while (performance.now() - t0 < RECONNECT_SECONDS * 1000) {
        seq++
        yield* writer.push([makeEvent(seq, seq - 1, `r-${seq}`)])
        yield* Effect.sleep(50)
      }
      yield* waitFor(() => pull.seqs.length >= seq, 'every event after the reconnects')
      yield* Effect.sleep(500)
      checkExactlyOnce(pull.seqs, 0, seq, 'the reconnecting subscriber')
      const closes = sockets.slice(subscriber.socketIndex).flatMap((s) => s.closes)
      const offline = pull.errors.filter((e) => e._tag === 'IsOfflineError').length
      check(offline >= 1, 'the server closed the connection at least once', { errors: pull.errors, closes })
      return { events: seq, reconnects: offline, closeCodes: closes, pulls: pull.pulls }
    }),

  // bench: commit on A (push over WS) until visible on B's live pull, SAMPLES times
  latency: (storeId) =>
    Effect.gen(function* () {
      const a = yield* wsClient(storeId)
      const b = yield* wsClient(storeId)
      yield* connected(a.backend)
      yield* connected(b.backend)
      const pullA = yield* livePull(a.backend)
      const pullB = yield* livePull(b.backend)
      yield* waitFor(() => pullA.items.length >= 1 && pullB.items.length >= 1, 'the first pages')
      const samples = []
      for (let seq = 1; seq <= SAMPLES; seq++) {
        const t0 = performance.now()
        const pushed = a.backend.push([makeEvent(seq, seq - 1, `lat-${seq}`)])
        const fiber = yield* Effect.fork(pushed)
        yield* waitFor(() => pullB.seqs.length >= seq, `event ${seq} on B`)
        samples.push(performance.now() - t0)
        yield* Fiber.join(fiber)
        yield* waitFor(() => pullA.seqs.length >= seq, `event ${seq}'s echo on A`)
        yield* Effect.sleep(20)
      }
      checkExactlyOnce(pullB.seqs, 0, SAMPLES, 'B')
      const round = (x) => Math.round(x * 10) / 10
      return { samples: samples.map(round), p50Ms: round(percentile(samples, 50)), p99Ms: round(percentile(samples, 99)) }
    }),

  // bench helper: fill the store with CATCHUP_EVENTS events over HTTP, 100 a push
  fill: (storeId) =>
    Effect.gen(function* () {
      const writer = yield* httpClient(storeId)
      const t0 = performance.now()
      for (let from = 1; from <= CATCHUP_EVENTS; from += 100) yield* writer.push(makeEvents(from, Math.min(from + 99, CATCHUP_EVENTS), 'fill'))
      return { events: CATCHUP_EVENTS, ms: ms(t0) }
    }),

  // bench: a fresh client's pull of a filled store until NoMore: over WebSocket (live) and over HTTP
  catchup: (storeId) =>
    Effect.gen(function* () {
      const ws = yield* wsClient(storeId)
      yield* connected(ws.backend)
      const t0 = performance.now()
      const pull = yield* livePull(ws.backend)
      yield* waitFor(() => pull.pageInfos.at(-1)?._tag === 'NoMore' && pull.seqs.length >= CATCHUP_EVENTS, 'NoMore over WS', 600_000)
      const wsMs = ms(t0)
      checkExactlyOnce(pull.seqs, 0, CATCHUP_EVENTS, 'WS catch-up')
      const http = yield* httpClient(storeId)
      const t1 = performance.now()
      let cursor = 0
      let pulls = 0
      while (cursor < CATCHUP_EVENTS) {
        // LiveStore's HTTP client sends one request per pull; the leader pulls again while More*
        const items = yield* http.pull(cursor === 0 ? Option.none() : cursorAt(cursor)).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
        pulls++
        cursor = items.flatMap((i) => i.batch).at(-1)?.eventEncoded.seqNum ?? cursor
      }
      const httpMs = ms(t1)
      return { events: CATCHUP_EVENTS, wsMs, wsMessages: pull.items.length, httpMs, httpRequests: pulls }
    }),
}

const runScenario = makeRunScenario({ Effect, scenarios, timeoutMs: TIMEOUT_MS, toPlain, plainError: toPlain })

const baseStore = storeIdArg ?? `ws-${Date.now()}-${randomUUID().slice(0, 8)}`
const program = Effect.gen(function* () {
  if (scenarioArg !== 'all' && scenarioList.length === 1) return yield* runScenario(scenarioArg, baseStore)
  const results = {}
  for (const name of scenarioList) results[name] = yield* runScenario(name, `${baseStore}-${name}`)
  const failed = scenarioList.filter((n) => !results[n].ok)
  return { scenario: scenarioArg, ok: failed.length === 0, failed, results }
}).pipe(Effect.provide(FetchHttpClient.layer), Effect.provide(Layer.mergeAll(Logger.minimumLogLevel(LogLevel.Error))))

const result = await Effect.runPromise(program).catch((e) => ({ scenario: scenarioArg, ok: false, error: toPlain(e) }))
writeStdout(`${JSON.stringify({ baseUrl, ...result })}\n`, () => process.exit(result.ok ? 0 : 1))

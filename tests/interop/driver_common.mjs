// What the real-client drivers (livestore_driver.mjs, livestore_ws_driver.mjs) share: scenario
// failures and checks, timings, Effect values made plain JSON, and running one scenario into its
// JSON result. The Effect module is passed in: the drivers import it dynamically, so that a missing
// `npm ci` is reported as a result line.

export class ScenarioFailure extends Error {
  constructor(message, details) {
    super(message)
    this.details = details
  }
}

export const check = (cond, message, details) => {
  if (!cond) throw new ScenarioFailure(message, details)
}

export const ms = (t0) => Math.round((performance.now() - t0) * 100) / 100

/** Turn Effect values (Option, tagged errors, Chunks, Error causes) into plain JSON. */
export const makeToPlain = ({ Option, Chunk }) => {
  const toPlain = (v, depth = 0) => {
    if (depth > 8) return '[depth]'
    if (v === null || v === undefined) return v ?? null
    if (typeof v === 'bigint') return v.toString()
    if (typeof v !== 'object') return v
    if (ArrayBuffer.isView(v)) {
      const text = new TextDecoder().decode(v)
      return text.length > 2000 ? `${text.slice(0, 2000)}...` : text
    }
    if (Option.isOption(v)) return Option.isSome(v) ? { _tag: 'Some', value: toPlain(v.value, depth + 1) } : { _tag: 'None' }
    if (Chunk.isChunk(v)) return Chunk.toReadonlyArray(v).map((x) => toPlain(x, depth + 1))
    if (Array.isArray(v)) return v.map((x) => toPlain(x, depth + 1))
    const out = {}
    if (v instanceof Error) {
      out.name = v.name
      out.message = v.message
    }
    for (const k of Object.keys(v)) {
      if (k === 'stack' || k === 'span') continue
      out[k] = toPlain(v[k], depth + 1)
    }
    if (v instanceof Error && v.cause !== undefined && out.cause === undefined) out.cause = toPlain(v.cause, depth + 1)
    return out
  }
  return toPlain
}

/** A tagged error made plain, its `_tag` kept. */
export const makePlainError = (toPlain) => (e) => {
  const p = toPlain(e)
  if (p && typeof p === 'object' && !Array.isArray(p) && p._tag === undefined && e?._tag !== undefined) p._tag = e._tag
  return p
}

/** One scenario as its JSON result: `ok: true` with what it returned, or `ok: false` with why. */
export const makeRunScenario = ({ Effect, scenarios, timeoutMs, toPlain, plainError }) => (name, storeId) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    const result = yield* scenarios[name](storeId)
    return { scenario: name, ok: true, storeId, durationMs: ms(t0), ...result }
  }).pipe(
    Effect.scoped,
    Effect.timeoutFail({
      duration: timeoutMs,
      onTimeout: () => new ScenarioFailure(`scenario timed out after ${timeoutMs} ms`),
    }),
    Effect.catchAllCause((cause) => {
      const squashed = cause._tag === 'Die' ? cause.defect : cause._tag === 'Fail' ? cause.error : undefined
      const err = squashed ?? cause
      const error =
        err instanceof ScenarioFailure
          ? { message: err.message, details: toPlain(err.details ?? null) }
          : { message: 'unexpected error', cause: plainError(err), pretty: String(cause) }
      return Effect.succeed({ scenario: name, ok: false, storeId, error })
    }),
  )

// Which sync backend to use: the page decides (from its own URL) and hands the choice to the
// leader worker in the worker's URL, because the worker cannot see the page's URL.
import { makeHttpSync, makeWsSync } from '@livestore/sync-cf/client'

export type Transport = 'http' | 'ws'

export interface SyncChoice {
  /** The sync-cf endpoint, what makeHttpSync({ url }) takes: by default the server that served the page. */
  url: string
  transport: Transport
  /** HTTP only: how often the live pull polls, in ms. */
  pollMs: number
}

export const DEFAULT_TRANSPORT: Transport = 'http'
export const DEFAULT_POLL_MS = 1000

export const parseSyncChoice = (params: URLSearchParams, origin: string): SyncChoice => {
  const transport = params.get('transport') === 'ws' ? 'ws' : params.get('transport') === 'http' ? 'http' : DEFAULT_TRANSPORT
  const poll = Number(params.get('poll') ?? DEFAULT_POLL_MS)
  return {
    url: params.get('sync') ?? `${origin}/`,
    transport,
    pollMs: Number.isFinite(poll) && poll >= 100 ? poll : DEFAULT_POLL_MS,
  }
}

export const toParams = (choice: SyncChoice): URLSearchParams =>
  new URLSearchParams({ sync: choice.url, transport: choice.transport, poll: String(choice.pollMs) })

export const makeBackend = (choice: SyncChoice) =>
  choice.transport === 'ws'
    ? makeWsSync({ url: choice.url })
    : makeHttpSync({ url: choice.url, livePull: { pollInterval: choice.pollMs } })

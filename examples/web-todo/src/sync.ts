// Which sync backend to use: the page decides (from its own URL, and by asking the server whether
// it takes WebSocket connections) and hands the choice to the leader worker in the worker's URL,
// because the worker cannot see the page's URL.
import { makeHttpSync, makeWsSync } from '@livestore/sync-cf/client'

export type Transport = 'http' | 'ws'
/** `auto`: WebSocket when the server accepts a WebSocket connection, else HTTP polling. */
export type TransportChoice = Transport | 'auto'

export interface SyncChoice<T extends TransportChoice = TransportChoice> {
  /** The sync-cf endpoint, what makeHttpSync({ url }) takes: by default the server that served the page. */
  url: string
  /**
   * Where makeWsSync connects: by default `url` (the dev server, like sync-cf's worker, serves
   * both on one port). On AWS the WebSocket API has an address of its own: give it as `?ws=`.
   */
  wsUrl: string
  transport: T
  /** HTTP only: how often the live pull polls, in ms. */
  pollMs: number
}

export const DEFAULT_TRANSPORT: TransportChoice = 'auto'
export const DEFAULT_POLL_MS = 1000
/** How long the page waits for the WebSocket probe before it settles for HTTP. */
export const PROBE_TIMEOUT_MS = 3000

export const parseSyncChoice = (params: URLSearchParams, origin: string): SyncChoice => {
  const given = params.get('transport')
  const transport: TransportChoice = given === 'ws' || given === 'http' || given === 'auto' ? given : DEFAULT_TRANSPORT
  const poll = Number(params.get('poll') ?? DEFAULT_POLL_MS)
  const url = params.get('sync') ?? `${origin}/`
  return {
    url,
    wsUrl: params.get('ws') ?? url,
    transport,
    pollMs: Number.isFinite(poll) && poll >= 100 ? poll : DEFAULT_POLL_MS,
  }
}

/** The URL makeWsSync opens (ws-rpc-client.ts: `${url}?storeId=…&payload=…&transport=ws`). */
const wsAddress = (url: string, storeId: string): string => {
  const address = new URL(url)
  address.protocol = address.protocol === 'https:' || address.protocol === 'wss:' ? 'wss:' : 'ws:'
  address.search = new URLSearchParams({ storeId, transport: 'ws' }).toString()
  return address.toString()
}

/**
 * Does the server take makeWsSync's connections? One WebSocket opened and closed at once: `open`
 * means yes; an error (a server without WebSocket answers the upgrade with an HTTP error), a close
 * before `open` or no answer within PROBE_TIMEOUT_MS means no.
 */
export const probeWebSocket = (url: string, storeId: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> =>
  new Promise((resolve) => {
    let socket: WebSocket
    try {
      socket = new WebSocket(wsAddress(url, storeId))
    } catch {
      resolve(false)
      return
    }
    const settle = (ok: boolean) => {
      clearTimeout(timer)
      socket.onopen = socket.onerror = socket.onclose = null
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close()
      resolve(ok)
    }
    const timer = setTimeout(() => settle(false), timeoutMs)
    socket.onopen = () => settle(true)
    socket.onerror = () => settle(false)
    socket.onclose = () => settle(false)
  })

/** `auto` settled: WebSocket if the server accepts one, else HTTP. */
export const resolveSyncChoice = async (choice: SyncChoice, storeId: string): Promise<SyncChoice<Transport>> =>
  choice.transport === 'auto'
    ? { ...choice, transport: (await probeWebSocket(choice.wsUrl, storeId)) ? 'ws' : 'http' }
    : { ...choice, transport: choice.transport }

export const toParams = (choice: SyncChoice<Transport>): URLSearchParams =>
  new URLSearchParams({ sync: choice.url, ws: choice.wsUrl, transport: choice.transport, poll: String(choice.pollMs) })

export const makeBackend = (choice: SyncChoice) => {
  // The worker gets a settled choice from the page; `auto` left over means HTTP (never guess there).
  if (choice.transport === 'ws') return makeWsSync({ url: choice.wsUrl })
  return makeHttpSync({ url: choice.url, livePull: { pollInterval: choice.pollMs } })
}

// LiveStore 0.4.0's own sync server, for bench/livestore_reference.py: the library's Durable Object
// and worker fetch handler (@livestore/sync-cf/cf-worker), with no auth and the default storage
// (Durable Object SQLite) and transports (http, ws, do-rpc). Run by `wrangler dev --local`.
import { makeDurableObject, makeWorker } from '@livestore/sync-cf/cf-worker'

export class SyncBackendDO extends makeDurableObject() {}

export default makeWorker({ syncBackendBinding: 'SYNC_BACKEND_DO' })

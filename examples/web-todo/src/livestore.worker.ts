// The leader worker: it owns the SQLite databases (OPFS) and the sync backend.
import { makeWorker } from '@livestore/adapter-web/worker'

import { schema } from './schema.ts'
import { makeBackend, parseSyncChoice } from './sync.ts'

makeWorker({
  schema,
  sync: { backend: makeBackend(parseSyncChoice(new URLSearchParams(self.location.search), self.location.origin)) },
})

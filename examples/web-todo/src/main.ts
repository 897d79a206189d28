// LiveStore's TodoMVC without a framework: the store is created once, two live queries render the
// list and the counter, and every change is a commit of one of the four synced todo events.
import 'todomvc-app-css/index.css'
import './app.css'

import { makeInMemoryAdapter, makePersistedAdapter } from '@livestore/adapter-web'
import LiveStoreSharedWorker from '@livestore/adapter-web/shared-worker?sharedworker'
import { createStorePromise, queryDb, type Store } from '@livestore/livestore'
import { Effect, Stream } from 'effect'

import workerUrl from './livestore.worker.ts?worker&url'
import { events, schema, tables } from './schema.ts'
import { makeBackend, parseSyncChoice, toParams } from './sync.ts'

type Todo = typeof tables.todos.Type
type Filter = 'all' | 'active' | 'completed'

/** LiveStore opens only these store ids (stratasync's Python client refuses others too). */
const STORE_ID = /^[A-Za-z0-9_-]+$/

const started = performance.now()
const params = new URLSearchParams(location.search)
const sync = parseSyncChoice(params, location.origin)

const storeIdFromUrl = (): string => {
  const given = params.get('storeId')
  if (given !== null) return given
  // A fresh store by default; written back into the URL so a reload or a shared link opens it again.
  const fresh = `web-${crypto.randomUUID().slice(0, 8)}`
  params.set('storeId', fresh)
  history.replaceState(null, '', `${location.pathname}?${params.toString()}${location.hash}`)
  return fresh
}

/** The persisted adapter needs Web Locks and OPFS, which browsers give only to secure contexts. */
const canPersist = (): boolean =>
  window.isSecureContext && 'locks' in navigator && typeof navigator.storage?.getDirectory === 'function'

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] => {
  const node = Object.assign(document.createElement(tag), props)
  node.append(...children)
  return node
}

const filterFromHash = (): Filter =>
  location.hash === '#/active' ? 'active' : location.hash === '#/completed' ? 'completed' : 'all'

// In the order they were created (SQLite's rowid order: ids are random UUIDs).
const visibleTodos$ = queryDb(tables.todos.where({ deletedAt: null }), { label: 'todos' })

const render = (store: Store<typeof schema>, info: { storeId: string; storage: string }) => {
  const app = document.getElementById('app')!
  const input = el('input', { className: 'new-todo', placeholder: 'What needs to be done?', autofocus: true })
  const toggleAll = el('input', { id: 'toggle-all', className: 'toggle-all', type: 'checkbox' })
  const list = el('ul', { className: 'todo-list' })
  const main = el('section', { className: 'main' }, toggleAll, el('label', { htmlFor: 'toggle-all' }), list)
  const count = el('span', { className: 'todo-count' })
  const filters = el('ul', { className: 'filters' })
  const clear = el('button', { className: 'clear-completed', type: 'button', textContent: 'Clear completed' })
  const footer = el('footer', { className: 'footer' }, count, filters, clear)
  app.replaceChildren(el('header', { className: 'header' }, el('h1', { textContent: 'todos' }), input), main, footer)

  let todos: readonly Todo[] = []

  input.addEventListener('keydown', (event) => {
    const text = input.value.trim()
    if (event.key !== 'Enter' || text === '') return
    store.commit(events.todoCreated({ id: crypto.randomUUID(), text }))
    input.value = ''
  })
  toggleAll.addEventListener('change', () => {
    const done = toggleAll.checked
    const changed = todos.filter((todo) => todo.completed !== done)
    store.commit(...changed.map(({ id }) => (done ? events.todoCompleted({ id }) : events.todoUncompleted({ id }))))
  })
  clear.addEventListener('click', () => {
    const deletedAt = new Date()
    const done = todos.filter((todo) => todo.completed)
    store.commit(...done.map(({ id }) => events.todoDeleted({ id, deletedAt })))
  })

  const item = (todo: Todo): HTMLLIElement => {
    const toggle = el('input', { className: 'toggle', type: 'checkbox', checked: todo.completed })
    toggle.addEventListener('change', () =>
      store.commit(toggle.checked ? events.todoCompleted({ id: todo.id }) : events.todoUncompleted({ id: todo.id })),
    )
    const destroy = el('button', { className: 'destroy', type: 'button', title: 'Delete' })
    destroy.addEventListener('click', () => store.commit(events.todoDeleted({ id: todo.id, deletedAt: new Date() })))
    const li = el(
      'li',
      { className: todo.completed ? 'completed' : '' },
      el('div', { className: 'view' }, toggle, el('label', { textContent: todo.text }), destroy),
    )
    li.dataset.id = todo.id
    return li
  }

  const draw = () => {
    const filter = filterFromHash()
    const shown = todos.filter((todo) => filter === 'all' || todo.completed === (filter === 'completed'))
    list.replaceChildren(...shown.map(item))
    const left = todos.filter((todo) => !todo.completed).length
    count.replaceChildren(el('strong', { textContent: String(left) }), left === 1 ? ' item left' : ' items left')
    filters.replaceChildren(
      ...(['all', 'active', 'completed'] as const).map((name) =>
        el(
          'li',
          {},
          el('a', {
            href: name === 'all' ? '#/' : `#/${name}`,
            className: name === filter ? 'selected' : '',
            textContent: name[0]!.toUpperCase() + name.slice(1),
          }),
        ),
      ),
    )
    toggleAll.checked = todos.length > 0 && left === 0
    main.hidden = footer.hidden = todos.length === 0
    clear.hidden = todos.every((todo) => !todo.completed)
  }

  store.subscribe(visibleTodos$, (rows) => {
    todos = rows
    draw()
  })
  window.addEventListener('hashchange', draw)

  // The leader's link to the sync server (its pings): changes made while it is down stay in this
  // browser and are pushed when it is back.
  const status = el('span', { className: 'sync-status' })
  const showNetwork = ({ isConnected }: { isConnected: boolean }) => {
    status.textContent = isConnected ? 'connected' : 'not connected: changes wait in this browser'
    status.dataset.connected = String(isConnected)
  }
  void store.networkStatus.get.pipe(Effect.runPromise).then(showNetwork)
  void store.networkStatus.changes.pipe(
    Stream.runForEach((next) => Effect.sync(() => showNetwork(next))),
    Effect.runPromise,
  )
  document.getElementById('info')!.replaceChildren(
    el('p', {}, 'store ', el('code', { textContent: info.storeId }), ` · ${info.storage} · `, status),
    el('p', { textContent: `syncs over ${sync.transport.toUpperCase()} with ${sync.url}` }),
  )
  input.focus()
}

const fail = (message: string) => {
  document.getElementById('loading')!.replaceChildren(el('strong', { className: 'error', textContent: message }))
}

const boot = async () => {
  const storeId = storeIdFromUrl()
  if (!STORE_ID.test(storeId)) {
    fail(`Invalid storeId ${JSON.stringify(storeId)}: LiveStore opens only letters, digits, "_" and "-".`)
    return
  }
  const persisted = canPersist()
  const workerSearch = toParams(sync).toString()
  const adapter = persisted
    ? makePersistedAdapter({
        storage: { type: 'opfs' },
        worker: ({ name }) => new Worker(`${workerUrl}?${workerSearch}`, { type: 'module', name }),
        sharedWorker: LiveStoreSharedWorker,
      })
    : makeInMemoryAdapter({ sync: { backend: makeBackend(sync) } })
  const storage = persisted
    ? 'kept in this browser (OPFS)'
    : 'in memory only: not a secure context, so nothing is kept across reloads'
  try {
    const store = await createStorePromise({ schema, adapter, storeId, disableDevtools: true })
    render(store, { storeId, storage })
    const app = { store, storeId, persisted, transport: sync.transport, bootMs: performance.now() - started }
    Object.assign(window, { __todoApp: app })
    document.body.dataset.ready = 'true'
  } catch (error) {
    fail(`LiveStore did not start: ${String(error)}`)
    throw error
  }
}

void boot()

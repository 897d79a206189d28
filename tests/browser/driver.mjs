// Drives Debian's Chromium through puppeteer-core for tests/browser/test_web_app.py.
//
// One JSON command per line on stdin, one JSON answer per line on stdout:
//   -> {"id": 1, "cmd": "open", "page": "a", "context": "default", "url": "http://.../app/?storeId=s"}
//   <- {"id": 1, "ok": true, "result": {...}}   or   {"id": 1, "ok": false, "error": "..."}
// The first line out is {"ready": true, "pid": <chromium pid>, "launchMs": ...}. Logs go to stderr.
import { createInterface } from 'node:readline'

import puppeteer from 'puppeteer-core'

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium'
const launchStarted = performance.now()
const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  handleSIGTERM: false,
  handleSIGINT: false,
  args: [
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), // Chromium refuses to run as root with the sandbox
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--no-default-browser-check',
  ],
  defaultViewport: { width: 720, height: 640, deviceScaleFactor: 1 },
})
const launchMs = performance.now() - launchStarted

const contexts = new Map([['default', browser.defaultBrowserContext()]])
const pages = new Map() // name -> { page, problems: [] }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const entry = (name) => {
  const found = pages.get(name)
  if (found === undefined) throw new Error(`no page ${name}`)
  return found
}

/** Waits until the app booted (body[data-ready]) or showed its boot error; polls (rAF stops in hidden tabs). */
const waitReady = async (page, timeoutMs) => {
  const started = performance.now()
  for (;;) {
    const state = await page.evaluate(() => ({
      ready: document.body?.dataset.ready === 'true',
      error: document.querySelector('.loading .error')?.textContent ?? null,
    }))
    if (state.ready) return performance.now() - started
    if (state.error !== null) throw new Error(`the app did not boot: ${state.error}`)
    if (performance.now() - started > timeoutMs) throw new Error(`the app did not boot in ${timeoutMs} ms`)
    await sleep(50)
  }
}

const appInfo = (page) =>
  page.evaluate(() => {
    const app = window.__todoApp
    return { storeId: app.storeId, persisted: app.persisted, transport: app.transport, appBootMs: app.bootMs, href: location.href }
  })

const readTodos = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('ul.todo-list li')].map((li) => ({
      id: li.dataset.id,
      text: li.querySelector('label')?.textContent ?? '',
      completed: li.querySelector('input.toggle')?.checked ?? false,
    })),
  )

const commands = {
  async newContext({ context }) {
    contexts.set(context, await browser.createBrowserContext())
    return {}
  },

  async open({ page: name, context = 'default', url, timeoutMs = 60_000 }) {
    const ctx = contexts.get(context)
    if (ctx === undefined) throw new Error(`no context ${context}`)
    const page = await ctx.newPage()
    const problems = []
    page.on('pageerror', (error) => problems.push({ kind: 'pageerror', text: String(error?.stack ?? error) }))
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push({ kind: 'console.error', text: message.text() })
    })
    page.on('requestfailed', (request) => {
      const reason = request.failure()?.errorText
      // The live pull aborts its own request when it is interrupted (a push, a reload): not a failure.
      if (reason !== 'net::ERR_ABORTED') problems.push({ kind: 'requestfailed', text: `${request.url()} ${reason}` })
    })
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push({ kind: 'http', text: `${response.status()} ${response.url()}` })
    })
    // LiveStore asks before a page with unsynced events unloads (confirmUnsavedChanges): say yes.
    const dialogs = []
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.type())
      void dialog.accept()
    })
    pages.set(name, { page, problems, dialogs })
    const started = performance.now()
    // Not networkidle: the live pull keeps the network busy for as long as the page is open.
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs })
    await waitReady(page, timeoutMs)
    return { bootMs: performance.now() - started, ...(await appInfo(page)) }
  },

  async reload({ page: name, timeoutMs = 60_000 }) {
    const { page } = entry(name)
    const started = performance.now()
    await page.reload({ waitUntil: 'domcontentloaded', timeout: timeoutMs })
    await waitReady(page, timeoutMs)
    return { bootMs: performance.now() - started, ...(await appInfo(page)) }
  },

  async add({ page: name, text }) {
    const { page } = entry(name)
    await page.type('input.new-todo', text)
    await page.keyboard.press('Enter')
    return {}
  },

  async toggle({ page: name, text }) {
    const { page } = entry(name)
    const clicked = await page.evaluate((wanted) => {
      const li = [...document.querySelectorAll('ul.todo-list li')].find(
        (item) => item.querySelector('label')?.textContent === wanted,
      )
      li?.querySelector('input.toggle')?.click()
      return li !== undefined
    }, text)
    if (!clicked) throw new Error(`no todo ${JSON.stringify(text)} in page ${name}`)
    return {}
  },

  async destroy({ page: name, text }) {
    const { page } = entry(name)
    const clicked = await page.evaluate((wanted) => {
      const li = [...document.querySelectorAll('ul.todo-list li')].find(
        (item) => item.querySelector('label')?.textContent === wanted,
      )
      li?.querySelector('button.destroy')?.click()
      return li !== undefined
    }, text)
    if (!clicked) throw new Error(`no todo ${JSON.stringify(text)} in page ${name}`)
    return {}
  },

  /** Until the page lists a todo with this text (and this completion, or gone: absent); the wait in ms. */
  async waitFor({ page: name, text, completed, gone = false, timeoutMs = 30_000 }) {
    const { page } = entry(name)
    const started = performance.now()
    for (;;) {
      const todos = await readTodos(page)
      const todo = todos.find((item) => item.text === text)
      const done = gone ? todo === undefined : todo !== undefined && (completed === undefined || todo.completed === completed)
      if (done) return { ms: performance.now() - started, todos }
      if (performance.now() - started > timeoutMs) {
        throw new Error(`page ${name}: no ${JSON.stringify({ text, completed, gone })} in ${timeoutMs} ms: ${JSON.stringify(todos)}`)
      }
      await sleep(20)
    }
  },

  async todos({ page: name }) {
    return { todos: await readTodos(entry(name).page) }
  },

  async problems({ page: name }) {
    return { problems: entry(name).problems, dialogs: entry(name).dialogs }
  },

  async evaluate({ page: name, expression }) {
    return { value: await entry(name).page.evaluate(expression) }
  },

  async screenshot({ page: name, path }) {
    await entry(name).page.screenshot({ path })
    return {}
  },

  /** Renders an HTML document (the README picture: the app beside the agent's output) to a PNG. */
  async render({ html, path, width, height }) {
    const page = await browser.newPage()
    await page.setViewport({ width, height, deviceScaleFactor: 1 })
    await page.setContent(html, { waitUntil: 'load' })
    await page.screenshot({ path, fullPage: true })
    await page.close()
    return {}
  },

  async closePage({ page: name }) {
    await entry(name).page.close()
    pages.delete(name)
    return {}
  },
}

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`)

let closing = false
const shutdown = async () => {
  if (closing) return
  closing = true
  await browser.close().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', shutdown)

send({ ready: true, pid: browser.process()?.pid ?? null, launchMs, version: await browser.version() })

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  if (line.trim() === '') continue
  const { id, cmd, ...args } = JSON.parse(line)
  if (cmd === 'close') {
    send({ id, ok: true, result: {} })
    break
  }
  try {
    const handler = commands[cmd]
    if (handler === undefined) throw new Error(`unknown command ${cmd}`)
    send({ id, ok: true, result: await handler(args) })
  } catch (error) {
    send({ id, ok: false, error: String(error?.stack ?? error) })
  }
}
await shutdown()

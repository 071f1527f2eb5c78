import { NOTHING_TO_UNDO, StateKey } from './inputs/constants.js'

// Most post steps have nothing left to undo (main undid its remote-store files itself, or changed nothing): say so
// without loading the undo code. A journal with changes in it loads it.
const journal = process.env[`STATE_${StateKey.Journal}`] ?? ''
if (journal === '' || /^\{"asRoot":(true|false),"undo":\[\]\}$/.test(journal)) {
  process.stdout.write(`${NOTHING_TO_UNDO}\n`)
} else {
  const { cleanup } = await import('./runner/index.js')
  await cleanup()
}

import './cjs-globals.js'
import { NOTHING_TO_UNDO, StateKey } from './inputs/constants.js'

// Most post steps have nothing left to undo (main undid its remote-store files itself, or changed nothing, and its
// processes ended): say so without loading the undo code. A journal with changes in it, or a process, loads it.
const journal = process.env[`STATE_${StateKey.Journal}`] ?? ''
const children = process.env[`STATE_${StateKey.Children}`] ?? ''
if (
  (journal === '' || /^\{"asRoot":(true|false),"undo":\[\]\}$/.test(journal)) &&
  (children === '' || children === '[]')
) {
  process.stdout.write(`${NOTHING_TO_UNDO}\n`)
} else {
  const [{ cleanup }, { failStep }] = await Promise.all([
    import('./runner/index.js'),
    import('./base/index.js')
  ])
  await cleanup().catch(failStep)
}

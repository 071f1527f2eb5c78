import './cjs-globals.js'
import { run } from './run.js'

await run()

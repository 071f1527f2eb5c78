import './cjs-globals.js'
import { runCanary } from './run.js'

await runCanary()

import './cjs-globals.js'
import { run } from './offload.js'

await run()

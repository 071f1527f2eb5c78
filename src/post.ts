import { cleanup } from './runner/index.js'

await cleanup()

import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

// ssh2's bundled poly1305 (emscripten) reads `__dirname`, which an ES module lacks. Imported first by the entry files.
const globals: { __dirname?: string } = globalThis
globals.__dirname ??= dirname(fileURLToPath(import.meta.url))

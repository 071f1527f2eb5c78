/**
 * A signed Nix binary cache on loopback, standing in for the public cache: the graph built once into a scratch store
 * of the host's (`--store DIR`, so neither the lab's daemons nor their build users are involved), copied with
 * `nix copy --to file://DIR?secret-key=…`, and served by a small HTTP server that records which NARs it served.
 */
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from 'node:fs'
import { createServer } from 'node:http'
import { join, normalize } from 'node:path'
import { runOnHost } from '../__tests__/lab/harness.js'
import { NIX } from './seed.js'

export interface CacheFiles {
  dir: string
  /** For `trusted-public-keys`. */
  publicKey: string
}

/** A NAR of the cache: the store path it holds and its size once unpacked. */
interface NarEntry {
  storePath: string
  narSize: number
}

/**
 * Fills `dir` (kept between invocations: filling it builds the whole graph) with the outputs of `expression`'s
 * attributes and of everything they were built from. The scratch store is a chroot store, whose builds Nix 2.8 runs
 * in its sandbox: `sandbox-paths` lends it the host's /bin/sh and /usr/bin/head, and no build users, so that the
 * scratch builds cannot take a uid that a lab daemon's build is using.
 */
export async function fillCache(options: {
  dir: string
  expression: string
  attributes: string[]
  /** Only paths whose names hold it go into the cache (the graph's id). */
  graphId: string
}): Promise<CacheFiles> {
  const { dir } = options
  const done = join(dir, 'filled')
  if (existsSync(done)) return { dir, publicKey: readFileSync(join(dir, 'key.pub'), 'utf8').trim() }
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const scratch = join(dir, 'scratch')
  await must([
    'nix-store',
    '--generate-binary-cache-key',
    `nix-offload-bench-${options.graphId}`,
    join(dir, 'key.sec'),
    join(dir, 'key.pub')
  ])
  await must([
    ...NIX,
    'build',
    '--store',
    scratch,
    '--option',
    'build-users-group',
    '',
    '--option',
    'sandbox-paths',
    '/bin /usr /lib /lib64',
    '--option',
    'substituters',
    '',
    '-j',
    '4',
    '--no-link',
    '-f',
    options.expression,
    ...options.attributes
  ])
  const outputs = readdirSync(join(scratch, 'nix/store'))
    .filter(name => name.includes(options.graphId) && !name.endsWith('.drv'))
    .map(name => `/nix/store/${name}`)
  for (let start = 0; start < outputs.length; start += 500)
    await must([
      ...NIX,
      'copy',
      '--store',
      scratch,
      '--to',
      // No compression: the outputs are random bytes, and Nix 2.8 fails to unpack these NARs from zstd ("Zstd
      // decompression failed: Destination buffer is too small", seen on the lab).
      `file://${join(dir, 'cache')}?secret-key=${join(dir, 'key.sec')}&compression=none`,
      ...outputs.slice(start, start + 500)
    ])
  rmSync(scratch, { recursive: true, force: true })
  writeFileSync(done, `${outputs.length}\n`)
  return { dir, publicKey: readFileSync(join(dir, 'key.pub'), 'utf8').trim() }
}

async function must(argv: string[]): Promise<void> {
  const result = await runOnHost(argv)
  if (result.code !== 0) throw new Error(`${argv.slice(0, 4).join(' ')} … failed: ${result.stderr}`)
}

export interface CacheServer {
  port: number
  /** The NARs served since the last call, by store path, with their unpacked sizes (one entry per download). */
  takeServed: () => NarEntry[]
  close: () => Promise<void>
}

/** Serves `files.dir`'s cache on 127.0.0.1 (GET and HEAD), as a plain HTTP binary cache is served. */
export async function startCacheServer(files: CacheFiles): Promise<CacheServer> {
  const root = join(files.dir, 'cache')
  const nars = narIndex(root)
  let served: NarEntry[] = []
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://cache')
    const file = normalize(join(root, decodeURIComponent(url.pathname)))
    if (!file.startsWith(`${root}/`) || !existsSync(file) || !statSync(file).isFile())
      return void response.writeHead(404).end()
    // One request per connection, as a plain static server answers: Nix 2.8 failed a substitution on the lab
    // (`basic_string::_M_create`) over connections this server kept alive.
    const headers = { 'content-length': String(statSync(file).size), connection: 'close' }
    if (request.method === 'HEAD') return void response.writeHead(200, headers).end()
    const nar = nars.get(url.pathname.slice(1))
    if (nar !== undefined) served.push(nar)
    response.writeHead(200, headers)
    createReadStream(file).pipe(response)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the binary cache server has no port')
  return {
    port: address.port,
    takeServed: () => {
      const taken = served
      served = []
      return taken
    },
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** NAR file (as narinfo's `URL:` names it) → the store path it holds and its size unpacked. */
function narIndex(root: string): Map<string, NarEntry> {
  const index = new Map<string, NarEntry>()
  for (const name of readdirSync(root).filter(n => n.endsWith('.narinfo'))) {
    const fields = new Map(
      readFileSync(join(root, name), 'utf8')
        .split('\n')
        .map(line => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()] as const)
    )
    const url = fields.get('URL')
    if (url !== undefined)
      index.set(url, {
        storePath: fields.get('StorePath') ?? '',
        narSize: Number(fields.get('NarSize') ?? 0)
      })
  }
  return index
}

/**
 * An in-memory stand-in for the GitHub Actions cache service, so tests run the REAL @actions/cache client.
 *
 * Protocol: cache service v2 only, what @actions/cache 6.x uses on github.com runners today. The client picks v2
 * when ACTIONS_CACHE_SERVICE_V2 is set and GITHUB_SERVER_URL is github.com (v1 is only for GHES), then
 *   - POSTs Twirp JSON (proto field names) to ACTIONS_RESULTS_URL + /twirp/github.actions.results.api.v1.CacheService/
 *     CreateCacheEntry, FinalizeCacheEntryUpload and GetCacheEntryDownloadURL, with `Authorization: Bearer
 *     $ACTIONS_RUNTIME_TOKEN`;
 *   - uploads the archive to the signed upload URL with the Azure Blob SDK: one `Put Blob` up to 128 MiB, else
 *     `Put Block` + `Put Block List`;
 *   - downloads from the signed download URL with a plain GET, because its host is not *.blob.core.windows.net;
 *     on Azure hosts it would use the SDK instead (HEAD, then GETs with x-ms-range), which is served too.
 * `requests()` records which of these the client really sent, so a test can assert it.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const TWIRP = '/twirp/github.actions.results.api.v1.CacheService/'
// Path-style blob URL, as Azurite serves it: the SDK reads account and container from the path for IP hosts.
const BLOBS = '/devstoreaccount1/caches/'

export interface CacheEntrySummary {
  key: string
  version: string
  size: number
}

export type CacheRequest =
  | 'CreateCacheEntry'
  | 'FinalizeCacheEntryUpload'
  | 'GetCacheEntryDownloadURL'
  | 'PutBlob'
  | 'PutBlock'
  | 'PutBlockList'
  | 'GetBlob'
  | 'GetBlobRange'
  | 'HeadBlob'

export interface CacheServer {
  /** Give these to the process whose @actions/cache should talk to this server. */
  env: Record<string, string>
  /** Finalized entries, oldest first. */
  entries(): CacheEntrySummary[]
  /** Every request served, in order, by what it was. */
  requests(): CacheRequest[]
  /** Adds a finalized entry as if an earlier run had saved `archive` (a tar of the client's compression). */
  seed(key: string, version: string, archive: Buffer): void
  close(): Promise<void>
}

interface Entry {
  id: number
  key: string
  version: string
  blob: string
  finalized: boolean
}

export async function startCacheServer(): Promise<CacheServer> {
  const token = randomBytes(8).toString('hex')
  // Stands in for the SAS signature: a blob URL without it is refused, as Azure would.
  const signature = randomBytes(8).toString('hex')
  const entries: Entry[] = []
  const blobs = new Map<string, Buffer>()
  const blocks = new Map<string, Map<string, Buffer>>()
  const served: CacheRequest[] = []
  let nextId = 1

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) =>
      send(response, 500, { code: 'internal', msg: String(error) })
    )
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address: AddressInfo | string | null = server.address()
  if (address === null || typeof address === 'string') throw new Error('cache server: no TCP address')
  const base = `http://127.0.0.1:${address.port}`

  function blobUrl(entry: Entry): string {
    return `${base}${BLOBS}${entry.blob}?sv=2024-11-04&sr=b&sp=rcw&sig=${signature}`
  }

  function addEntry(key: string, version: string): Entry {
    const id = nextId++
    const entry = {
      id,
      key,
      version,
      blob: `entry-${id}-${randomBytes(4).toString('hex')}`,
      finalized: false
    }
    entries.push(entry)
    return entry
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', base)
    const body = await readBody(request)
    if (url.pathname.startsWith(TWIRP)) {
      if (request.method !== 'POST') return send(response, 405, { code: 'bad_route', msg: 'POST only' })
      if (request.headers.authorization !== `Bearer ${token}`) {
        return send(response, 401, { code: 'unauthenticated', msg: 'bad or missing runtime token' })
      }
      return twirp(url.pathname.slice(TWIRP.length), parseJson(body), response)
    }
    if (url.pathname.startsWith(BLOBS) && url.searchParams.get('sig') === signature) {
      return blob(request, url, body, response)
    }
    response.writeHead(url.pathname.startsWith(BLOBS) ? 403 : 404).end()
  }

  function twirp(method: string, body: Record<string, unknown>, response: ServerResponse): void {
    const key = text(body.key)
    const version = text(body.version)
    if (method === 'CreateCacheEntry') {
      served.push(method)
      // Keys are immutable per version: a second save of a key is refused, and the client only logs it.
      if (entries.some(entry => entry.key === key && entry.version === version)) {
        return send(response, 409, { code: 'already_exists', msg: `cache entry ${key} already exists` })
      }
      return send(response, 200, { ok: true, signed_upload_url: blobUrl(addEntry(key, version)) })
    }
    if (method === 'FinalizeCacheEntryUpload') {
      served.push(method)
      const entry = entries.find(candidate => candidate.key === key && candidate.version === version)
      const size = entry === undefined ? undefined : blobs.get(entry.blob)?.length
      // size_bytes is an int64, which proto3 JSON writes as a string.
      if (entry === undefined || size === undefined || String(size) !== text(body.size_bytes)) {
        return send(response, 200, { ok: false, message: `no uploaded blob of that size for ${key}` })
      }
      entry.finalized = true
      return send(response, 200, { ok: true, entry_id: String(entry.id) })
    }
    if (method === 'GetCacheEntryDownloadURL') {
      served.push(method)
      const restoreKeys = Array.isArray(body.restore_keys) ? body.restore_keys.map(text) : []
      const match = lookup([key, ...restoreKeys], version)
      // A miss is not an error in v2: ok=false with status 200.
      if (match === undefined) return send(response, 200, { ok: false })
      return send(response, 200, { ok: true, signed_download_url: blobUrl(match), matched_key: match.key })
    }
    send(response, 404, { code: 'bad_route', msg: `no method ${method}` })
  }

  /** Like the service: per key in order, an exact match first, then the newest entry the key prefixes. */
  function lookup(keys: string[], version: string): Entry | undefined {
    const visible = entries.filter(entry => entry.finalized && entry.version === version).reverse()
    for (const key of keys) {
      const match =
        visible.find(entry => entry.key === key) ?? visible.find(entry => entry.key.startsWith(key))
      if (match !== undefined) return match
    }
    return undefined
  }

  function blob(request: IncomingMessage, url: URL, body: Buffer, response: ServerResponse): void {
    const name = url.pathname.slice(BLOBS.length)
    const comp = url.searchParams.get('comp')
    if (request.method === 'PUT') {
      if (comp === 'block') {
        served.push('PutBlock')
        const staged = blocks.get(name) ?? new Map<string, Buffer>()
        staged.set(url.searchParams.get('blockid') ?? '', body)
        blocks.set(name, staged)
      } else if (comp === 'blocklist') {
        served.push('PutBlockList')
        const staged = blocks.get(name) ?? new Map<string, Buffer>()
        const ids = [...body.toString('utf8').matchAll(/<(?:Latest|Uncommitted|Committed)>([^<]*)</g)]
        const parts = ids.map(([, id]) => staged.get(id ?? ''))
        if (parts.some(part => part === undefined))
          return void response.writeHead(400).end('InvalidBlockList')
        blobs.set(name, Buffer.concat(parts.flatMap(part => (part === undefined ? [] : [part]))))
        blocks.delete(name)
      } else {
        served.push('PutBlob')
        blobs.set(name, body)
      }
      return void response.writeHead(201, blobHeaders(name, 0)).end()
    }
    const data = blobs.get(name)
    if (data === undefined) return void response.writeHead(404, { 'x-ms-error-code': 'BlobNotFound' }).end()
    if (request.method === 'HEAD') {
      served.push('HeadBlob')
      return void response.writeHead(200, blobHeaders(name, data.length)).end()
    }
    // The Azure SDK asks for chunks in x-ms-range; plain HTTP clients use Range.
    const range = /^bytes=(\d+)-(\d*)$/.exec(
      String(request.headers['x-ms-range'] ?? request.headers.range ?? '')
    )
    if (range === null) {
      served.push('GetBlob')
      return void response.writeHead(200, blobHeaders(name, data.length)).end(data)
    }
    served.push('GetBlobRange')
    const start = Number(range[1])
    const end = Math.min(range[2] ? Number(range[2]) : data.length - 1, data.length - 1)
    if (start > end) return void response.writeHead(416, { 'content-range': `bytes */${data.length}` }).end()
    const headers = {
      ...blobHeaders(name, end - start + 1),
      'content-range': `bytes ${start}-${end}/${data.length}`
    }
    response.writeHead(206, headers).end(data.subarray(start, end + 1))
  }

  return {
    env: {
      ACTIONS_CACHE_SERVICE_V2: 'True',
      ACTIONS_RESULTS_URL: `${base}/`,
      ACTIONS_RUNTIME_TOKEN: token,
      // GHES hosts force v1, which this server does not speak.
      GITHUB_SERVER_URL: 'https://github.com'
    },
    entries: () =>
      entries
        .filter(entry => entry.finalized)
        .map(entry => ({ key: entry.key, version: entry.version, size: blobs.get(entry.blob)?.length ?? 0 })),
    requests: () => [...served],
    seed(key, version, archive) {
      const entry = addEntry(key, version)
      blobs.set(entry.blob, archive)
      entry.finalized = true
    },
    // Idempotent, so a test can stop the service midway to simulate an outage and still clean up after.
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve()
        server.close(error => (error ? reject(error) : resolve()))
        // The Azure SDK keeps connections alive; without this close() waits for them to time out.
        server.closeAllConnections()
      })
  }
}

function blobHeaders(name: string, length: number): Record<string, string> {
  return {
    'content-length': String(length),
    'content-type': 'application/octet-stream',
    etag: `"${name}-${length}"`,
    'last-modified': new Date().toUTCString(),
    'accept-ranges': 'bytes',
    'x-ms-blob-type': 'BlockBlob',
    'x-ms-version': '2024-11-04',
    'x-ms-request-server-encrypted': 'true'
  }
}

function send(response: ServerResponse, status: number, body: object): void {
  // Twirp errors are JSON too: the client parses every body and would retry on anything else.
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
  return Buffer.concat(chunks)
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'))
    return isRecord(parsed) ? parsed : {}
  } catch {
    return {}
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

// @azure/storage-blob is the SDK @actions/cache itself uploads with (its dependency); used here to drive the
// blob calls the client only makes for large archives or on *.blob.core.windows.net hosts.
import { BlockBlobClient } from '@azure/storage-blob'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest'
import { restoreHistory, saveHistory } from '../../../src/canary/history-cache.js'
import type { CanarySample } from '../../../src/canary/trend.js'
import { type CacheServer, startCacheServer } from '../../support/cache-server.js'

const CACHE_ENV = [
  'ACTIONS_CACHE_SERVICE_V2',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL',
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_CACHE_MODE',
  'GITHUB_SERVER_URL'
]
const ID = 'a1b2c3d4e5f6'
const BUILDER = 'nixbuilder@10.0.0.5:22'

function sample(minute: number, buildSeconds: number): CanarySample {
  return { time: new Date(Date.UTC(2024, 0, 1, 0, minute)).toISOString(), builder: BUILDER, buildSeconds }
}

let server: CacheServer
let scratch: string
let stdout: MockInstance<typeof process.stdout.write>

beforeEach(async () => {
  // Only the server's variables: a runner's own cache variables must not leak into the client under test.
  for (const name of CACHE_ENV) vi.stubEnv(name, undefined)
  server = await startCacheServer()
  for (const [name, value] of Object.entries(server.env)) vi.stubEnv(name, value)
  scratch = mkdtempSync(join(tmpdir(), 'history-cache-test-'))
  // @actions/core writes its ::warning:: commands to stdout: capture them to assert on, and keep the output quiet.
  stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
})

afterEach(async () => {
  stdout.mockRestore()
  vi.unstubAllEnvs()
  await server.close()
  rmSync(scratch, { recursive: true, force: true })
})

function warnings(): string[] {
  return stdout.mock.calls.map(call => String(call[0])).filter(line => line.startsWith('::warning'))
}

describe('history cache through the real @actions/cache client', () => {
  it('restores the newest of two saved runs', async () => {
    const directory = join(scratch, 'history')
    const run1 = [sample(1, 3)]
    const run2 = [sample(1, 3), sample(2, 4)]
    expect(await saveHistory(ID, directory, run1, '100-1')).toBe(`nix-offload-canary-${ID}-100-1`)
    expect(await saveHistory(ID, directory, run2, '101-1')).toBe(`nix-offload-canary-${ID}-101-1`)
    rmSync(directory, { recursive: true })

    expect(await restoreHistory(ID, directory)).toEqual({
      samples: run2,
      key: `nix-offload-canary-${ID}-101-1`
    })
    expect(server.entries().map(entry => entry.key)).toEqual([
      `nix-offload-canary-${ID}-100-1`,
      `nix-offload-canary-${ID}-101-1`
    ])
    // What the client really sent: v2 Twirp calls, a single-shot Azure Put Blob, and a plain GET to download.
    expect(server.requests()).toEqual([
      'CreateCacheEntry',
      'PutBlob',
      'FinalizeCacheEntryUpload',
      'CreateCacheEntry',
      'PutBlob',
      'FinalizeCacheEntryUpload',
      'GetCacheEntryDownloadURL',
      'GetBlob'
    ])
    expect(warnings()).toEqual([])
  })

  it('restores nothing, without a warning, when no run has saved yet', async () => {
    await saveHistory('other-builders', join(scratch, 'history'), [sample(1, 3)], '100-1')
    expect(await restoreHistory(ID, join(scratch, 'history'))).toEqual({ samples: [] })
    expect(warnings()).toEqual([])
  })

  it('misses when restoring into another directory: the cached path is part of the entry version', async () => {
    await saveHistory(ID, join(scratch, 'run-1'), [sample(1, 3)], '100-1')
    expect(await restoreHistory(ID, join(scratch, 'run-2'))).toEqual({ samples: [] })
  })

  it('does not overwrite an entry: a second save under the same run id warns and returns no key', async () => {
    const directory = join(scratch, 'history')
    await saveHistory(ID, directory, [sample(1, 3)], '100-1')
    expect(await saveHistory(ID, directory, [sample(2, 99)], '100-1')).toBe('')
    expect(warnings().join('\n')).toContain(`not saved under nix-offload-canary-${ID}-100-1`)
    expect((await restoreHistory(ID, directory)).samples).toEqual([sample(1, 3)])
  })

  it('goes on with empty history when the cache service is down', async () => {
    await server.close()
    const directory = join(scratch, 'history')
    expect(await restoreHistory(ID, directory)).toEqual({ samples: [] })
    expect(await saveHistory(ID, directory, [sample(1, 3)], '100-1')).toBe('')
    expect(warnings().length).toBeGreaterThan(0)
  })

  it('goes on with empty history when the job has no cache service', async () => {
    vi.stubEnv('ACTIONS_RESULTS_URL', undefined)
    expect(await restoreHistory(ID, join(scratch, 'history'))).toEqual({ samples: [] })
    expect(await saveHistory(ID, join(scratch, 'history'), [sample(1, 3)], '100-1')).toBe('')
    expect(warnings().join('\n')).toContain('cache service is not available')
    expect(server.requests()).toEqual([])
  })
})

describe('cache server blob dialect, as the Azure SDK speaks it', () => {
  async function twirp(method: string, body: object): Promise<Record<string, unknown>> {
    const response = await fetch(
      `${server.env.ACTIONS_RESULTS_URL}twirp/github.actions.results.api.v1.CacheService/${method}`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${server.env.ACTIONS_RUNTIME_TOKEN}`
        },
        body: JSON.stringify(body)
      }
    )
    const parsed: unknown = await response.json()
    return typeof parsed === 'object' && parsed !== null ? { ...parsed } : {}
  }

  it('assembles Put Block + Put Block List, and serves HEAD and ranged GETs', async () => {
    const data = Buffer.from('0123456789abcdefghij')
    const created = await twirp('CreateCacheEntry', { key: 'blocks', version: 'v' })
    const upload = new BlockBlobClient(String(created.signed_upload_url))
    await upload.uploadData(data, { blockSize: 8, maxSingleShotSize: 8, concurrency: 1 })
    expect(
      await twirp('FinalizeCacheEntryUpload', { key: 'blocks', version: 'v', size_bytes: '20' })
    ).toEqual({
      ok: true,
      entry_id: '1'
    })
    const found = await twirp('GetCacheEntryDownloadURL', { key: 'blo', version: 'v' })
    expect(found.matched_key).toBe('blocks')

    const download = new BlockBlobClient(String(found.signed_download_url))
    expect((await download.getProperties()).contentLength).toBe(20)
    expect((await download.downloadToBuffer(0, undefined, { blockSize: 8, concurrency: 1 })).toString()).toBe(
      data.toString()
    )
    expect(server.requests()).toEqual([
      'CreateCacheEntry',
      'PutBlock',
      'PutBlock',
      'PutBlock',
      'PutBlockList',
      'FinalizeCacheEntryUpload',
      'GetCacheEntryDownloadURL',
      'HeadBlob',
      'HeadBlob',
      'GetBlobRange',
      'GetBlobRange',
      'GetBlobRange'
    ])
  })

  it('scopes lookups by version, and refuses blob URLs without the signature', async () => {
    server.seed('k-1', 'v1', Buffer.from('a'))
    server.seed('k-2', 'v2', Buffer.from('b'))
    expect((await twirp('GetCacheEntryDownloadURL', { key: 'k-', version: 'v1' })).matched_key).toBe('k-1')
    expect(await twirp('GetCacheEntryDownloadURL', { key: 'k-', version: 'v3' })).toEqual({ ok: false })
    const url = new URL(
      String((await twirp('GetCacheEntryDownloadURL', { key: 'k-', version: 'v2' })).signed_download_url)
    )
    url.searchParams.delete('sig')
    expect((await fetch(url)).status).toBe(403)
  })
})

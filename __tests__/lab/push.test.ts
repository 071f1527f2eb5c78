import { createReadStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { basename, dirname, join, normalize } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  chownTree,
  firstError,
  freshDerivation,
  type Lab,
  loadLab,
  mainThenPost,
  reportOf,
  runOnHost,
  visibleLog
} from './harness.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')

interface Report {
  outPaths: string[]
  pushes?: {
    builder: string
    to: string
    signedWith: string
    paths: string[]
    closurePaths: number
    narBytes: number
  }[]
}

/**
 * A binary cache of builder a's: a directory under its /nix (a host directory, the same path inside its namespace and
 * chroot), owned by its user, with a signing key made there. `inside` is the builder's view, `host` the host's.
 */
async function builderCache(nonce: string): Promise<{
  inside: string
  host: string
  keyInside: string
  publicKey: string
}> {
  const name = `nix-offload-push-${nonce}`
  const host = join(dirname(a.storeDir), 'var', name)
  const inside = `/nix/var/${name}`
  mkdirSync(join(host, 'cache'), { recursive: true })
  const made = await runOnHost([
    'nix-store',
    '--generate-binary-cache-key',
    `nix-offload-test-${nonce}`,
    join(host, 'key.sec'),
    join(host, 'key.pub')
  ])
  if (made.code !== 0) throw new Error(`nix-store --generate-binary-cache-key failed: ${made.stderr}`)
  chownTree(host, a.user)
  return {
    inside,
    host,
    keyInside: `${inside}/key.sec`,
    publicKey: readFileSync(join(host, 'key.pub'), 'utf8').trim()
  }
}

/** Serves `root` read-only over loopback HTTP, as a binary cache's web server would. */
async function serveDirectory(root: string): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    const path = normalize(join(root, decodeURIComponent((request.url ?? '/').replace(/\?.*$/, ''))))
    const file = path.startsWith(root) ? statSync(path, { throwIfNoEntry: false }) : undefined
    if (file?.isFile() !== true) {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-length': file.size })
    if (request.method === 'HEAD') response.end()
    else createReadStream(path).pipe(response)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, server }
}

describe('push-to', () => {
  it('has the builder push the outputs, signed, to a binary cache that a third store substitutes from without building', async () => {
    const drv = freshDerivation(lab)
    const cache = await builderCache(drv.nonce)
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      'push-to': `file://${cache.inside}/cache?compression=none`,
      'push-key': cache.keyInside,
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    const [outPath = ''] = report.outPaths
    expect(report.pushes).toEqual([
      {
        builder: expect.stringMatching(/^ssh-ng:\/\//) as unknown,
        to: `file://${cache.inside}/cache`,
        signedWith: cache.keyInside,
        paths: [outPath],
        closurePaths: 1,
        narBytes: expect.any(Number) as unknown
      }
    ])
    expect(report.pushes?.[0]?.narBytes).toBeGreaterThan(0)
    // The push is over before the copy back starts: the runner never waits on the outputs to send them on.
    const pushed = main.stdout.indexOf('::debug::push: ')
    expect(pushed).toBeGreaterThan(-1)
    expect(pushed).toBeLessThan(main.stdout.indexOf('::debug::copy back: '))
    expect(main.summary).toContain('### Pushed (`push-to`)')
    expect(main.summary).not.toContain('compression=none')
    // The builder wrote the cache: its narinfo is there, under the output's hash.
    expect(existsSync(join(cache.host, 'cache', `${basename(outPath).slice(0, 32)}.narinfo`))).toBe(true)
    const served = await serveDirectory(join(cache.host, 'cache'))
    const third = `/tmp/nix-offload-push-store-${drv.nonce}`
    try {
      // A fresh store that only that cache can fill, trusting only its key: `--max-jobs 0` and no builders, so any
      // build instead of a substitution fails.
      const nix = ['nix', '--extra-experimental-features', 'nix-command']
      const options = [
        '--store',
        third,
        '--option',
        'substituters',
        served.url,
        '--option',
        'trusted-public-keys',
        cache.publicKey,
        '--option',
        'require-sigs',
        'true',
        '--max-jobs',
        '0',
        '--builders',
        ''
      ]
      const substituted = await runOnHost([...nix, 'build', '--no-link', ...options, outPath])
      expect(substituted.code, substituted.stderr).toBe(0)
      const info = await runOnHost([...nix, 'path-info', '--json', '--store', third, outPath])
      expect(info.code, info.stderr).toBe(0)
      const parsed: unknown = JSON.parse(info.stdout)
      const entry = (Array.isArray(parsed) ? parsed[0] : (parsed as Record<string, unknown>)[outPath]) as {
        ultimate?: boolean
        signatures?: string[]
      }
      expect(entry.ultimate ?? false).toBe(false)
      expect(entry.signatures?.some(sig => sig.startsWith(`nix-offload-test-${drv.nonce}:`))).toBe(true)
      const log = await runOnHost([...nix, 'log', '--store', third, outPath])
      expect(log.code).not.toBe(0)
    } finally {
      await new Promise(resolve => served.server.close(resolve))
      await runOnHost(['rm', '-rf', third, cache.host])
    }
  })

  it('refuses a builder whose key runs only nix-daemon, naming the input and the fix, before any build', async () => {
    const drv = freshDerivation(lab)
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      user: lab.daemonOnlyUser,
      strategy: 'remote-store',
      'push-to': 'file:///nix/var/nix-offload-push-never',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(/Input 'push-to': builder .* key runs only nix-daemon/)
  })

  it('refuses strategy: hook before any change', async () => {
    const drv = freshDerivation(lab)
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'hook',
      'push-to': 'file:///nix/var/nix-offload-push-never',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(/Input 'push-to'.*'strategy: remote-store'/)
  })
})

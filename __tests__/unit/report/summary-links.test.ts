import { marked } from 'marked'
import { describe, expect, it } from 'vitest'
import type { PreflightResult } from '../../../src/builders/index.js'
import { judgeCanary, renderCanarySummary } from '../../../src/canary/canary-verdict.js'
import { type ConfiguredBuilder, label } from '../../../src/inputs/index.js'
import type { BuildRecord } from '../../../src/nix/index.js'
import { type BuildReport, type Checks, makeReport, renderSummary } from '../../../src/report/index.js'
import { makePlan, makeStorePlan } from '../../../src/runner/index.js'
import { configuredWith } from '../support/builders.js'
import { runnerFactsWith } from '../support/runner.js'
import { settingsWith } from '../support/settings.js'

/**
 * GitHub's Markdown makes a link of a bare e-mail address (`nixbuilder@127.0.0.1`), URL or `www.` name: the job
 * summaries of realistic runs, rendered by a GFM parser, must show every value as text, never as a link.
 */

const render = (markdown: string): string => marked.parse(markdown, { gfm: true, async: false })

/** The opening tags of the links in rendered HTML; the summaries write none of their own. */
function links(html: string): string[] {
  return [...html.matchAll(/<a\s[^>]*>/gi)].map(match => match[0])
}

const A = configuredWith(1, { host: '127.0.0.1', port: 2201 })
const B = configuredWith(2, { host: '127.0.0.1', port: 2202, systems: ['x86_64-linux', 'aarch64-linux'] })
const FACTS = runnerFactsWith()
const START = Date.UTC(2024, 0, 2, 3, 4, 5)

function built(
  builder: ConfiguredBuilder | undefined,
  name: string,
  status: BuildRecord['status'] = 'built'
): BuildRecord {
  const drvPath = `/nix/store/0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-${name}.drv`
  return {
    drvPath,
    name,
    machine: builder?.storeUri ?? '',
    start: START,
    end: START + 900,
    status,
    attempts: 1
  }
}

function healthy(builder: ConfiguredBuilder): PreflightResult {
  return {
    builder: label(builder),
    origin: "input 'host'",
    healthy: true,
    connectMs: 3,
    hostKey: {
      presented: 'ssh-ed25519 SHA256:EWNrSIn/aBQa2mGIHSlHhgghAUqW7hBUMhBKQJrQcXY',
      pinned: [],
      matches: true
    },
    authenticated: true,
    keyType: 'ssh-ed25519',
    nixVersion: '2.26.3',
    builderUserTrusted: true,
    detected: { systems: builder.systems, supportedFeatures: ['big-parallel'], maxJobs: 4 },
    durationMs: 40
  }
}

const KEY_MISMATCH =
  `Builder ${label(A)} presented a host key that is not the pinned one: check the new key at ` +
  `https://nixos.org/manual or www.example.com, or mail admin@example.com.`

function checks(preflight: PreflightResult[]): Checks {
  const runner = {
    nixVersion: '2.26.3',
    system: 'x86_64-linux',
    store: 'daemon' as const,
    user: 'runner',
    trusted: true
  }
  return { runner, preflight, stores: [] }
}

function twoBuilders(): BuildReport {
  const settings = settingsWith({ builders: [A, B] })
  return makeReport({
    plan: makePlan(settings, [A, B], FACTS, 'a1b2c3'),
    builds: [built(A, 'hello-2.12'), built(B, 'jq-1.7'), built(undefined, 'local-1.0')],
    outPaths: ['/nix/store/0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-hello-2.12'],
    checks: checks([healthy(A), healthy(B)]),
    transfers: new Map([
      [A.storeUri, { sent: 2048, received: 4096 }],
      [B.storeUri, { sent: 1, received: 2 }]
    ])
  })
}

function stoppedAtPreflight(): BuildReport {
  const refused: PreflightResult = {
    ...healthy(A),
    healthy: false,
    cause: 'host-key-mismatch',
    message: `${KEY_MISMATCH}\nFix: pin the key.`,
    hostKey: { presented: 'ssh-ed25519 SHA256:x', pinned: ['ssh-ed25519 SHA256:y'], matches: false }
  }
  return makeReport({
    checks: checks([refused, { ...healthy(B), passedOver: '3.0 GiB free in its /nix/store' }])
  })
}

function failedOver(): BuildReport {
  const report = twoBuilders()
  report.failovers = [
    {
      builder: A.storeUri,
      at: '2024-01-02T03:04:05.000Z',
      cause: 'connection-dropped',
      reason: `error: cannot connect to 'nixbuilder@127.0.0.1:2201': see http://x`,
      movedTo: [B.storeUri, 'local'],
      derivations: ['/nix/store/0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-hello-2.12.drv']
    }
  ]
  return report
}

function pushed(): BuildReport {
  const settings = settingsWith({ builders: [A], strategy: 'remote-store' })
  const build = built(A, 'hello-2.12')
  const report = makeReport({
    plan: makeStorePlan(settings, [A], 'a1b2c3', '/tmp'),
    builds: [build],
    outPaths: ['/nix/store/0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-hello-2.12'],
    checks: checks([healthy(A)]),
    storeProofs: new Map([
      [build.drvPath, { log: true, store: false, problem: `asked ${A.storeUri}: no answer` }]
    ])
  })
  report.pushes = [
    {
      builder: A.storeUri,
      to: 'https://cache.example.com',
      signedWith: '/etc/nix/secret-key',
      paths: ['/nix/store/0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-hello-2.12'],
      closurePaths: 3,
      narBytes: 4096
    }
  ]
  return report
}

function fellBack(): BuildReport {
  return {
    ...makeReport({ builds: [built(undefined, 'hello-2.12')], checks: checks([]) }),
    fallback: `every builder failed its preflight (Builder ${label(A)} is unreachable)`
  }
}

function canarySummary(): string {
  const thresholds = { payloadMb: 8, maxConnectMs: 2000, maxBuildSeconds: 300, minFreeGb: 10, trendFactor: 3 }
  const down = judgeCanary(
    { ...healthy(A), healthy: false, cause: 'unreachable', message: `Builder ${label(A)} is unreachable.` },
    undefined,
    [],
    8,
    thresholds
  )
  const slow = {
    ...down,
    builder: label(B),
    system: 'x86_64-linux',
    healthy: true,
    problems: [],
    warnings: [`${label(B)}: build took 3 s, 3× its median of 1 s over the last 5 runs (trend-factor 3)`]
  }
  return renderCanarySummary([down, slow], thresholds)
}

describe('a GFM parser (the check can fail)', () => {
  it('makes links of a bare user@host, URL and www. name in text', () => {
    expect(links(render('nixbuilder@127.0.0.1'))).toEqual(['<a href="mailto:nixbuilder@127.0.0.1">'])
    expect(links(render('http://x'))).toEqual(['<a href="http://x">'])
    expect(links(render('see www.example.com'))).toEqual(['<a href="http://www.example.com">'])
  })
})

describe('the job summaries, rendered as GitHub renders them', () => {
  it.each([
    ['a build on two builders', () => renderSummary(twoBuilders(), true)],
    ['a builder that failed the preflight', () => renderSummary(stoppedAtPreflight(), true)],
    ['a failover', () => renderSummary(failedOver(), true)],
    ['a push from the builder, with a store proof that failed', () => renderSummary(pushed(), true)],
    ['a fallback to the runner', () => renderSummary(fellBack(), true)],
    ['the canary', canarySummary]
  ])('%s: shows every value as text, never as a link', (_, summary) => {
    const markdown = summary()
    const html = render(markdown)
    expect(links(html), markdown).toEqual([])
    // The builders are named, in code.
    expect(html).toMatch(/<code>[^<]*nixbuilder@127\.0\.0\.1:22\d{2}[^<]*<\/code>/)
  })
})

import { describe, expect, it } from 'vitest'
import { Input } from '../../../src/inputs/constants.js'
import { hostPort, label } from '../../../src/inputs/builder.js'
import type { PreflightResult } from '../../../src/builders/preflight-verdict.js'
import type { BuildRecord } from '../../../src/nix/ledger.js'
import { type BuildReport, makeReport } from '../../../src/report/report.js'
import { renderSummary } from '../../../src/report/summary.js'
import { code, inline } from '../../../src/report/markdown.js'
import type { Plan } from '../../../src/runner/plan.js'
import type { ConfiguredBuilder } from '../../../src/inputs/index.js'
import { plainText, readSummary, shown, type ReadSummary, type Table } from '../support/markdown.js'

/**
 * The job summary through a GitHub-Flavored Markdown parser (marked), with every value that comes from outside the
 * action made hostile: inputs (builder user, host, systems, features), Nix's log (derivation names, machines, out
 * paths), the builder's answers (its Nix version, host key) and error text. Every table must keep its columns, every
 * value must show as the text it is, and no HTML may get through but the report's own <details>.
 */

/** Everything that can break a table, a code span or the page: pipes, backticks, HTML, entities, line breaks. */
function hostile(field: string): string {
  return (
    `${field} a|b \`c\` \`\`d\`\` <script>alert(1)</script> <img src=x onerror=alert(2)> & &amp; &lt;i&gt; ` +
    `\\| \\\\| *e* _f_ [g](javascript:alert(3)) ![h](x.png) ~i~ $j$ <https://evil.example> ` +
    `<!-- k -->\r\n# l\n<details>\r| m | n |\n\n</details>`
  )
}

const NAME = hostile('name')
const USER = hostile('user')
const HOST = hostile('host')
const FEATURE = hostile('feature')
const MANDATORY = hostile('mandatory')
const SYSTEM = hostile('system')
const MACHINE = `ssh://${hostile('machine')}`
const PROBLEM = hostile('problem')
const START = Date.UTC(2024, 0, 2, 3, 4, 5)

const BUILDER: ConfiguredBuilder = {
  protocol: 'ssh-ng',
  host: HOST,
  port: 2222,
  user: USER,
  systems: ['x86_64-linux', SYSTEM],
  maxJobs: 2,
  speedFactor: 1,
  supportedFeatures: [FEATURE],
  mandatoryFeatures: [MANDATORY],
  origin: "input 'host'",
  pinInput: Input.HostPublicKey,
  alias: 'nix-offload-a1b2c3-1',
  storeUri: `ssh-ng://${USER}@nix-offload-a1b2c3-1`
}
const LABEL = label(BUILDER)
const HOST_PORT = hostPort(BUILDER)

function plan(path: Plan['path']): Plan {
  return {
    token: 'a1b2c3',
    path,
    asRoot: true,
    workDir: '/root/.ssh/nix-offload-a1b2c3',
    machinesFile: '/root/.ssh/nix-offload-a1b2c3/machines',
    builders: [BUILDER],
    steps: [],
    nixConfig: '',
    warnings: []
  } as unknown as Plan
}

function build(overrides: Partial<BuildRecord>): BuildRecord {
  return {
    drvPath: `/nix/store/aaaa-${NAME}.drv`,
    name: NAME,
    machine: BUILDER.storeUri,
    start: START,
    end: START + 1500,
    status: 'built',
    attempts: 1,
    ...overrides
  }
}

const BUILDS = [
  build({}),
  build({ drvPath: '/nix/store/bbbb-b.drv', name: hostile('local'), machine: '' }),
  build({ drvPath: '/nix/store/cccc-c.drv', name: hostile('elsewhere'), machine: MACHINE, status: 'failed' })
]

const PREFLIGHT: PreflightResult[] = [
  {
    builder: LABEL,
    origin: "input 'host'",
    healthy: true,
    connectMs: 12,
    hostKey: { presented: hostile('fingerprint'), pinned: [], matches: true },
    authenticated: true,
    keyType: hostile('keytype'),
    remoteProgram: hostile('program'),
    nixVersion: hostile('version'),
    builderUserTrusted: false,
    detected: { systems: [SYSTEM], supportedFeatures: [FEATURE], maxJobs: 4 },
    durationMs: 40
  },
  {
    builder: hostile('builder'),
    origin: "input 'builders' line 1",
    healthy: false,
    cause: hostile('cause') as PreflightResult['cause'],
    message: `${hostile('message')}\nFix: ${hostile('fix')}`,
    keyType: 'ssh-ed25519',
    durationMs: 3
  }
]

const CHECKS = {
  runner: {
    nixVersion: hostile('runner-version'),
    system: SYSTEM,
    store: 'daemon',
    user: hostile('runner-user'),
    trusted: false
  },
  preflight: PREFLIGHT,
  stores: []
}

function hookReport(): BuildReport {
  const transfers = new Map([[BUILDER.storeUri, { sent: 2048, received: 1 }]])
  return makeReport({
    plan: plan('trusted-client'),
    builds: BUILDS,
    outPaths: [hostile('out')],
    checks: CHECKS,
    outputsOnBuilder: false,
    transfers,
    succeeded: false
  })
}

function storeReport(): BuildReport {
  const proofs = new Map([[BUILDS[0]?.drvPath ?? '', { log: true, store: false, problem: PROBLEM }]])
  return makeReport({
    plan: plan('remote-store'),
    builds: [build({})],
    outPaths: [hostile('out')],
    checks: CHECKS,
    storeProofs: proofs,
    outputsOnBuilder: true
  })
}

/** The structure every summary must keep, whatever its data. */
function expectWellFormed(summary: ReadSummary): void {
  for (const table of summary.tables) {
    const width = table.header.length
    expect(table.lineWidths, table.header.join(' | ')).toEqual(table.lineWidths.map(() => width))
    expect(table.lineWidths.length, 'one source line per row').toBe(table.rows.length + 2)
    for (const row of table.rows) expect(row).toHaveLength(width)
  }
  // Raw HTML only where the report writes it: the out paths' <details>.
  expect(
    summary.html.filter(html => !/^<details><summary>Out paths<\/summary>$|^<\/details>$/.test(html))
  ).toEqual([])
  expect(summary.rendered).not.toMatch(/<(script|img|iframe|svg|style)\b/i)
  // No link: the summary writes none, and GFM makes none of a value (an e-mail address, a URL) in a code span.
  expect(summary.rendered).not.toMatch(/<a\b/i)
  const allowed = ['blockquote', 'code', 'details', 'h2', 'li', 'p', 'strong', 'summary', 'ul']
  const tables = ['table', 'tbody', 'td', 'th', 'thead', 'tr']
  expect(summary.tags.filter(tag => !allowed.includes(tag) && !tables.includes(tag))).toEqual([])
}

function table(summary: ReadSummary, firstHeader: string): Table {
  const found = summary.tables.find(candidate => candidate.header[0] === firstHeader)
  if (found === undefined) throw new Error(`no table "${firstHeader}" in the summary`)
  return found
}

/** A build on a builder whose record has no hook phases: the log gave none of its figures. */
const UNTIMED = ['unknown', 'unknown', 'unknown', 'unknown']

describe('the job summary, read by a GFM parser, with hostile data', () => {
  it('keeps every table and shows each value as the text it is (hook build, preflight, transfers)', () => {
    const summary = readSummary(renderSummary(hookReport(), true))
    expectWellFormed(summary)
    expect(summary.tables.map(found => found.header[0])).toEqual([
      'preflight',
      'builder',
      'builder',
      'builder',
      'derivation'
    ])

    const preflight = table(summary, 'preflight')
    expect(preflight.rows).toHaveLength(2)
    expect(preflight.rows[0]?.[0]).toBe(shown(LABEL))
    expect(preflight.rows[0]?.[2]).toBe(`${shown(hostile('fingerprint'))} ✓`)
    expect(preflight.rows[0]?.[3]).toBe(`${shown(hostile('keytype'))} ✓`)
    expect(preflight.rows[0]?.[4]).toBe(`${shown(hostile('program'))} ${shown(hostile('version'))}`)
    expect(preflight.rows[0]?.[6]).toBe(
      `✅ healthy (detected: systems ${shown(SYSTEM)}; features ${shown(FEATURE)}; max-jobs 4)`
    )
    expect(preflight.rows[1]?.[0]).toBe(shown(hostile('builder')))
    expect(preflight.rows[1]?.[6]).toBe(`❌ ${shown(hostile('cause'))}`)

    const [builders, shares, moved] = summary.tables.slice(1, 4)
    expect(builders?.rows).toEqual([
      [
        shown(LABEL),
        shown(BUILDER.storeUri),
        `x86_64-linux, ${shown(SYSTEM)}`,
        '2',
        '1',
        `${shown(FEATURE)}, ${shown(MANDATORY)} (mandatory)`
      ]
    ])
    expect(shares?.header).toEqual(['builder', 'derivations', 'busy'])
    expect(shares?.rows).toEqual([
      [shown(LABEL), '1', '1.5 s'],
      ['the runner', '1', '1.5 s'],
      // A machine that is not one of this job's builders (another job's, on a daemon they share) is named, not "the runner".
      [shown(MACHINE), '1', '1.5 s']
    ])
    expect(moved?.rows).toEqual([[shown(LABEL), '2.0 KiB', '1 B']])

    const derivations = table(summary, 'derivation')
    expect(derivations.rows).toEqual([
      [shown(NAME), shown(HOST_PORT), '1.5 s', 'built', ...UNTIMED],
      [shown(hostile('local')), 'the runner', '1.5 s', 'built', '0 ms, 0 B', '0 ms', '1.5 s', '0 ms, 0 B'],
      [shown(hostile('elsewhere')), shown(MACHINE), '1.5 s', 'failed', ...UNTIMED]
    ])
  })

  it("shows the runner's facts, a failed builder's message and the out paths as text", () => {
    const { rendered } = readSummary(renderSummary(hookReport(), true))
    const runner = /<p>(Runner:[^\n]*)<\/p>/.exec(rendered)?.[1] ?? ''
    expect(plainText(runner)).toBe(
      `Runner: Nix ${shown(hostile('runner-version'))} on ${shown(SYSTEM)}; ` +
        `the nix-daemon does not trust ${shown(hostile('runner-user'))}.`
    )
    // The message's first line only, in a quote that stays one paragraph.
    const quote = /<blockquote>\n<p>([^\n]*)<\/p>\n<\/blockquote>/.exec(rendered)?.[1] ?? ''
    expect(plainText(quote)).toBe(
      `${shown(hostile('builder'))}: ${shown(hostile('message').split('\n')[0] ?? '')}`
    )
    expect(rendered).not.toContain('Fix:')
    expect(rendered).toContain('<details><summary>Out paths</summary>')
    const out = /<li><code>([^\n]*)<\/code><\/li>/.exec(rendered)?.[1] ?? ''
    expect(plainText(out)).toBe(shown(hostile('out')))
  })

  it('keeps the proof column of a remote-store build', () => {
    const rendered = renderSummary(storeReport(), true)
    expect(rendered).toContain("The offload's upload and download were one copy each way for the whole build")
    const summary = readSummary(rendered)
    expectWellFormed(summary)
    expect(table(summary, 'derivation').rows).toEqual([
      [
        shown(NAME),
        shown(HOST_PORT),
        '1.5 s',
        'built',
        'shared',
        'unknown',
        '1.5 s',
        'shared',
        `log only: ${shown(PROBLEM)}`
      ]
    ])
  })

  it('shows the error text of a fallback to the runner as text', () => {
    const report = {
      ...makeReport({ builds: [], outPaths: [], checks: CHECKS }),
      fallback: hostile('reason')
    }
    const summary = readSummary(renderSummary(report, false))
    expectWellFormed(summary)
    const reason =
      /<p>⚠️ <strong>Built on the runner<\/strong> \(<code>fallback: local<\/code>\): ([^\n]*)\. Nothing was offloaded\.<\/p>/.exec(
        summary.rendered
      )
    expect(plainText(reason?.[1] ?? '')).toBe(shown(hostile('reason')))
  })

  it('keeps its tables when it stops before configuring, and when it only configures', () => {
    for (const markdown of [
      renderSummary(makeReport({ builds: [], outPaths: [], checks: CHECKS }), true),
      renderSummary(
        makeReport({ plan: plan('single-user'), builds: [], outPaths: [], checks: CHECKS }),
        false
      )
    ]) {
      expectWellFormed(readSummary(markdown))
    }
  })
})

describe('the checks can fail (negative controls)', () => {
  it('an unescaped | adds a cell, which the strict width catches though marked drops it', () => {
    const markdown = ['| a | b |', '| --- | --- |', `| ${NAME} | x |`, ''].join('\n')
    const summary = readSummary(markdown)
    expect(summary.tables[0]?.rows[0]).toHaveLength(2)
    expect(() => expectWellFormed(summary)).toThrow()
  })

  it('only escaping | (the old cell()) still lets a line break, a code span and HTML through', () => {
    const oldCell = (text: string): string => text.replace(/\|/g, '\\|')
    const markdown = ['| a | b |', '| --- | --- |', `| \`${oldCell(NAME)}\` | x |`, ''].join('\n')
    const summary = readSummary(markdown)
    expect(() => expectWellFormed(summary)).toThrow()
    expect(summary.rendered).toMatch(/<script>|<img /)
  })

  it('a row split by a line break is caught', () => {
    const summary = readSummary(['| a | b |', '| --- | --- |', '| x', 'y | z |', ''].join('\n'))
    expect(() => expectWellFormed(summary)).toThrow()
  })
})

describe('inline and code', () => {
  it('leave plain names as they read, with what GFM would make a link of escaped', () => {
    expect(inline('nixbuilder@builder.example.com:2222')).toBe('nixbuilder\\@builder.example.com:2222')
    expect(inline('https://www.example.com')).toBe('https\\://www\\.example.com')
    expect(inline('x86_64-linux, big-parallel')).toBe('x86_64-linux, big-parallel')
    expect(code('hello-2.12')).toBe('`hello-2.12`')
  })

  it('show any text exactly, in a table cell or outside one', () => {
    for (const value of [
      NAME,
      '`',
      '``a`',
      ' a ',
      'a\\',
      '\\|',
      'a\\\\|b',
      '_x_',
      'x_',
      '*',
      '&copy;',
      'nixbuilder@127.0.0.1',
      'a\\| http://x www.example.com u@h.example.com'
    ]) {
      const markdown = ['| a | b |', '| --- | --- |', `| ${inline(value)} | ${code(value)} |`, ''].join('\n')
      const summary = readSummary(markdown)
      expectWellFormed(summary)
      // A code span keeps the spaces at its ends; a cell's text is trimmed.
      const codeText = value.trim() === '' ? '' : value.replace(/\r\n|\r|\n/g, ' ')
      expect(summary.tables[0]?.rows[0], JSON.stringify(value)).toEqual([shown(value), codeText])
      const outside = readSummary(`${inline(value)}\n\n- ${code(value, false)}\n`)
      expect(outside.html, JSON.stringify(value)).toEqual([])
      expect(outside.tags, JSON.stringify(value)).toEqual(
        expect.not.arrayContaining(['script', 'img', 'a', 'h1'])
      )
    }
  })
})

import { describe, expect, it } from 'vitest'
import type { PreflightResult } from '../../../src/builders/preflight-verdict.js'
import { judgeCanary, renderCanarySummary } from '../../../src/canary/canary-verdict.js'
import { plainText, readSummary, shown } from '../support/markdown.js'

/** The canary's job summary through a GFM parser, with a builder's name, system, error text and warnings hostile. */

function hostile(field: string): string {
  return (
    `${field} a|b \`c\` <script>alert(1)</script> <img src=x onerror=alert(2)> & \\| *e* [g](x) ![h](x.png) ` +
    `<!-- k -->\r\n# l\n| m | n |`
  )
}

const THRESHOLDS = { payloadMb: 8, maxConnectMs: 2000, maxBuildSeconds: 300, minFreeGb: 10, trendFactor: 3 }

function preflight(overrides: Partial<PreflightResult>): PreflightResult {
  return {
    builder: hostile('builder'),
    origin: "input 'host'",
    healthy: false,
    keyType: 'ssh-ed25519',
    durationMs: 5,
    ...overrides
  }
}

describe("the canary's job summary, read by a GFM parser, with hostile data", () => {
  it('keeps its table, shows each value as text and lets no HTML through', () => {
    const failed = judgeCanary(
      preflight({ system: hostile('system'), message: `${hostile('message')}\nFix: ${hostile('fix')}` }),
      undefined,
      [],
      8,
      THRESHOLDS
    )
    const slow = { ...failed, healthy: true, problems: [], warnings: [hostile('warning')] }
    const summary = readSummary(renderCanarySummary([failed, slow], THRESHOLDS))

    const [table, ...others] = summary.tables
    expect(others).toEqual([])
    expect(table?.lineWidths).toEqual([8, 8, 8, 8])
    expect(table?.rows.map(row => [row[0], row[1], row[7]])).toEqual([
      [
        shown(hostile('builder')),
        shown(hostile('system')),
        `❌ preflight: ${shown(hostile('message').split('\n')[0] ?? '')}`
      ],
      [shown(hostile('builder')), shown(hostile('system')), '✅ healthy ⚠️ slower than usual']
    ])
    expect(summary.html).toEqual([])
    expect(summary.rendered).not.toMatch(/<(script|img|a|h1)\b/i)
    expect(summary.tags).toEqual([
      'blockquote',
      'code',
      'h2',
      'p',
      'strong',
      'table',
      'tbody',
      'td',
      'th',
      'thead',
      'tr'
    ])
    const quote = /<blockquote>\n<p>⚠️ ([^\n]*)<\/p>\n<\/blockquote>/.exec(summary.rendered)?.[1] ?? ''
    expect(plainText(quote)).toBe(shown(hostile('warning')))
  })
})

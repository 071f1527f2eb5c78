import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Tokens, lexer } from 'marked'
import { describe, expect, it } from 'vitest'
import { RULES } from '../../src/diagnosis/diagnosis-rules.js'
import { TRANSIENT } from '../../src/diagnosis/retry.js'

/**
 * The README's Troubleshooting table has one row per cause the action can name: every `Cause` of a failed build
 * (src/diagnosis/diagnosis-types.ts) and every `PreflightCause` of a builder that fails the preflight
 * (src/builders/preflight-verdict.ts). Adding a cause without a row, or keeping a row whose cause is gone, fails here.
 */

const ROOT = join(import.meta.dirname, '..', '..')

/** The string literals of `export type <name> = | 'a' | 'b'` in a source file, in order. */
function unionMembers(file: string, name: string): string[] {
  const source = readFileSync(join(ROOT, file), 'utf8')
  const union = new RegExp(`export type ${name} =((?:\\s*\\|\\s*'[a-z-]+')+)`).exec(source)?.[1]
  if (union === undefined) throw new Error(`${file} has no union type ${name}`)
  return [...union.matchAll(/'([a-z-]+)'/g)].map(match => match[1] ?? '')
}

/** The cause id of each row of the table under the `## Troubleshooting` heading: the first `code` of its first cell. */
function troubleshootingIds(readme: string): string[] {
  const tokens = lexer(readme, { gfm: true })
  const heading = tokens.findIndex(
    token => token.type === 'heading' && (token as Tokens.Heading).text === 'Troubleshooting'
  )
  if (heading < 0) throw new Error('README.md has no Troubleshooting section')
  const next = tokens.slice(heading + 1).find(token => token.type === 'table' || token.type === 'heading')
  if (next?.type !== 'table')
    throw new Error('the Troubleshooting section has no table before its next heading')
  const table = next as Tokens.Table
  const header = table.header.map(cell => cell.text)
  if (JSON.stringify(header) !== JSON.stringify(['cause', 'what you see', 'fix'])) {
    throw new Error(`the Troubleshooting table's header is ${header.join(' | ')}`)
  }
  return table.rows.map(row => {
    const [cause, seen, fix] = row.map(cell => cell.text.trim())
    const id = /`([^`]+)`/.exec(cause ?? '')?.[1]
    if (id === undefined) throw new Error(`a Troubleshooting row names no cause in backticks: ${cause ?? ''}`)
    if (!seen || !fix) throw new Error(`the Troubleshooting row of ${id} leaves a cell empty`)
    return id
  })
}

/** What is wrong with the table, given the causes the code names. */
function mismatches(readme: string, causes: readonly string[]): string[] {
  const ids = troubleshootingIds(readme)
  return [
    ...causes.filter(cause => !ids.includes(cause)).map(cause => `no row for ${cause}`),
    ...ids.filter(id => !causes.includes(id)).map(id => `a row for ${id}, which the code does not name`),
    ...ids.filter((id, index) => ids.indexOf(id) !== index).map(id => `two rows for ${id}`)
  ]
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const DIAGNOSIS_CAUSES = unionMembers('src/diagnosis/diagnosis-types.ts', 'Cause')
const PREFLIGHT_CAUSES = unionMembers('src/builders/preflight-verdict.ts', 'PreflightCause')
const CAUSES = [...new Set([...DIAGNOSIS_CAUSES, ...PREFLIGHT_CAUSES])]

describe("the README's Troubleshooting table", () => {
  it('reads the causes from the code: the whole union, which the rules and the retry table use', () => {
    expect(DIAGNOSIS_CAUSES).toContain('builder-unreachable')
    expect(PREFLIGHT_CAUSES).toContain('host-key-mismatch')
    expect(RULES.map(rule => rule.cause).filter(cause => !DIAGNOSIS_CAUSES.includes(cause))).toEqual([])
    expect(Object.keys(TRANSIENT).sort()).toEqual([...DIAGNOSIS_CAUSES].sort())
  })

  it('has one row per cause of the diagnosis and of the preflight, and none other', () => {
    expect(mismatches(README, CAUSES)).toEqual([])
  })

  it('catches a missing row, a row for a cause that does not exist, and a duplicate (the check can fail)', () => {
    const withoutRow = README.replace(/^\| `builder-store-full` .*\n/m, '')
    expect(withoutRow).not.toBe(README)
    expect(mismatches(withoutRow, CAUSES)).toEqual(['no row for builder-store-full'])

    const renamed = README.replace('| `copy-back-failed` |', '| `copy-back-broken` |')
    expect(mismatches(renamed, CAUSES)).toEqual([
      'no row for copy-back-failed',
      'a row for copy-back-broken, which the code does not name'
    ])

    const newCause = [...CAUSES, 'builder-on-fire']
    expect(mismatches(README, newCause)).toEqual(['no row for builder-on-fire'])
  })
})

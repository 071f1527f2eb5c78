import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { safeLine, safeText } from '../../../src/base/safe-text.js'

/** Whether the runner would read a workflow command in `text` printed as it is (lines split at \r and \n). */
function startsCommand(text: string): boolean {
  return text.split(/\r\n|\r|\n/).some(line => line.trimStart().startsWith('::') || line.includes('##['))
}

const FORGERIES = [
  'x86_64-linux\r::error title=INJECTED::forged',
  'x\n::add-mask::secret',
  '##[error]forged',
  'a ##[group]b',
  '::stop-commands::x',
  '  ::warning::indented',
  ':::triple',
  'x\u0085::nel',
  'x\u2028::ls'
]

describe('safeLine', () => {
  it('leaves plain text as it is', () => {
    expect(safeLine('x86_64-linux, big-parallel')).toBe('x86_64-linux, big-parallel')
    expect(safeLine('ssh-ng://nixbuilder@b1')).toBe('ssh-ng://nixbuilder@b1')
  })

  it('shows every control character as an escape, on one line', () => {
    expect(safeLine('a\rb\nc\td\u001b[31me\u0000')).toBe('a\\rb\\nc\\td\\x1b[31me\\x00')
    for (const text of FORGERIES) expect(safeLine(text)).not.toMatch(/[\r\n\u0085\u2028]/)
  })

  it('starts no workflow command, whatever it is given and wherever it is printed', () => {
    for (const text of FORGERIES) {
      expect(startsCommand(safeLine(text)), JSON.stringify(text)).toBe(false)
      expect(startsCommand(`Strategy: ${safeLine(text)}`)).toBe(false)
    }
    fc.assert(fc.property(fc.string({ unit: 'binary' }), text => !startsCommand(safeLine(text))))
  })
})

describe('safeText', () => {
  it('keeps its lines, and starts no workflow command on any of them', () => {
    expect(safeText('first\nsecond')).toBe('first\nsecond')
    for (const text of FORGERIES) expect(startsCommand(safeText(text)), JSON.stringify(text)).toBe(false)
    fc.assert(fc.property(fc.string({ unit: 'binary' }), text => !startsCommand(safeText(text))))
  })
})

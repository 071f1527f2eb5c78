import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { blockTokens, findBlock, newToken, withBlock, withoutBlock } from '../../../src/agent/blocks.js'

const TOKEN = '0123456789abcdef0123456789abcdef'
const block = `# nix-offload ${TOKEN}: begin (added by the nix-offload action)\nHost a\n# nix-offload ${TOKEN}: end\n`

describe('a job’s block in a shared file', () => {
  it('is found by a 128-bit token, and taken away leaves the file as it was, at the top or the end', () => {
    const text = fc.string().filter(value => !value.includes('# nix-offload'))
    fc.assert(
      fc.property(text, fc.constantFrom<'top' | 'end'>('top', 'end'), (before, at) => {
        const after = withBlock(before, block, at)
        expect(blockTokens(after)).toEqual([TOKEN])
        const found = findBlock(after, TOKEN)
        expect(found).toBeDefined()
        if (found !== undefined) expect(withoutBlock(after, found, at)).toBe(before)
      })
    )
  })
})

describe("a job's token", () => {
  it('is 128 random bits in hex, which the marker lines’ pattern finds', () => {
    const token = newToken()
    expect(token).toMatch(/^[0-9a-f]{32}$/)
    expect(newToken()).not.toBe(token)
    expect(blockTokens(withBlock('', block.replaceAll(TOKEN, token), 'top'))).toEqual([token])
  })
})

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { splitShellWords } from '../../../src/inputs/shell-words.js'

/** Quotes a word the way a careful user (or `printf %q`-like tool) would: `'…'\''…'`. */
function singleQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}

describe('splitShellWords', () => {
  it('splits on any run of whitespace, including newlines and tabs', () => {
    expect(splitShellWords('  --impure\t-L \n --keep-going  ')).toEqual(['--impure', '-L', '--keep-going'])
  })

  it('returns no words for an empty or blank line', () => {
    expect(splitShellWords('')).toEqual([])
    expect(splitShellWords(' \n\t ')).toEqual([])
  })

  it('keeps everything inside single quotes, including backslashes, $ and double quotes', () => {
    expect(splitShellWords(`--expr 'with import <nixpkgs> {}; "$HOME" \\n'`)).toEqual([
      '--expr',
      'with import <nixpkgs> {}; "$HOME" \\n'
    ])
  })

  it('honours only \\" \\\\ \\$ and \\` escapes inside double quotes', () => {
    expect(splitShellWords(String.raw`"a \"b\" \\ \$x \` \n"`)).toEqual(['a "b" \\ $x ` \\n'])
  })

  it('drops a backslash-newline inside double quotes (line continuation)', () => {
    expect(splitShellWords('"ab\\\ncd"')).toEqual(['abcd'])
  })

  it('escapes the next character with a backslash outside quotes', () => {
    expect(splitShellWords("a\\ b c\\'d")).toEqual(['a b', "c'd"])
  })

  it('treats a backslash-newline outside quotes as a line continuation', () => {
    expect(splitShellWords('--option \\\n  cores 2')).toEqual(['--option', 'cores', '2'])
    expect(splitShellWords('ab\\\ncd')).toEqual(['abcd'])
  })

  it('joins adjacent quoted and unquoted parts into one word', () => {
    expect(splitShellWords(`--arg=x'y z'"w"`)).toEqual(['--arg=xy zw'])
  })

  it('keeps an empty quoted word', () => {
    expect(splitShellWords(`a '' "" b`)).toEqual(['a', '', '', 'b'])
  })

  it('does no expansion of variables, globs, tildes or command substitution', () => {
    expect(splitShellWords('$HOME ~ *.nix $(id) `id`')).toEqual(['$HOME', '~', '*.nix', '$(id)', '`id`'])
  })

  it('refuses an unclosed single quote', () => {
    expect(() => splitShellWords("--expr 'x")).toThrow('a single quote is not closed')
  })

  it('refuses an unclosed double quote', () => {
    expect(() => splitShellWords('--expr "x')).toThrow('a double quote is not closed')
  })

  it('refuses a line ending in a lone backslash', () => {
    expect(() => splitShellWords('a \\')).toThrow('the line ends in a lone backslash')
  })

  it('gives back any list of strings quoted with single quotes and joined by spaces', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 8 }), words => {
        const line = words.map(singleQuote).join(' ')
        expect(splitShellWords(line)).toEqual(words)
      }),
      { numRuns: 200 }
    )
  })

  it('gives back words without quotes or whitespace unchanged when joined by whitespace', () => {
    const plain = fc.stringMatching(/^[A-Za-z0-9_.,:=+@%/-]+$/)
    const gap = fc.constantFrom(' ', '\t', '\n', '  ', ' \n ')
    fc.assert(
      fc.property(fc.array(fc.tuple(plain, gap), { maxLength: 8 }), pairs => {
        const line = pairs.map(([word, space]) => word + space).join('')
        expect(splitShellWords(line)).toEqual(pairs.map(([word]) => word))
      })
    )
  })
})

import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { shellQuote } from '../../../src/base/process.js'

describe('shellQuote', () => {
  it('gives a POSIX shell each word back as it was: quotes, globs, spaces, `$` and newlines', () => {
    const words = [
      '/nix/store/0099ivsmd97nr3jxmx7jww0h3f9dwlp3-a?b=c+d',
      "it's",
      "''",
      'two words',
      '$HOME `id` *',
      'line\nbreak',
      ''
    ]
    const line = `printf '%s\\0' ${words.map(shellQuote).join(' ')}`
    const printed = execFileSync('sh', ['-c', line], { cwd: '/', encoding: 'utf8' })
    expect(printed.split('\0').slice(0, -1)).toEqual(words)
  })
})

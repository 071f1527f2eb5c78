import { describe, expect, it } from 'vitest'
import { forBuild, forCopy, forEvaluation, forLinks, groupArgs } from '../../../src/nix/build.js'

describe('the split of args', () => {
  const ARGS = [
    '--impure',
    '-L',
    '--arg',
    'system',
    '"x86_64-linux"',
    '-o',
    'result',
    '--override-input',
    'nixpkgs',
    'github:NixOS/nixpkgs/nixos-24.05',
    '--keep-going',
    '-j',
    '4',
    '--option',
    'cores',
    '2',
    '--print-out-paths',
    '-f',
    'default.nix',
    'hello'
  ]

  it('gives the evaluation only the evaluation options, the common ones and installables written in args', () => {
    expect(forEvaluation(ARGS)).toEqual([
      '--impure',
      '-L',
      '--arg',
      'system',
      '"x86_64-linux"',
      '--override-input',
      'nixpkgs',
      'github:NixOS/nixpkgs/nixos-24.05',
      '--option',
      'cores',
      '2',
      '-f',
      'default.nix',
      'hello'
    ])
  })

  it('gives the build from derivations only the build, result and common options', () => {
    expect(forBuild(ARGS)).toEqual([
      '-L',
      '-o',
      'result',
      '--keep-going',
      '-j',
      '4',
      '--option',
      'cores',
      '2',
      '--print-out-paths'
    ])
  })

  it("gives `nix copy` none of `nix build`'s result options", () => {
    expect(forCopy(ARGS)).toEqual(['-L', '--keep-going', '-j', '4', '--option', 'cores', '2'])
  })

  it('gives the link-making build only the result and common options', () => {
    expect(forLinks(ARGS)).toEqual(['-L', '-o', 'result', '--option', 'cores', '2', '--print-out-paths'])
  })

  it('reads `--name=value` as one word with no value after it', () => {
    expect(groupArgs(['--out-link=x', '--expr=1', 'a'])).toEqual([
      { role: 'result', words: ['--out-link=x'] },
      { role: 'evaluation', words: ['--expr=1'] },
      { role: 'evaluation', words: ['a'] }
    ])
  })

  it('gives an option it does not know, with the words after it, to every command', () => {
    const args = ['--accept-flake-config', '--max-call-depth', '20000', '--impure', 'x']
    expect(groupArgs(args)).toEqual([
      { role: 'common', words: ['--accept-flake-config'] },
      { role: 'common', words: ['--max-call-depth', '20000'] },
      { role: 'evaluation', words: ['--impure'] },
      { role: 'evaluation', words: ['x'] }
    ])
    expect(forEvaluation(args)).toEqual(args)
    expect(forBuild(args)).toEqual(['--accept-flake-config', '--max-call-depth', '20000'])
  })

  it('takes a value that looks like an option as the value it is', () => {
    expect(forBuild(['--expr', '-1', '-o', '-weird'])).toEqual(['-o', '-weird'])
  })
})

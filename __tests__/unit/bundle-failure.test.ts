import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { readableKeyPair } from './support/ssh-keys.js'

const ROOT = join(import.meta.dirname, '..', '..')
const FILES = ['output', 'state', 'env', 'path', 'summary'] as const

let temp = ''
let bundle = ''

/**
 * The main step bundled from today's source, as `npm run bundle` makes it (dist/ is rebuilt only for a release, so it
 * may lag the source).
 */
beforeAll(() => {
  temp = mkdtempSync(join(tmpdir(), 'nix-offload-bundle-'))
  const built = spawnSync(
    join(ROOT, 'node_modules/.bin/ncc'),
    ['build', 'src/main.ts', '-o', join(temp, 'main'), '--quiet'],
    {
      cwd: ROOT,
      encoding: 'utf8'
    }
  )
  expect(built.status, built.stderr).toBe(0)
  bundle = join(temp, 'main', 'index.js')
}, 120_000)
afterAll(() => {
  rmSync(temp, { recursive: true, force: true })
})

/** Every input's default from action.yml, as the runner passes it when the workflow leaves the input out. */
function defaults(): Record<string, string> {
  const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: string }>
  }
  return Object.fromEntries(
    Object.entries(action.inputs).flatMap(([name, input]) =>
      input.default === undefined ? [] : [[name, input.default]]
    )
  )
}

/** Runs the bundled main step as the runner does: INPUT_<NAME> (dashes kept) and the GITHUB_* files. */
function runMain(inputs: Record<string, string>): {
  code: number | null
  stdout: string
  files: Record<string, string>
} {
  const dir = mkdtempSync(join(temp, 'step-'))
  const noNix = join(dir, 'bin')
  mkdirSync(noNix)
  for (const file of FILES) writeFileSync(join(dir, file), '')
  const env: Record<string, string> = {
    // No `nix` on PATH: the runner probe, which starts beside the validation, finds nothing to run.
    PATH: noNix,
    HOME: dir,
    RUNNER_TEMP: dir,
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_ENV: join(dir, 'env'),
    GITHUB_PATH: join(dir, 'path'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary')
  }
  for (const [name, value] of Object.entries({ ...defaults(), ...inputs })) {
    env[`INPUT_${name.toUpperCase()}`] = value
  }
  const result = spawnSync(process.execPath, [bundle], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 })
  const files = Object.fromEntries(FILES.map(file => [file, readFileSync(join(dir, file), 'utf8')]))
  return { code: result.status, stdout: result.stdout, files }
}

const key = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519'))
const good = {
  host: 'builder.example.com',
  user: 'nixbuilder',
  'ssh-private-key': key.private,
  'host-public-key': key.public,
  installables: 'nixpkgs#hello'
}

describe('the bundled main step, given a bad input', () => {
  it.each([
    ['port 99999', { port: '99999' }, 'port'],
    ['a semicolon in host', { host: 'builder.example.com;evil' }, 'host'],
    ['no ssh-private-key', { 'ssh-private-key': '' }, 'ssh-private-key']
  ])(
    '%s: fails with exit code 1 and one error annotation, titled, before writing anything',
    (_, bad, input) => {
      const main = runMain({ ...good, ...bad })
      expect(main.code, main.stdout).toBe(1)
      const errors = main.stdout.split('\n').filter(line => line.trimStart().startsWith('::error'))
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatch(
        new RegExp(`^::error title=nix-offload%3A input ${input}::Input '${input}': `)
      )
      expect(main.files).toEqual({ output: '', state: '', env: '', path: '', summary: '' })
    }
  )
})

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseNixLine, stripAnsi } from '../../../src/nix/nix-log.js'

/** Logs captured from real Nix runs (__tests__/fixtures/README.md says how each was made). */
export const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures')

export function readFixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8')
}

export function readFixtureBytes(name: string): Buffer {
  return readFileSync(join(FIXTURES, name))
}

/** A captured log's lines, as split on newlines: the last is empty. */
export function fixtureLines(name: string): string[] {
  return readFixture(name).split('\n')
}

/** A captured log's lines without the empty ones. */
export function nonBlankFixtureLines(name: string): string[] {
  return fixtureLines(name).filter(line => line !== '')
}

/** The names of every captured `nix build` log (*.log). */
export function fixtureLogs(): string[] {
  return readdirSync(FIXTURES).filter(name => name.endsWith('.log'))
}

/** Level-0 messages of a captured log, colours stripped, as src/nix/build.ts collects them. */
export function fixtureErrors(name: string): string[] {
  return fixtureLines(name)
    .map(parseNixLine)
    .flatMap(event => (event?.action === 'msg' && event.level === 0 ? [stripAnsi(event.msg)] : []))
}

// The README's "Supported Nix versions" table, made from a matrix run's results (scripts/matrix.sh).
//
//   node scripts/version-table.mjs RESULTS_DIR            prints the table and the totals
//   node scripts/version-table.mjs RESULTS_DIR --write    also writes it into README.md between its markers
//   node scripts/version-table.mjs RESULTS_DIR --check    fails if README.md's table differs from this run's
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import console from 'node:console'
import process from 'node:process'

const [dir, flag] = process.argv.slice(2)
if (dir === undefined) {
  console.error('usage: version-table.mjs RESULTS_DIR [--write|--check]')
  process.exit(2)
}

const SCOPES = {
  full: 'every lab test',
  core: 'offload, configure-only, multiplex, faults, remote-store'
}
const SUITES = { 2.8: 'Debian bookworm', 2.26: 'Debian trixie', 2.34: 'Debian sid' }

const runs = readdirSync(dir)
  .map(name => /^runner-([\d.]+)-builder-([\d.]+)-(\w+)\.json$/.exec(name))
  .filter(match => match !== null)
  .map(([name, runner, builder, scope]) => {
    const results = JSON.parse(readFileSync(join(dir, name), 'utf8'))
    return {
      runner,
      builder,
      scope,
      passed: results.numPassedTests,
      failed: results.numFailedTests,
      skipped: results.numPendingTests + results.numTodoTests
    }
  })
  .sort((x, y) => order(x) - order(y))

function order(run) {
  const version = v => v.split('.').reduce((sum, part) => sum * 100 + Number(part), 0)
  return (run.scope === 'full' ? 0 : 1e8) + version(run.runner) * 1e4 + version(run.builder)
}

const rows = runs.map(
  run =>
    `| ${run.runner} (${SUITES[run.runner] ?? '?'}) | ${run.builder} (${SUITES[run.builder] ?? '?'}) | ` +
    `${SCOPES[run.scope] ?? run.scope} | ${run.failed === 0 && run.passed > 0 ? '✅ passes' : '❌ fails'} |`
)
const table = [
  '| runner Nix | builder Nix | lab tests run | result |',
  '| --- | --- | --- | --- |',
  ...rows
].join('\n')

console.log(table)
const total = runs.reduce(
  (sum, run) => ({
    passed: sum.passed + run.passed,
    failed: sum.failed + run.failed,
    skipped: sum.skipped + run.skipped
  }),
  { passed: 0, failed: 0, skipped: 0 }
)
console.log(`matrix: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`)

if (flag === '--write' || flag === '--check') {
  const start = '<!-- version-table:start (scripts/version-table.mjs) -->'
  const end = '<!-- version-table:end -->'
  const readme = readFileSync('README.md', 'utf8')
  const [before, rest] = readme.split(start)
  const after = rest?.split(end)[1]
  if (before === undefined || after === undefined) {
    console.error(`README.md has no ${start} … ${end} markers`)
    process.exit(1)
  }
  const written = `${before}${start}\n${table}\n${end}${after}`
  if (flag === '--write') writeFileSync('README.md', written)
  else if (written !== readme) {
    console.error(
      "README.md's Supported Nix versions table is not this run's: run scripts/matrix.sh, then " +
        'node scripts/version-table.mjs RESULTS_DIR --write'
    )
    process.exit(1)
  }
}
